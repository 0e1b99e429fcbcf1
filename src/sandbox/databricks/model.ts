import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { DAY_MS } from '../../clock.js';

/** In-memory state of one emulated Azure Databricks workspace, and the rules the real service applies to it. */

export type PrincipalKind = 'user' | 'service-principal';

export interface WorkspacePrincipal {
  kind: PrincipalKind;
  /** SCIM id: 15–16 digit number, kept as bigint because it may exceed 2^53. */
  id: bigint;
  /** userName for users; applicationId for service principals (what SCIM Me reports as userName). */
  userName: string;
  displayName: string;
  /** Service principals only: the Entra application (client) id. */
  applicationId?: string;
  active: boolean;
  /** Group names (besides the implicit `users` group every principal belongs to). */
  groups: Set<string>;
  entitlements: string[];
}

export interface WorkspaceToken {
  tokenId: string;
  /** The dapi… value; only the emulator holds it (never exposed by inspection helpers). */
  value: string;
  ownerId: bigint;
  createdById: bigint;
  createdByUsername: string;
  comment: string;
  creationTime: number;
  /** Epoch ms, or -1 for never. */
  expiryTime: number;
  /** Day-truncated epoch ms of the last authentication, 0 = never used. */
  lastUsedDay: number;
  /** Exact epoch ms of the last use (the Token API's last_accessed_time). */
  lastAccessedTime: number;
  revoked: boolean;
  revokedAt?: number;
  revokedReason?: string;
  /** API scopes (`sql`, `jobs:read`…); absent = an all-APIs token (the API then omits `scopes`). */
  scopes?: string[];
  /** AUTOSCOPE_STATE_* when auto-scoping applies (RUNNING: the scopes are still being inferred). */
  autoscopeState?: string;
}

/** Scope names: an API area plus optional modifiers (`sql`, `jobs:read`, `sql:read:restricted-query`). */
const SCOPE_NAME = /^[a-z][a-z0-9-]*(:[a-z][a-z-]*)*$/;

/** `scopes` of a create request: absent = all APIs; otherwise a non-empty list of scope names (400 otherwise). */
export function parseScopes(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((s) => typeof s !== 'string' || !SCOPE_NAME.test(s))) {
    throw new WorkspaceRuleError(400, 'INVALID_PARAMETER_VALUE', 'Invalid scopes: expected a non-empty list of API scope names such as ["sql", "jobs:read"].');
  }
  return [...new Set(raw as string[])];
}

/** Whether a scoped token may call this API area with this method (`:read` allows GET/HEAD only). */
export function scopesAllow(scopes: string[] | undefined, area: string, method: string): boolean {
  if (!scopes) return true;
  const reading = method === 'GET' || method === 'HEAD';
  return scopes.some((s) => {
    const [name, ...modifiers] = s.split(':');
    return name === area && (!modifiers.includes('read') || reading);
  });
}

export interface TokenGrant {
  type: 'group' | 'user' | 'service-principal';
  /** group name, userName, or SP applicationId (service_principal_name). */
  name: string;
}

export type PoolState = 'ACTIVE' | 'STOPPED' | 'DELETED';

export interface InstancePool {
  instance_pool_id: string;
  instance_pool_name: string;
  node_type_id: string;
  min_idle_instances: number;
  max_capacity?: number;
  idle_instance_autotermination_minutes?: number;
  custom_tags: Record<string, string>;
  default_tags: Record<string, string>;
  azure_attributes?: Record<string, unknown>;
  preloaded_spark_versions?: string[];
  disk_spec?: Record<string, unknown>;
  enable_elastic_disk: boolean;
  state: PoolState;
  stats: { used_count: number; idle_count: number; pending_used_count: number; pending_idle_count: number };
  status: Record<string, unknown>;
}

export const TOKEN_QUOTA_PER_OWNER = 600;
/** Lifetime of a token created without lifetime_seconds (current docs: two years). */
export const DEFAULT_TOKEN_LIFETIME_DAYS = 730;
export const KNOWN_CONF_KEYS = ['enableTokensConfig', 'maxTokenLifetimeDays', 'enableIpAccessLists', 'enableDbfsFileBrowser'];

export class WorkspaceRuleError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class WorkspaceModel {
  readonly principals = new Map<bigint, WorkspacePrincipal>();
  readonly tokens = new Map<string, WorkspaceToken>();
  readonly pools = new Map<string, InstancePool>();
  readonly conf = new Map<string, string>();
  /** Direct CAN_USE grants on authorization/tokens (admins' CAN_MANAGE is implicit). */
  grants: TokenGrant[] = [];
  /** G6: the tokens permission object does not exist until the workspace's first token. */
  tokensObjectExists = false;
  private idCounter = 0n;

  constructor(readonly name: string, readonly workspaceId: bigint, private readonly clock: Clock) {}

