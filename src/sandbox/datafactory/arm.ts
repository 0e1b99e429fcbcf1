import { randomUUID } from 'node:crypto';
import type { TokenValidator } from '../auth.js';
import type { EmulatorHandler, EmulatorRequest, EmulatorResponse } from '../emulator.js';
import { startPipelineRun, type PipelineRun, type RunnerDeps } from './runner.js';
import { etagFor, FACTORY_CHILDREN, type DataFactoryState, type FactoryChild, type FactoryRecord } from './state.js';

/** ARM for Microsoft.DataFactory (api-version 2018-06-01): list/get factories and their child resources. */

export const ADF_API_VERSION = '2018-06-01';
const ARM_AUDIENCE = 'https://management.azure.com/';

export interface ArmContext {
  state: DataFactoryState;
  validator: TokenValidator;
  baseUrl(): string;
  pageSize(): number;
  /** Runs pipelines (createRun); absent = the emulator answers createRun with 501. */
  runner?: RunnerDeps;
  runs: Map<string, PipelineRun>;
}

class ArmError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export function armErrorBody(code: string, message: string): unknown {
  return { error: { code, message } };
}

export function armFaultBody(status: number): unknown {
  if (status === 429) return armErrorBody('TooManyRequests', 'The request is being throttled as the limit has been reached for operation type - Read. Retry after the number of seconds in Retry-After.');
  if (status === 503) return armErrorBody('ServiceUnavailable', 'The service is currently unavailable. Please try again later.');
  return armErrorBody('InternalServerError', `Encountered internal server error (injected ${status}). Diagnostic information: timestamp '${new Date().toISOString()}'.`);
}

function factoryId(f: FactoryRecord): string {
  return `/subscriptions/${f.subscriptionId}/resourceGroups/${f.resourceGroup}/providers/Microsoft.DataFactory/factories/${f.name}`;
}

function factoryJson(f: FactoryRecord, tenantId: string | undefined): Record<string, unknown> {
  const properties = { provisioningState: 'Succeeded', createTime: new Date(f.createdAt).toISOString(), version: ADF_API_VERSION, publicNetworkAccess: 'Enabled' };
  return {
    name: f.name, id: factoryId(f), type: 'Microsoft.DataFactory/factories', properties, eTag: etagFor(properties), location: f.location,
    identity: { type: 'SystemAssigned', principalId: f.principalId, tenantId: tenantId ?? null }, tags: {},
  };
}

function childJson(f: FactoryRecord, child: FactoryChild, name: string, properties: Record<string, unknown>): Record<string, unknown> {
  return { id: `${factoryId(f)}/${child}/${name}`, name, type: `Microsoft.DataFactory/factories/${child}`, properties, etag: etagFor(properties) };
}

function page(ctx: ArmContext, req: EmulatorRequest, items: unknown[]): EmulatorResponse {
  const raw = req.url.searchParams.get('$skipToken');
  const offset = raw === null ? 0 : Number(Buffer.from(raw, 'base64url').toString('utf8'));
  if (!Number.isInteger(offset) || offset < 0) throw new ArmError(400, 'InvalidSkipToken', 'The continuation token is invalid or has expired.');
  const size = ctx.pageSize();
  const body: Record<string, unknown> = { value: items.slice(offset, offset + size) };
  if (offset + size < items.length) {
    const next = new URL(`${ctx.baseUrl()}${req.url.pathname}`);
    next.searchParams.set('api-version', ADF_API_VERSION);
    next.searchParams.set('$skipToken', Buffer.from(String(offset + size)).toString('base64url'));
    body.nextLink = next.toString();
  }
  return { status: 200, body };
}

