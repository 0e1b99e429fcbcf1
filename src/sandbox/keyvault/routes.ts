import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { TokenValidator } from '../auth.js';
import type { EmulatorHandler, EmulatorRequest, EmulatorResponse } from '../emulator.js';
import type { NewVersion, PropertyUpdate, VaultStore } from './store.js';
import { VaultFailure } from './store.js';
import { deletedBundle, errorBody, failureBody, page, secretBundle, secretItem } from './wire.js';

/** HTTP routes of one emulated vault: the 401 challenge, access checks, then the secrets REST API. */

export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';

export type SecretPermission = 'get' | 'list' | 'set' | 'delete' | 'recover' | 'purge';

export type VaultOperationName =
  | 'set' | 'get' | 'update' | 'list' | 'list-versions' | 'delete'
  | 'list-deleted' | 'get-deleted' | 'recover' | 'purge';

/** One request the vault answered (after auth), for "what did the product do" assertions. */
export interface VaultOperation {
  at: number;
  vault: string;
  method: string;
  path: string;
  operation: VaultOperationName | 'unknown';
  secret?: string;
  version?: string;
  status: number;
  /** The caller's appId when a token validator identified it. */
  appId?: string;
  /** True for GET /secrets/{n}/ and /secrets/{n}/{v}: the only requests whose answer carries a value. */
  valueRead: boolean;
  /** True for set/update/delete/recover/purge. */
  mutating: boolean;
}

const PERMISSION: Record<VaultOperationName, SecretPermission> = {
  set: 'set', get: 'get', update: 'set', list: 'list', 'list-versions': 'list', delete: 'delete',
  'list-deleted': 'list', 'get-deleted': 'get', recover: 'recover', purge: 'purge',
};
const MUTATING = new Set<VaultOperationName>(['set', 'update', 'delete', 'recover', 'purge']);

interface Route { operation: VaultOperationName; secret?: string; version?: string }

/** Maps method + path to an operation; the trailing slash of "get latest" yields an empty version. */
export function routeOf(method: string, path: string): Route | undefined {
  const parts = path.split('/').slice(1);
  const [collection, name, third, fourth] = parts;
  if (collection === 'secrets') {
    if (parts.length === 1 || (parts.length === 2 && name === '')) return method === 'GET' ? { operation: 'list' } : undefined;
    if (!name) return undefined;
    if (parts.length === 2) {
      if (method === 'PUT') return { operation: 'set', secret: name };
      if (method === 'DELETE') return { operation: 'delete', secret: name };
      if (method === 'GET') return { operation: 'get', secret: name };
      return undefined;
    }
    if (parts.length === 3) {
      if (third === 'versions' && method === 'GET') return { operation: 'list-versions', secret: name };
      if (method === 'GET') return { operation: 'get', secret: name, version: third || undefined };
      if (method === 'PATCH') return { operation: 'update', secret: name, version: third || undefined };
      if (method === 'PUT' && third === '') return { operation: 'set', secret: name };
    }
    return undefined;
  }
  if (collection === 'deletedsecrets') {
    if (parts.length === 1 || (parts.length === 2 && name === '')) return method === 'GET' ? { operation: 'list-deleted' } : undefined;
    if (!name) return undefined;
    if (parts.length === 2 && method === 'GET') return { operation: 'get-deleted', secret: name };
    if (parts.length === 2 && method === 'DELETE') return { operation: 'purge', secret: name };
    if (parts.length === 3 && third === 'recover' && method === 'POST' && fourth === undefined) return { operation: 'recover', secret: name };
  }
  return undefined;
}

export interface VaultRouteContext {
  name: string;
  store: VaultStore;
  clock: Clock;
  tenantId: string;
  authorityHost: string;
  tokenValidator?: TokenValidator;
  /** appId → permissions; undefined = everyone with a valid token may do everything. */
  accessList(): Map<string, Set<SecretPermission>> | undefined;
  baseUrl(): string;
  pageSize: number;
  record(op: VaultOperation): void;
}

interface SetBody { value?: unknown; contentType?: string; tags?: Record<string, string>; attributes?: WireInputAttributes }
interface PatchBody { contentType?: string; tags?: Record<string, string>; attributes?: WireInputAttributes }
interface WireInputAttributes { enabled?: boolean; exp?: number; nbf?: number }

const toMs = (s: number | undefined): number | undefined => (typeof s === 'number' ? s * 1000 : undefined);

