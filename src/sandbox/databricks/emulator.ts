import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { TokenValidator } from '../auth.js';
import type { EmulatorRequest, EmulatorResponse, Fault, RecordedRequest } from '../emulator.js';
import { EmulatorServer } from '../emulator.js';
import { authenticate, isResponse } from './authn.js';
import type { InstancePool, PoolState, TokenGrant, WorkspacePrincipal, WorkspaceToken } from './model.js';
import { parseScopes, WorkspaceModel } from './model.js';
import { apiError, faultBody } from './responses.js';
import { routePools } from './routes-pools.js';
import { routeScim } from './routes-scim.js';
import { routeTokens } from './routes-tokens.js';
import { routeJobs } from './routes-jobs.js';

/** Several emulated Azure Databricks workspaces in one process, each on its own port (its own "host"). */

export interface DatabricksWorkspaceSpec {
  name: string;
  /** 15–16 digit workspace id (bigint or decimal string: it may exceed 2^53). */
  workspaceId: bigint | string;
  /** Fixed port for this workspace (default: `options.port + index`, or ephemeral). */
  port?: number;
}

export interface DatabricksEmulatorOptions {
  workspaces: DatabricksWorkspaceSpec[];
  clock?: Clock;
  /** Validates Entra bearer tokens (audience 2ff814a6-…); without it only PATs authenticate. */
  tokenValidator?: TokenValidator;
  /** First port; workspace i listens on port + i. 0 or omitted = ephemeral ports. */
  port?: number;
  host?: string;
}

/** A token as inspection shows it: everything but the secret value. */
export interface TokenSnapshot {
  tokenId: string;
  comment: string;
  ownerId: string;
  ownerName: string;
  createdById: string;
  createdByUsername: string;
  creationTime: number;
  expiryTime: number;
  lastUsedDay: number;
  revoked: boolean;
  revokedAt?: number;
  revokedReason?: string;
  /** Absent = an all-APIs token. */
  scopes?: string[];
  autoscopeState?: string;
}

export interface PrincipalSnapshot {
  kind: 'user' | 'service-principal';
  id: string;
  userName: string;
  displayName: string;
  applicationId?: string;
  active: boolean;
  admin: boolean;
  groups: string[];
}

export interface AddTokenInput {
  /** userName, SP applicationId or SP displayName. */
  ownerName: string;
  comment: string;
  /** Epoch ms (default: now). */
  createdAt?: number;
  /** Epoch ms, or -1 for never. */
  expiryTime: number;
  /** Epoch ms of the last use (truncated to the day); omitted/0 = never used. */
  lastUsedDay?: number;
  /** Creator (default: the owner; for SP tokens, an admin calling OBO). */
  createdByName?: string;
  /** API scopes, e.g. ['sql', 'jobs:read']; omitted = all APIs. */
  scopes?: string[];
  /** e.g. AUTOSCOPE_STATE_RUNNING: scopes still being inferred. */
  autoscopeState?: string;
}

export interface DatabricksWorkspaceHandle {
  readonly name: string;
  readonly workspaceId: string;
  readonly url: string;
  readonly server: EmulatorServer;
  /** Direct access to the state, for tests that need more than the helpers below. */
  readonly model: WorkspaceModel;
  requests(): RecordedRequest[];
  clearRequests(): void;
  injectFault(fault: Fault): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  /** Answer 401/403 auth failures with the HTML error page (G3) instead of JSON. */
  setHtmlAuthErrors(on: boolean): void;

  tokens(options?: { includeRevoked?: boolean }): TokenSnapshot[];
  users(): PrincipalSnapshot[];
  servicePrincipals(): PrincipalSnapshot[];
  pools(options?: { includeDeleted?: boolean }): InstancePool[];
  conf(): Record<string, string>;
  tokenPermissions(): TokenGrant[];

  addUser(input: { userName: string; displayName?: string; active?: boolean; admin?: boolean; id?: bigint | string; entitlements?: string[] }): PrincipalSnapshot;
  addServicePrincipal(input: { applicationId: string; displayName: string; active?: boolean; admin?: boolean; id?: bigint | string; entitlements?: string[] }): PrincipalSnapshot;
  setActive(name: string, active: boolean): void;
  /** Adds or removes a user / service principal from a workspace group (indirect CAN_USE through that group). */
  setGroupMember(name: string, group: string, member: boolean): void;
  addToken(input: AddTokenInput): { tokenId: string; tokenValue: string };
  revokeToken(tokenId: string): void;
  setConf(values: Record<string, string>): void;
  /** PUT semantics: replaces the grants; principals losing CAN_USE lose their tokens. Returns who lost it. */
  setTokenPermissions(grants: TokenGrant[]): string[];
  setPoolState(poolId: string, state: PoolState): void;
  setPoolStats(poolId: string, stats: Partial<InstancePool['stats']>): void;
}