function authenticate(ctx: ArmContext, req: EmulatorRequest): { appId: string; objectId: string } {
  const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
  if (!token) {
    throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", {
      'www-authenticate': 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The authentication failed because of missing \'Authorization\' header."',
    });
  }
  const check = ctx.validator.validate(token, ARM_AUDIENCE);
  if (!check.ok) {
    const expired = /expired/.test(check.reason);
    throw new ArmError(401, expired ? 'ExpiredAuthenticationToken' : 'InvalidAuthenticationToken',
      expired ? `The access token expiry UTC time is earlier than current UTC time: ${check.reason}.` : `The access token is invalid: ${check.reason}.`);
  }
  return { appId: check.principal.appId, objectId: check.principal.objectId ?? check.principal.appId };
}

function authorize(ctx: ArmContext, caller: { appId: string; objectId: string }, action: string, scope: string): void {
  if (ctx.state.deniedCallers.has(caller.appId)) {
    throw new ArmError(403, 'AuthorizationFailed', `The client '${caller.objectId}' with object id '${caller.objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`);
  }
}

function route(ctx: ArmContext, req: EmulatorRequest): EmulatorResponse {
  const apiVersion = req.url.searchParams.get('api-version');
  if (!apiVersion) throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
  if (apiVersion !== ADF_API_VERSION) {
    throw new ArmError(400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid. The supported versions are '${ADF_API_VERSION}'.`);
  }
  const caller = authenticate(ctx, req);
  const runs = routeRuns(ctx, req, caller);
  if (runs) return runs;
  if (req.method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `The emulator serves GET only (got ${req.method}).`);

  const bySub = /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.DataFactory\/factories\/?$/i.exec(req.path);
  if (bySub) {
    const sub = bySub[1]!;
    authorize(ctx, caller, 'Microsoft.DataFactory/factories/read', `/subscriptions/${sub}`);
    if (!ctx.state.hasSubscription(sub)) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
    const all = ctx.state.factories.filter((f) => f.subscriptionId.toLowerCase() === sub.toLowerCase());
    return page(ctx, req, all.map((f) => factoryJson(f, undefined)));
  }
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.DataFactory\/factories(?:\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?)?\/?$/i.exec(req.path);
  if (!m) throw new ArmError(400, 'InvalidResourceType', `The resource path '${req.path}' is not a Microsoft.DataFactory path the emulator knows.`);
  const [, sub, rg, name, childRaw, childName] = m as unknown as [string, string, string, string | undefined, string | undefined, string | undefined];
  if (!ctx.state.hasSubscription(sub)) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  if (!ctx.state.hasResourceGroup(sub, rg)) {
    throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
  }
  const rgScope = `/subscriptions/${sub}/resourceGroups/${rg}`;
  if (!name) {
    authorize(ctx, caller, 'Microsoft.DataFactory/factories/read', rgScope);
    return page(ctx, req, ctx.state.factories.filter((f) => f.resourceGroup.toLowerCase() === rg.toLowerCase() && f.subscriptionId.toLowerCase() === sub.toLowerCase()).map((f) => factoryJson(f, undefined)));
  }
  const factory = ctx.state.factory(sub, rg, name);
  if (!factory) {
    throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.DataFactory/factories/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
  }
  if (!childRaw) {
    authorize(ctx, caller, 'Microsoft.DataFactory/factories/read', factoryId(factory));
    return { status: 200, body: factoryJson(factory, undefined) };
  }
  const child = FACTORY_CHILDREN.find((c) => c === childRaw.toLowerCase());
  if (!child) throw new ArmError(400, 'InvalidResourceType', `The resource type 'factories/${childRaw}' could not be found in the namespace 'Microsoft.DataFactory' for api version '${ADF_API_VERSION}'.`);
  authorize(ctx, caller, `Microsoft.DataFactory/factories/${child}/read`, factoryId(factory));
  const items = factory.children[child];
  if (childName === undefined) return page(ctx, req, [...items].map(([n, p]) => childJson(factory, child, n, p)));
  const found = [...items].find(([n]) => n.toLowerCase() === childName.toLowerCase());
  if (!found) throw new ArmError(404, 'NotFound', `Entity ${childName} not found`);
  return { status: 200, body: childJson(factory, child, found[0], found[1]) };
}

function pipelineRunJson(run: PipelineRun): Record<string, unknown> {
  return {
    runId: run.runId, runGroupId: run.runId, isLatest: true, pipelineName: run.pipelineName, parameters: run.parameters,
    invokedBy: { name: 'Manual', id: run.runId, invokedByType: 'Manual' }, runStart: new Date(run.runStart).toISOString(),
    runEnd: run.runEnd ? new Date(run.runEnd).toISOString() : null, durationInMs: run.runEnd ? run.runEnd - run.runStart : null,
    status: run.status, message: run.message, lastUpdated: new Date(run.runEnd ?? run.runStart).toISOString(), annotations: [], runDimension: {},
  };
}

/** pipelines/{p}/createRun (POST, body = parameters), pipelineruns/{runId} (GET), pipelineruns/{runId}/queryActivityruns (POST). */
function routeRuns(ctx: ArmContext, req: EmulatorRequest, caller: { appId: string; objectId: string }): EmulatorResponse | undefined {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.DataFactory\/factories\/([^/]+)\/(pipelines\/([^/]+)\/createRun|pipelineruns\/([^/]+)(\/queryActivityruns)?)$/i.exec(req.path);
  if (!m) return undefined;
  const [, sub, rg, name, , pipelineName, runId, query] = m as unknown as [string, string, string, string, string, string | undefined, string | undefined, string | undefined];
  const factory = ctx.state.factory(sub, rg, name);
  if (!factory) throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.DataFactory/factories/${name}' under resource group '${rg}' was not found.`);
  if (pipelineName !== undefined) {
    if (req.method !== 'POST') throw new ArmError(405, 'MethodNotAllowed', 'createRun is POST only.');
    authorize(ctx, caller, 'Microsoft.DataFactory/factories/pipelines/createrun/action', factoryId(factory));
    const found = [...factory.children.pipelines].find(([n]) => n.toLowerCase() === pipelineName.toLowerCase());
    if (!found) throw new ArmError(404, 'PipelineNotFound', `Entity ${pipelineName} not found`);
    if (!ctx.runner) throw new ArmError(501, 'NotImplemented', 'this emulator was started without a pipeline runner');
    const params = req.bodyText ? req.json<Record<string, unknown>>() : {};
    if (!params || typeof params !== 'object' || Array.isArray(params)) throw new ArmError(400, 'BadRequest', 'The request body must be a JSON object of pipeline parameters.');
    const run = startPipelineRun(ctx.runner, factory, found[0], found[1], params);
    ctx.runs.set(run.runId, run);
    return { status: 200, body: { runId: run.runId } };
  }
  authorize(ctx, caller, 'Microsoft.DataFactory/factories/pipelineruns/read', factoryId(factory));
  const run = ctx.runs.get(runId ?? '');
  if (!run || run.factory.toLowerCase() !== factory.name.toLowerCase()) throw new ArmError(404, 'PipelineRunNotFound', `Pipeline run ${runId ?? ''} not found`);
  if (query) {
    if (req.method !== 'POST') throw new ArmError(405, 'MethodNotAllowed', 'queryActivityruns is POST only.');
    return { status: 200, body: { value: run.activities.map((a) => ({ ...a, pipelineName: run.pipelineName, pipelineRunId: run.runId })) } };
  }
  if (req.method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', 'pipelineruns/{runId} is GET only.');
  return { status: 200, body: pipelineRunJson(run) };
}

export function createArmHandler(ctx: ArmContext): EmulatorHandler {
  return (req) => {
    const requestId = randomUUID();
    const headers = { 'x-ms-request-id': requestId, 'x-ms-correlation-request-id': String(req.headers['x-ms-correlation-request-id'] ?? requestId) };
    try {
      const res = route(ctx, req);
      return { ...res, headers: { ...headers, 'x-ms-ratelimit-remaining-subscription-reads': '11999', ...(res.headers ?? {}) } };
    } catch (err) {
      if (err instanceof ArmError) return { status: err.status, headers: { ...headers, ...err.headers }, body: armErrorBody(err.code, err.message) };
      throw err;
    }
  };
}