export function createVaultHandler(ctx: VaultRouteContext): EmulatorHandler {
  const challenge = `Bearer authorization="${ctx.authorityHost.replace(/\/$/, '')}/${ctx.tenantId}", resource="${KEY_VAULT_RESOURCE}"`;
  const headers = (): Record<string, string> => ({
    'x-ms-request-id': randomUUID(),
    'x-ms-keyvault-service-version': '1.9.2957.1',
    'x-ms-keyvault-region': 'westeurope',
  });
  const unauthorized = (message: string, error?: string): EmulatorResponse => ({
    status: 401,
    headers: { ...headers(), 'www-authenticate': error ? `${challenge}, error="${error}"` : challenge },
    body: errorBody('Unauthorized', message),
  });

  return (req: EmulatorRequest): EmulatorResponse => {
    const route = routeOf(req.method, req.path);
    const op: VaultOperation = {
      at: ctx.clock.now(), vault: ctx.name, method: req.method, path: req.path,
      operation: route?.operation ?? 'unknown', secret: route?.secret, version: route?.version, status: 0,
      valueRead: route?.operation === 'get', mutating: route ? MUTATING.has(route.operation) : false,
    };
    const answer = (res: EmulatorResponse): EmulatorResponse => {
      op.status = res.status;
      ctx.record(op);
      return { ...res, headers: { ...headers(), ...res.headers } };
    };

    // The challenge comes first, before the path or body is looked at (the SDK's first request has no body).
    const auth = req.headers.authorization;
    const match = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth.trim()) : null;
    if (!match) return answer(unauthorized('Request is missing a Bearer or PoP token.'));
    if (ctx.tokenValidator) {
      const check = ctx.tokenValidator.validate(match[1]!, KEY_VAULT_RESOURCE);
      if (!check.ok) return answer(unauthorized(`AKV10032: Invalid token: ${check.reason}`, 'invalid_token'));
      if (check.principal.tenantId !== ctx.tenantId) {
        return answer(unauthorized(`AKV10032: Invalid issuer. Expected tenant ${ctx.tenantId}, found ${check.principal.tenantId}.`, 'invalid_token'));
      }
      op.appId = check.principal.appId;
    }
    if (!route) return answer({ status: 400, body: errorBody('BadParameter', `Unknown operation ${req.method} ${req.path}.`) });

    const access = ctx.accessList();
    const permission = PERMISSION[route.operation];
    if (access && !(op.appId !== undefined && access.get(op.appId)?.has(permission))) {
      return answer({
        status: 403,
        body: errorBody('Forbidden',
          `The user, group or application 'appid=${op.appId ?? 'unknown'}' does not have secrets ${permission} permission on key vault '${ctx.name};location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
          'ForbiddenByPolicy'),
      });
    }

    try {
      return answer(perform(ctx, req, route));
    } catch (err) {
      if (err instanceof VaultFailure) return answer({ status: err.status, body: failureBody(err) });
      throw err;
    }
  };
}

function perform(ctx: VaultRouteContext, req: EmulatorRequest, route: Route): EmulatorResponse {
  const base = ctx.baseUrl();
  const { store } = ctx;
  const name = route.secret ?? '';
  switch (route.operation) {
    case 'set': {
      const body = req.json<SetBody | null>();
      if (!body || typeof body !== 'object') throw new VaultFailure(400, 'BadParameter', 'The request body must be a JSON SecretSetParameters object.');
      if (typeof body.value !== 'string') throw new VaultFailure(400, 'BadParameter', 'Property value is required and must be a string.');
      const input: NewVersion = {
        value: body.value, contentType: body.contentType, tags: body.tags,
        enabled: body.attributes?.enabled, exp: toMs(body.attributes?.exp), nbf: toMs(body.attributes?.nbf),
      };
      const v = store.set(name, input);
      return { status: 200, body: secretBundle(base, store.secret(name), v, true) };
    }
    case 'get': {
      const v = store.readValue(name, route.version);
      return { status: 200, body: secretBundle(base, store.secret(name), v, true) };
    }
    case 'update': {
      const body = req.json<PatchBody | null>() ?? {};
      const patch: PropertyUpdate = {
        contentType: body.contentType, tags: body.tags,
        enabled: body.attributes?.enabled, exp: toMs(body.attributes?.exp), nbf: toMs(body.attributes?.nbf),
      };
      const v = store.update(name, route.version, patch);
      return { status: 200, body: secretBundle(base, store.secret(name), v, false) };
    }
    case 'list': {
      return { status: 200, body: page(store.list(), req.url, base, '/secrets', ctx.pageSize, (s) => secretItem(base, s, s.versions[s.versions.length - 1]!, false)) };
    }
    case 'list-versions': {
      const s = store.secret(name);
      const items = s.versions.map((v) => secretItem(base, s, v, true));
      return { status: 200, body: page(items, req.url, base, `/secrets/${name}/versions`, ctx.pageSize) };
    }
    case 'delete': {
      const d = store.delete(name);
      return { status: 200, body: deletedBundle(base, d, false) };
    }
    case 'list-deleted': {
      const items = store.listDeleted().map((d) => deletedBundle(base, d, true));
      return { status: 200, body: page(items, req.url, base, '/deletedsecrets', ctx.pageSize) };
    }
    case 'get-deleted':
      return { status: 200, body: deletedBundle(base, store.deletedSecret(name), false) };
    case 'recover': {
      const s = store.recover(name);
      return { status: 200, body: secretBundle(base, s, s.versions[s.versions.length - 1]!, false) };
    }
    case 'purge':
      store.purge(name);
      return { status: 204 };
  }
}