export interface DatabricksEmulator {
  readonly workspaces: DatabricksWorkspaceHandle[];
  workspace(name: string): DatabricksWorkspaceHandle;
  /** Workspace name → base URL. */
  urls(): Record<string, string>;
  close(): Promise<void>;
}

function toWorkspaceId(id: bigint | string, name: string): bigint {
  const text = typeof id === 'bigint' ? id.toString() : id.trim();
  if (!/^\d{1,19}$/.test(text)) throw new Error(`workspace ${name}: workspaceId must be a decimal number (got "${text}")`);
  return BigInt(text);
}

function snapshotToken(ws: WorkspaceModel, t: WorkspaceToken): TokenSnapshot {
  const owner = ws.principals.get(t.ownerId);
  return {
    tokenId: t.tokenId, comment: t.comment, ownerId: t.ownerId.toString(), ownerName: owner?.userName ?? '(deleted)',
    createdById: t.createdById.toString(), createdByUsername: t.createdByUsername, creationTime: t.creationTime,
    expiryTime: t.expiryTime, lastUsedDay: t.lastUsedDay, revoked: t.revoked, revokedAt: t.revokedAt, revokedReason: t.revokedReason,
    ...(t.scopes ? { scopes: [...t.scopes] } : {}), ...(t.autoscopeState ? { autoscopeState: t.autoscopeState } : {}),
  };
}

function snapshotPrincipal(ws: WorkspaceModel, p: WorkspacePrincipal): PrincipalSnapshot {
  return {
    kind: p.kind, id: p.id.toString(), userName: p.userName, displayName: p.displayName, applicationId: p.applicationId,
    active: p.active, admin: ws.isAdmin(p), groups: [...p.groups],
  };
}