  // ---- principals -------------------------------------------------------------------------

  /** A deterministic 16-digit SCIM id per workspace and name, unless the seed chooses one. */
  nextPrincipalId(seedName: string): bigint {
    this.idCounter += 1n;
    const h = createHash('sha256').update(`${this.workspaceId}:${seedName}:${this.idCounter}`).digest();
    return 1_000_000_000_000_000n + (h.readBigUInt64BE(0) % 8_000_000_000_000_000n);
  }

  addPrincipal(p: Omit<WorkspacePrincipal, 'id' | 'groups' | 'entitlements'> & { id?: bigint; groups?: string[]; entitlements?: string[] }): WorkspacePrincipal {
    const existing = this.findByUserName(p.userName);
    if (existing) throw new Error(`${p.kind} ${p.userName} already exists in workspace ${this.name}`);
    const id = p.id ?? this.nextPrincipalId(p.userName);
    if (this.principals.has(id)) throw new Error(`SCIM id ${id} is already used in workspace ${this.name}`);
    const principal: WorkspacePrincipal = {
      kind: p.kind, id, userName: p.userName, displayName: p.displayName, applicationId: p.applicationId,
      active: p.active, groups: new Set(p.groups ?? []), entitlements: p.entitlements ?? ['workspace-access'],
    };
    this.principals.set(id, principal);
    return principal;
  }

  findByUserName(userName: string): WorkspacePrincipal | undefined {
    const wanted = userName.toLowerCase();
    for (const p of this.principals.values()) if (p.userName.toLowerCase() === wanted) return p;
    return undefined;
  }

  /** Finds a principal by userName, SP applicationId or SP displayName (seed helpers accept any). */
  findPrincipal(name: string): WorkspacePrincipal | undefined {
    const byUser = this.findByUserName(name);
    if (byUser) return byUser;
    for (const p of this.principals.values()) if (p.kind === 'service-principal' && p.displayName === name) return p;
    return undefined;
  }

  findServicePrincipal(applicationId: string): WorkspacePrincipal | undefined {
    for (const p of this.principals.values()) {
      if (p.kind === 'service-principal' && p.applicationId?.toLowerCase() === applicationId.toLowerCase()) return p;
    }
    return undefined;
  }

  isAdmin(p: WorkspacePrincipal): boolean {
    return p.groups.has('admins');
  }

  /** CAN_USE on tokens: admins always; otherwise a grant to the principal, one of its groups, or `users`. */
  canUseTokens(p: WorkspacePrincipal): boolean {
    if (this.isAdmin(p)) return true;
    return this.grants.some((g) => this.grantCovers(g, p));
  }

  private grantCovers(g: TokenGrant, p: WorkspacePrincipal): boolean {
    if (g.type === 'group') return g.name === 'users' || p.groups.has(g.name);
    if (g.type === 'user') return p.kind === 'user' && p.userName.toLowerCase() === g.name.toLowerCase();
    return p.kind === 'service-principal' && p.applicationId?.toLowerCase() === g.name.toLowerCase();
  }

  // ---- tokens -------------------------------------------------------------------------------

  /** Tokens the APIs can see: not revoked (expired ones stay listed until deleted). */
  liveTokens(): WorkspaceToken[] {
    return [...this.tokens.values()].filter((t) => !t.revoked);
  }

  isUsable(t: WorkspaceToken): boolean {
    return !t.revoked && (t.expiryTime === -1 || t.expiryTime > this.clock.now());
  }

  findTokenByValue(value: string): WorkspaceToken | undefined {
    for (const t of this.tokens.values()) if (t.value === value) return t;
    return undefined;
  }

  /** Records a successful authentication: last_used_day is accurate to a day. */
  markUsed(t: WorkspaceToken): void {
    const now = this.clock.now();
    t.lastAccessedTime = now;
    t.lastUsedDay = Math.floor(now / DAY_MS) * DAY_MS;
  }

  /** The rules a real create applies: quota, then lifetime against maxTokenLifetimeDays. Returns expiry_time. */
  checkNewToken(owner: WorkspacePrincipal, lifetimeSeconds: unknown): number {
    const owned = this.liveTokens().filter((t) => t.ownerId === owner.id && this.isUsable(t)).length;
    if (owned >= TOKEN_QUOTA_PER_OWNER) {
      throw new WorkspaceRuleError(400, 'QUOTA_EXCEEDED', `Token quota exceeded: ${owner.userName} already has ${TOKEN_QUOTA_PER_OWNER} tokens in this workspace.`);
    }
    if (lifetimeSeconds !== undefined && lifetimeSeconds !== null && (typeof lifetimeSeconds !== 'number' || !Number.isInteger(lifetimeSeconds))) {
      throw new WorkspaceRuleError(400, 'INVALID_PARAMETER_VALUE', 'lifetime_seconds must be an integer number of seconds.');
    }
    const maxDays = Number(this.conf.get('maxTokenLifetimeDays') ?? '0') || 0;
    const now = this.clock.now();
    if (lifetimeSeconds === undefined || lifetimeSeconds === null) {
      return now + (maxDays > 0 ? maxDays : DEFAULT_TOKEN_LIFETIME_DAYS) * DAY_MS;
    }
    const seconds = lifetimeSeconds as number;
    if (maxDays > 0 && (seconds <= 0 || seconds > maxDays * 86_400)) {
      throw new WorkspaceRuleError(400, 'INVALID_PARAMETER_VALUE',
        `Token lifetime exceeds the maximum lifetime of ${maxDays} days (workspace-conf maxTokenLifetimeDays). Use lifetime_seconds between 1 and ${maxDays * 86_400}.`);
    }
    return seconds <= 0 ? -1 : now + seconds * 1000;
  }

