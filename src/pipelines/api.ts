/**
 * The pipeline JIT API, shaped for Data Factory's Web activity (every answer is a JSON object):
 *   POST /api/jit                 → 202 + Location (…/wait) and the grant's status (200 for a retry that is ready)
 *   GET  /api/jit/:id             → 200 always, { status: pending | creating | ready | releasing | released | expired | denied | failed }
 *                                   (the Until-loop pattern polls this)
 *   GET  /api/jit/:id/wait        → 202 + Location + Retry-After until ready, then 200; 403 denied; 409 ended or failed
 *                                   (the async pattern: ADF follows 202 + Location by itself)
 *   POST /api/jit/:id/release     → 200 released (202 while the teardown is still running)
 */
import type { HttpRequestData, HttpResponseData, HttpRoute } from '../domain/http.js';
import type { Store } from '../store/store.js';
import type { AuthRefusal, CallerAuthenticator, PipelineCaller } from './auth.js';
import type { GrantView, PipelineGrants } from './grants.js';
import { parsePipelineJitBody } from './request.js';
import type { KeywardenConfig } from '../config/schema.js';

const POLL_SECONDS = '10';

function errorResponse(status: number, code: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): HttpResponseData {
  return { status, body: { error: { code, message, ...extra } }, headers };
}

function refusal(r: AuthRefusal): HttpResponseData {
  const headers: Record<string, string> = r.status === 401 ? { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${r.message.replace(/"/g, "'")}"` } : r.status === 503 ? { 'Retry-After': '10' } : {};
  return errorResponse(r.status, r.code, r.message, {}, headers);
}

/** The grant as the pipeline sees it: secret names (never values) once they are ready. */
export function grantBody(view: GrantView, baseUrl: string): Record<string, unknown> {
  const g = view.grant;
  const live = view.status === 'ready' || view.status === 'releasing';
  return {
    id: g.requestId,
    status: view.status,
    ...(view.reason ? { reason: view.reason } : {}),
    workspace: g.request.workspace,
    pipelineRunId: g.request.pipelineRunId,
    approval: g.outside.length ? { kind: 'approver', outside: g.outside } : { kind: 'standing', id: g.standingApprovalId },
    vault: g.request.vault,
    ...(live ? { tokenSecretName: g.request.tokenSecretName, poolSecretName: g.request.poolSecretName, instancePoolId: view.job?.facts.poolId ?? null } : {}),
    ...(view.expiresAt ? { expiresAt: new Date(view.expiresAt).toISOString() } : {}),
    statusUrl: `${baseUrl}/api/jit/${g.requestId}`,
    waitUrl: `${baseUrl}/api/jit/${g.requestId}/wait`,
    releaseUrl: `${baseUrl}/api/jit/${g.requestId}/release`,
  };
}

export function pipelineApiRoutes(deps: { auth: CallerAuthenticator; grants: PipelineGrants; config: KeywardenConfig; store: Store }): HttpRoute[] {
  const { auth, grants, config, store } = deps;

  async function caller(req: HttpRequestData): Promise<PipelineCaller | HttpResponseData> {
    const result = await auth.authenticate(req.headers.authorization);
    if (result.ok) return result.caller;
    store.appendAudit({ action: 'pipeline.api.refused', subject: 'api:/api/jit', result: 'refused', details: { code: result.code, reason: result.message, status: result.status } });
    return refusal(result);
  }
  const isResponse = (x: PipelineCaller | HttpResponseData): x is HttpResponseData => 'status' in x;

  /** Only the caller that asked may see or release a grant; anyone else learns nothing about it. */
  async function ownGrant(req: HttpRequestData) {
    const who = await caller(req);
    if (isResponse(who)) return who;
    const grant = grants.get(req.params.id ?? '');
    if (!grant || grant.caller.objectId !== who.objectId) return errorResponse(404, 'grant_not_found', `no grant ${String(req.params.id).slice(0, 40)} for this caller; use the id POST /api/jit returned`);
    return { who, grant };
  }

  const waitAnswer = (view: GrantView, baseUrl: string): HttpResponseData => {
    const body = grantBody(view, baseUrl);
    if (view.status === 'pending' || view.status === 'creating') {
      return { status: 202, body, headers: { Location: `${baseUrl}/api/jit/${view.grant.requestId}/wait`, 'Retry-After': POLL_SECONDS } };
    }
    if (view.status === 'ready' || view.status === 'releasing') return { status: 200, body };
    if (view.status === 'denied') return errorResponse(403, 'denied', view.reason ?? 'an approver denied the request', { grant: body });
    return errorResponse(409, `grant_${view.status}`, `the grant is ${view.status}${view.reason ? `: ${view.reason}` : ''}`, { grant: body });
  };

  return [
    {
      method: 'POST', path: '/api/jit',
      async handle(req) {
        const who = await caller(req);
        if (isResponse(who)) return who;
        const parsed = parsePipelineJitBody(req.body, who.config, config);
        if (!parsed.ok) return errorResponse(parsed.status, parsed.code, parsed.problems.join('; '), { problems: parsed.problems });
        const outcome = await grants.create(who, parsed.value);
        if (outcome.kind === 'conflict') return errorResponse(409, outcome.code, outcome.message);
        if (outcome.kind === 'unavailable') return errorResponse(503, 'unavailable', outcome.message, {}, { 'Retry-After': POLL_SECONDS });
        const answer = waitAnswer(outcome.view, req.baseUrl);
        const body = { ...answer.body, ...(outcome.kind === 'existing' ? { retried: true } : {}) };
        return { ...answer, status: answer.status === 200 ? 200 : answer.status === 202 ? 202 : answer.status, body, headers: { ...answer.headers, Location: `${req.baseUrl}/api/jit/${outcome.view.grant.requestId}/wait` } };
      },
    },
    {
      method: 'GET', path: '/api/jit/:id',
      async handle(req) {
        const found = await ownGrant(req);
        if ('status' in found) return found;
        return { status: 200, body: grantBody(grants.view(found.grant), req.baseUrl) };
      },
    },
    {
      method: 'GET', path: '/api/jit/:id/wait',
      async handle(req) {
        const found = await ownGrant(req);
        if ('status' in found) return found;
        return waitAnswer(grants.view(found.grant), req.baseUrl);
      },
    },
    {
      method: 'POST', path: '/api/jit/:id/release',
      async handle(req) {
        const found = await ownGrant(req);
        if ('status' in found) return found;
        const view = await grants.release(found.grant, found.who.config.name);
        const body = grantBody(view, req.baseUrl);
        return view.status === 'releasing' ? { status: 202, body, headers: { Location: `${req.baseUrl}/api/jit/${view.grant.requestId}`, 'Retry-After': '5' } } : { status: 200, body };
      },
    },
  ];
}