function createHandler(ws: WorkspaceModel, settings: { tokenValidator?: TokenValidator; htmlAuthErrors: boolean }, clock: Clock) {
  return (req: EmulatorRequest): EmulatorResponse => {
    const caller = authenticate(ws, req, settings);
    if (isResponse(caller)) return caller;
    // The /api/2.0/preview/… aliases of token-management and permissions answer like the main paths.
    const path = req.path.replace(/^\/api\/2\.0\/preview\/(token-management|permissions)\//, '/api/2.0/$1/');
    const ctx = { ws, req, caller, path };
    return routeTokens(ctx) ?? routePools(ctx) ?? routeScim(ctx) ?? routeJobs(ctx, () => clock.now()) ??
      apiError(404, 'ENDPOINT_NOT_FOUND', `No API found for '${req.method} ${req.path}'`);
  };
}

function workspaceHandle(ws: WorkspaceModel, server: EmulatorServer, settings: { htmlAuthErrors: boolean }, clock: Clock): DatabricksWorkspaceHandle {
  const principal = (name: string): WorkspacePrincipal => {
    const p = ws.findPrincipal(name);
    if (!p) throw new Error(`workspace ${ws.name}: no user or service principal named ${name}`);
    return p;
  };
  const pool = (id: string): InstancePool => {
    const p = ws.pools.get(id);
    if (!p) throw new Error(`workspace ${ws.name}: no instance pool ${id}`);
    return p;
  };
  const byKind = (kind: WorkspacePrincipal['kind']) => [...ws.principals.values()].filter((p) => p.kind === kind).map((p) => snapshotPrincipal(ws, p));
  return {
    name: ws.name,
    workspaceId: ws.workspaceId.toString(),
    get url() { return server.url; },
    server,
    model: ws,
    requests: () => [...server.requests],
    clearRequests: () => server.clearRequests(),
    injectFault: (f) => server.injectFault(f),
    clearFaults: () => server.clearFaults(),
    setLatency: (ms) => server.setLatency(ms),
    setHtmlAuthErrors: (on) => { settings.htmlAuthErrors = on; },

    tokens: (o = {}) => [...ws.tokens.values()].filter((t) => o.includeRevoked || !t.revoked).map((t) => snapshotToken(ws, t)),
    users: () => byKind('user'),
    servicePrincipals: () => byKind('service-principal'),
    pools: (o = {}) => [...ws.pools.values()].filter((p) => o.includeDeleted || p.state !== 'DELETED').map((p) => structuredClone(p)),
    conf: () => Object.fromEntries(ws.conf),
    tokenPermissions: () => ws.grants.map((g) => ({ ...g })),

    addUser: (u) => snapshotPrincipal(ws, ws.addPrincipal({
      kind: 'user', userName: u.userName, displayName: u.displayName ?? u.userName, active: u.active ?? true,
      id: u.id === undefined ? undefined : BigInt(u.id), groups: u.admin ? ['admins'] : [], entitlements: u.entitlements,
    })),
    addServicePrincipal: (s) => snapshotPrincipal(ws, ws.addPrincipal({
      kind: 'service-principal', userName: s.applicationId, applicationId: s.applicationId, displayName: s.displayName,
      active: s.active ?? true, id: s.id === undefined ? undefined : BigInt(s.id), groups: s.admin ? ['admins'] : [], entitlements: s.entitlements,
    })),
    setActive: (name, active) => { principal(name).active = active; },
    setGroupMember: (name, group, member) => {
      if (member) principal(name).groups.add(group);
      else principal(name).groups.delete(group);
    },
    addToken: (t) => {
      const owner = principal(t.ownerName);
      const createdBy = t.createdByName ? principal(t.createdByName) : owner;
      const token = ws.mintToken({
        owner, createdBy, comment: t.comment, expiryTime: t.expiryTime, creationTime: t.createdAt ?? clock.now(),
        lastUsedDay: t.lastUsedDay ? Math.floor(t.lastUsedDay / 86_400_000) * 86_400_000 : 0,
        scopes: t.scopes ? parseScopes(t.scopes) : undefined, autoscopeState: t.autoscopeState,
      });
      return { tokenId: token.tokenId, tokenValue: token.value };
    },
    revokeToken: (id) => {
      const t = ws.tokens.get(id);
      if (!t) throw new Error(`workspace ${ws.name}: no token ${id}`);
      ws.revokeToken(t, 'revoked by the emulator handle');
    },
    setConf: (values) => { for (const [k, v] of Object.entries(values)) ws.conf.set(k, v); },
    setTokenPermissions: (grants) => {
      ws.tokensObjectExists = true;
      return ws.replaceGrants(grants);
    },
    setPoolState: (id, state) => { pool(id).state = state; },
    setPoolStats: (id, stats) => { Object.assign(pool(id).stats, stats); },
  };
}

export async function startDatabricksEmulator(options: DatabricksEmulatorOptions): Promise<DatabricksEmulator> {
  if (!options.workspaces.length) throw new Error('startDatabricksEmulator: give at least one workspace');
  const names = new Set<string>();
  const clock = options.clock ?? systemClock;
  const handles: DatabricksWorkspaceHandle[] = [];
  try {
    for (const [i, spec] of options.workspaces.entries()) {
      if (names.has(spec.name)) throw new Error(`workspace ${spec.name} is listed twice`);
      names.add(spec.name);
      const ws = new WorkspaceModel(spec.name, toWorkspaceId(spec.workspaceId, spec.name), clock);
      const settings = { tokenValidator: options.tokenValidator, htmlAuthErrors: false };
      const server = new EmulatorServer({ name: `databricks:${spec.name}`, handler: createHandler(ws, settings, clock), clock, faultBody });
      handles.push(workspaceHandle(ws, server, settings, clock));
      await server.listen(spec.port ?? (options.port ? options.port + i : 0), options.host ?? '127.0.0.1');
    }
  } catch (err) {
    await Promise.all(handles.map((h) => h.server.close().catch(() => undefined)));
    throw err;
  }
  return {
    workspaces: handles,
    workspace(name) {
      const h = handles.find((x) => x.name === name);
      if (!h) throw new Error(`no emulated Databricks workspace named ${name} (have: ${handles.map((x) => x.name).join(', ')})`);
      return h;
    },
    urls: () => Object.fromEntries(handles.map((h) => [h.name, h.url])),
    close: async () => { await Promise.all(handles.map((h) => h.server.close())); },
  };
}
