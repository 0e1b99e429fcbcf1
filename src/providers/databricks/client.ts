import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import { registerSecret } from '../../logging/redact.js';
import type { DatabricksAuth } from './auth.js';
import { toTokenSource } from './auth.js';
import { DatabricksError, isDatabricksError } from './errors.js';
import type { CallEvent, CallSpec, RetryPolicy } from './http.js';
import { DatabricksHttp, DEFAULT_RETRY } from './http.js';
import type { HostGate } from '../host-gate.js';
import type {
  CreatedToken, CurrentPrincipal, InstancePool, InstancePoolEdit, InstancePoolSpec, PublicTokenInfo,
  ScimServicePrincipal, ScimUser, TokenInfo, TokenPermissionEntry, TokenPermissions,
} from './types.js';
import {
  listField, poolBody, toCurrentPrincipal, toInstancePool, toPublicTokenInfo, toScimServicePrincipal, toScimUser,
  toTokenInfo, toTokenPermissions,
} from './types.js';

/** A thin typed client for one Azure Databricks workspace (the SDK is unfit: reference §9.1). */

export interface DatabricksClientOptions {
  /** Workspace URL, e.g. https://adb-7405617279531127.7.azuredatabricks.net (or an emulator URL). */
  host: string;
  auth: DatabricksAuth;
  /** Per-attempt timeout (default 30 s). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  clock?: Clock;
  fetch?: typeof fetch;
  onCall?: (event: CallEvent) => void;
  /** The workspace's shared request gate (src/providers/host-gate.ts). */
  gate?: HostGate;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ScimListOptions extends CallOptions {
  /** SCIM filter, e.g. `userName eq "a@b.com"`. */
  filter?: string;
  /** Comma-separated attributes to return (id is always returned). */
  attributes?: string;
  /** SCIM `count` per page (default 1000). */
  pageSize?: number;
}

const TOKENS_PERMISSIONS = '/api/2.0/permissions/authorization/tokens';
const SCIM = '/api/2.0/preview/scim/v2';

export class DatabricksClient {
  readonly host: string;
  private readonly http: DatabricksHttp;

  constructor(private readonly options: DatabricksClientOptions) {
    if (!/^https?:\/\/[^/]+/i.test(options.host ?? '')) {
      throw new DatabricksError({ code: 'INVALID_CONFIG', message: `Databricks host "${options.host}" is not a URL: use https://adb-<workspace-id>.<n>.azuredatabricks.net.` });
    }
    const clock = options.clock ?? systemClock;
    this.http = new DatabricksHttp({
      host: options.host,
      tokenSource: toTokenSource(options.auth, clock),
      timeoutMs: options.timeoutMs ?? 30_000,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      clock,
      fetch: options.fetch,
      onCall: options.onCall,
      gate: options.gate,
    });
    this.host = this.http.host;
  }

  /** The same workspace, authenticated by another PAT (e.g. to verify a freshly rotated token). */
  withToken(pat: string): DatabricksClient {
    return new DatabricksClient({ ...this.options, auth: { pat } });
  }

  private call<T = Record<string, unknown>>(spec: CallSpec): Promise<T> {
    return this.http.call<T>(spec);
  }

  // ---- Token Management (admin) ----

  /** Every PAT in the workspace (no paging), optionally filtered by creator. */
  async listTokens(options: CallOptions & { createdById?: string; createdByUsername?: string } = {}): Promise<TokenInfo[]> {
    const body = await this.call<{ token_infos?: unknown[] }>({
      method: 'GET', path: '/api/2.0/token-management/tokens', kind: 'read', signal: options.signal,
      query: { created_by_id: options.createdById, created_by_username: options.createdByUsername },
    });
    return listField(body, 'token_infos').map(toTokenInfo);
  }