  mintToken(input: { owner: WorkspacePrincipal; createdBy: WorkspacePrincipal; comment: string; expiryTime: number; creationTime?: number; lastUsedDay?: number; scopes?: string[]; autoscopeState?: string }): WorkspaceToken {
    const token: WorkspaceToken = {
      tokenId: randomBytes(32).toString('hex'),
      // Azure PATs often carry a "-2"/"-3" suffix; model both forms.
      value: `dapi${randomBytes(16).toString('hex')}${randomBytes(1)[0]! % 2 === 0 ? '-2' : ''}`,
      ownerId: input.owner.id,
      createdById: input.createdBy.id,
      createdByUsername: input.createdBy.userName,
      comment: input.comment,
      creationTime: input.creationTime ?? this.clock.now(),
      expiryTime: input.expiryTime,
      lastUsedDay: input.lastUsedDay ?? 0,
      lastAccessedTime: input.lastUsedDay ?? 0,
      revoked: false,
      ...(input.scopes ? { scopes: [...input.scopes] } : {}),
      ...(input.autoscopeState ? { autoscopeState: input.autoscopeState } : {}),
    };
    this.tokens.set(token.tokenId, token);
    this.tokensObjectExists = true;
    return token;
  }

  revokeToken(t: WorkspaceToken, reason: string): void {
    if (t.revoked) return;
    t.revoked = true;
    t.revokedAt = this.clock.now();
    t.revokedReason = reason;
  }

  // ---- token permissions ---------------------------------------------------------------------

  /**
   * PUT semantics: replaces every direct grant. Whoever loses CAN_USE with their own (direct) grant gone loses all
   * their tokens at once (deleted, unrecoverable); whoever had it only through a group keeps their tokens, which fail
   * authentication until access returns (apis-turn2 §2). Returns everyone who lost CAN_USE.
   */
  replaceGrants(next: TokenGrant[]): string[] {
    const before = [...this.principals.values()].filter((p) => this.canUseTokens(p));
    const directBefore = new Set(before.filter((p) => this.grants.some((g) => g.type !== 'group' && this.grantCovers(g, p))).map((p) => p.id));
    this.grants = dedupeGrants(next);
    const losers = before.filter((p) => !this.canUseTokens(p));
    for (const p of losers) {
      if (!directBefore.has(p.id)) continue;
      for (const t of this.liveTokens()) if (t.ownerId === p.id) this.revokeToken(t, 'lost CAN_USE on tokens');
    }
    return losers.map((p) => p.userName);
  }

  /** PATCH semantics: adds grants (CAN_USE is the only grantable level, so nothing is lost). */
  addGrants(more: TokenGrant[]): void {
    this.grants = dedupeGrants([...this.grants, ...more]);
  }

  /** Checks a grant names a principal that exists; returns the reason when it does not. */
  validateGrant(g: TokenGrant): string | undefined {
    if (g.type === 'group') return g.name === 'users' || g.name === 'admins' || [...this.principals.values()].some((p) => p.groups.has(g.name)) ? undefined : `Group ${g.name} does not exist.`;
    if (g.type === 'user') return this.findByUserName(g.name)?.kind === 'user' ? undefined : `Principal: UserName(${g.name}) does not exist`;
    return this.findServicePrincipal(g.name) ? undefined : `Principal: ServicePrincipalName(${g.name}) does not exist`;
  }

  // ---- instance pools -----------------------------------------------------------------------

  newPoolId(): string {
    const d = new Date(this.clock.now());
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}-pool-${randomBytes(4).toString('hex')}`;
  }

  livePool(id: string): InstancePool | undefined {
    const p = this.pools.get(id);
    return p && p.state !== 'DELETED' ? p : undefined;
  }
}

function dedupeGrants(grants: TokenGrant[]): TokenGrant[] {
  const seen = new Map<string, TokenGrant>();
  for (const g of grants) seen.set(`${g.type}:${g.name.toLowerCase()}`, g);
  return [...seen.values()];
}