  /** undefined when the token no longer exists. */
  async getToken(tokenId: string, options: CallOptions = {}): Promise<TokenInfo | undefined> {
    try {
      const body = await this.call<{ token_info?: unknown }>({ method: 'GET', path: `/api/2.0/token-management/tokens/${encodeURIComponent(tokenId)}`, kind: 'read', signal: options.signal });
      return toTokenInfo(body.token_info);
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /** Revokes any PAT. Returns false when it was already gone (404), which counts as done. */
  async deleteToken(tokenId: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.call({ method: 'DELETE', path: `/api/2.0/token-management/tokens/${encodeURIComponent(tokenId)}`, kind: 'idempotent', signal: options.signal });
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Mints a PAT for a service principal (admin). Never retried: put a marker in `comment` to reconcile OUTCOME_UNKNOWN. */
  async createOboToken(input: CallOptions & { applicationId: string; lifetimeSeconds: number; comment: string; scopes?: string[] }): Promise<CreatedToken<TokenInfo>> {
    const body = await this.call<{ token_value?: unknown; token_info?: unknown }>({
      method: 'POST', path: '/api/2.0/token-management/on-behalf-of/tokens', kind: 'create', signal: input.signal,
      body: { application_id: input.applicationId, lifetime_seconds: input.lifetimeSeconds, comment: input.comment, ...(input.scopes?.length ? { scopes: input.scopes } : {}) },
    });
    return { tokenValue: tokenValueOf(body.token_value), tokenInfo: toTokenInfo(body.token_info) };
  }

  // ---- Token API (the caller's own tokens) ----

  /** Creates a PAT owned by the caller. Never retried (see createOboToken). */
  async createToken(input: CallOptions & { lifetimeSeconds: number; comment: string; scopes?: string[] }): Promise<CreatedToken<PublicTokenInfo>> {
    const body = await this.call<{ token_value?: unknown; token_info?: unknown }>({
      method: 'POST', path: '/api/2.0/token/create', kind: 'create', signal: input.signal,
      body: { lifetime_seconds: input.lifetimeSeconds, comment: input.comment, ...(input.scopes?.length ? { scopes: input.scopes } : {}) },
    });
    return { tokenValue: tokenValueOf(body.token_value), tokenInfo: toPublicTokenInfo(body.token_info) };
  }

  /** The caller's valid tokens; the way to verify a PAT works (needs only CAN_USE). */
  async listOwnTokens(options: CallOptions = {}): Promise<PublicTokenInfo[]> {
    const body = await this.call<{ token_infos?: unknown[] }>({ method: 'GET', path: '/api/2.0/token/list', kind: 'read', signal: options.signal });
    return listField(body, 'token_infos').map(toPublicTokenInfo);
  }

  /** Returns false when the token was already gone. */
  async deleteOwnToken(tokenId: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.call({ method: 'POST', path: '/api/2.0/token/delete', kind: 'idempotent', body: { token_id: tokenId }, signal: options.signal });
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  // ---- workspace settings ----

  /** Values are strings as Databricks stores them; unset keys come back as null. */
  async getWorkspaceConf(keys: string[], options: CallOptions = {}): Promise<Record<string, string | null>> {
    const body = await this.call<Record<string, unknown>>({ method: 'GET', path: '/api/2.0/workspace-conf', kind: 'read', query: { keys: keys.join(',') }, signal: options.signal });
    return Object.fromEntries(keys.map((k) => {
      const v = body[k];
      return [k, v === undefined || v === null ? null : String(v)];
    }));
  }

  /** Who may use tokens. On a workspace that never had a token (G6) this is `{ exists: false, entries: [] }`. */
  async getTokenPermissions(options: CallOptions = {}): Promise<TokenPermissions> {
    try {
      return toTokenPermissions(await this.call({ method: 'GET', path: TOKENS_PERMISSIONS, kind: 'read', signal: options.signal }));
    } catch (err) {
      if (isDatabricksError(err) && err.code === 'RESOURCE_DOES_NOT_EXIST' && /tokens tokens does not exist/i.test(err.serverMessage ?? '')) {
        return { exists: false, entries: [] };
      }
      throw err;
    }
  }

  /** PATCH: adds CAN_USE grants (e.g. for a service principal before OBO). Never removes anyone. */
  async grantTokenUse(grants: Array<Pick<TokenPermissionEntry, 'type' | 'principal'>>, options: CallOptions = {}): Promise<TokenPermissions> {
    const key = { group: 'group_name', user: 'user_name', 'service-principal': 'service_principal_name' } as const;
    const body = { access_control_list: grants.map((g) => ({ [key[g.type]]: g.principal, permission_level: 'CAN_USE' })) };
    return toTokenPermissions(await this.call({ method: 'PATCH', path: TOKENS_PERMISSIONS, kind: 'idempotent', body, signal: options.signal }));
  }

  /** PATCH workspace-conf: values are strings (G7); "0" clears maxTokenLifetimeDays ("" is refused). Idempotent. */
  async setWorkspaceConf(values: Record<string, string>, options: CallOptions = {}): Promise<void> {
    await this.call({ method: 'PATCH', path: '/api/2.0/workspace-conf', kind: 'idempotent', body: values, signal: options.signal });
  }

  /** PATCH: merges these CAN_USE grants into the token ACL; nobody loses anything. */
  async patchTokenPermissions(grants: Array<Pick<TokenPermissionEntry, 'type' | 'principal'>>, options: CallOptions = {}): Promise<TokenPermissions> {
    return toTokenPermissions(await this.call({ method: 'PATCH', path: TOKENS_PERMISSIONS, kind: 'idempotent', body: aclBody(grants), signal: options.signal }));
  }

  /**
   * PUT: replaces every direct grant with exactly these. Whoever is left out loses CAN_USE; a direct grant lost deletes
   * that principal's tokens at once. Call it only with a list computed from a fresh GET and an approved plan.
   */
  async putTokenPermissions(grants: Array<Pick<TokenPermissionEntry, 'type' | 'principal'>>, options: CallOptions = {}): Promise<TokenPermissions> {
    return toTokenPermissions(await this.call({ method: 'PUT', path: TOKENS_PERMISSIONS, kind: 'idempotent', body: aclBody(grants), signal: options.signal }));
  }

  // ---- SCIM ----

  async listUsers(options: ScimListOptions = {}): Promise<ScimUser[]> {
    return (await this.scimList('Users', options)).map(toScimUser);
  }

  async listServicePrincipals(options: ScimListOptions = {}): Promise<ScimServicePrincipal[]> {
    return (await this.scimList('ServicePrincipals', options)).map(toScimServicePrincipal);
  }

  /** The caller. Can 403 for principals without workspace-access (G14): do not use it as the only check. */
  async me(options: CallOptions = {}): Promise<CurrentPrincipal> {
    return toCurrentPrincipal(await this.call({ method: 'GET', path: `${SCIM}/Me`, kind: 'read', signal: options.signal }));
  }

  /** Pages with 1-based startIndex until a page comes back empty (not by totalResults, as the SDKs do). */
  private async scimList(collection: 'Users' | 'ServicePrincipals', options: ScimListOptions): Promise<unknown[]> {
    const all: unknown[] = [];
    const seen = new Set<string>();
    let startIndex = 1;
    for (;;) {
      const page = await this.call<{ Resources?: unknown[] }>({
        method: 'GET', path: `${SCIM}/${collection}`, kind: 'read', signal: options.signal,
        query: { filter: options.filter, attributes: options.attributes, startIndex, count: options.pageSize ?? 1000 },
      });
      const resources = listField(page, 'Resources');
      if (resources.length === 0) return all;
      const ids = resources.map((r) => String((r as { id?: unknown })?.id));
      if (ids.every((id) => seen.has(id))) {
        throw new DatabricksError({ code: 'UNEXPECTED_RESPONSE', message: `SCIM ${collection} paging did not advance at startIndex=${startIndex} on ${this.host}; the listing would never end.` });
      }
      for (const id of ids) seen.add(id);
      all.push(...resources);
      startIndex += resources.length;
    }
  }

  // ---- Instance pools ----

  /** Never retried: tag the pool (custom_tags) so an OUTCOME_UNKNOWN can be reconciled by listing. */
  async createInstancePool(spec: InstancePoolSpec & CallOptions): Promise<{ instancePoolId: string }> {
    const body = await this.call<{ instance_pool_id?: unknown }>({ method: 'POST', path: '/api/2.0/instance-pools/create', kind: 'create', body: poolBody(spec), signal: spec.signal });
    if (typeof body.instance_pool_id !== 'string') {
      throw new DatabricksError({ code: 'UNEXPECTED_RESPONSE', message: `instance-pools/create on ${this.host} answered without instance_pool_id.` });
    }
    return { instancePoolId: body.instance_pool_id };
  }

  /** undefined when the pool does not exist (or was deleted). */
  async getInstancePool(instancePoolId: string, options: CallOptions = {}): Promise<InstancePool | undefined> {
    try {
      const pool = toInstancePool(await this.call({ method: 'GET', path: '/api/2.0/instance-pools/get', kind: 'read', query: { instance_pool_id: instancePoolId }, signal: options.signal }));
      return pool.state === 'DELETED' ? undefined : pool;
    } catch (err) {
      if (isGone(err) || (isDatabricksError(err) && err.statusCode === 400 && /can't find an instance pool/i.test(err.serverMessage ?? ''))) return undefined;
      throw err;
    }
  }

  async listInstancePools(options: CallOptions = {}): Promise<InstancePool[]> {
    const body = await this.call<{ instance_pools?: unknown[] }>({ method: 'GET', path: '/api/2.0/instance-pools/list', kind: 'read', signal: options.signal });
    return listField(body, 'instance_pools').map(toInstancePool).filter((p) => p.state !== 'DELETED');
  }

  async editInstancePool(edit: InstancePoolEdit & CallOptions): Promise<void> {
    await this.call({ method: 'POST', path: '/api/2.0/instance-pools/edit', kind: 'idempotent', body: poolBody(edit), signal: edit.signal });
  }

  /** Returns false when the pool was already gone. */
  async deleteInstancePool(instancePoolId: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.call({ method: 'POST', path: '/api/2.0/instance-pools/delete', kind: 'idempotent', body: { instance_pool_id: instancePoolId }, signal: options.signal });
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }
}

/** RESOURCE_DOES_NOT_EXIST (404; 400 on older platforms) means "already gone"; a 404 for a wrong path does not. */
function isGone(err: unknown): boolean {
  return isDatabricksError(err) && (err.code === 'RESOURCE_DOES_NOT_EXIST' || err.code === 'NOT_FOUND');
}

function aclBody(grants: Array<Pick<TokenPermissionEntry, 'type' | 'principal'>>): Record<string, unknown> {
  const key = { group: 'group_name', user: 'user_name', 'service-principal': 'service_principal_name' } as const;
  return { access_control_list: grants.map((g) => ({ [key[g.type]]: g.principal, permission_level: 'CAN_USE' })) };
}

function tokenValueOf(v: unknown): string {
  if (typeof v !== 'string' || !v) {
    throw new DatabricksError({ code: 'UNEXPECTED_RESPONSE', message: 'Databricks created a token but returned no token_value; revoke it by its marker comment and try again.' });
  }
  registerSecret(v);
  return v;
}

export { DatabricksError } from './errors.js';
