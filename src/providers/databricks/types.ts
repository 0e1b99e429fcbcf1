import { DatabricksError } from './errors.js';
import { idString } from './json.js';

/** The Databricks objects Keywarden reads, in camelCase, with int64 ids as exact decimal strings. */

/** Token Management's admin view (TokenInfo). */
export interface TokenInfo {
  tokenId: string;
  /** Epoch ms. */
  creationTime: number;
  /** Epoch ms; -1 = never expires. */
  expiryTime: number;
  comment: string;
  createdById?: string;
  createdByUsername?: string;
  /** The principal the token authenticates as; joins to SCIM `id`. */
  ownerId?: string;
  workspaceId?: string;
  /** Epoch ms of the day it was last used; undefined = never used. */
  lastUsedDay?: number;
  /** API scopes (`sql`, `jobs:read`…); undefined = an all-APIs token (no `scopes` field). */
  scopes?: string[];
  /** Set when the scopes cannot be told (auto-scoping still running, a garbled field): why. */
  scopesUnreadable?: string;
}

/** The Token API's own-token view (PublicTokenInfo). */
export interface PublicTokenInfo {
  tokenId: string;
  creationTime: number;
  expiryTime: number;
  comment: string;
  lastAccessedTime?: number;
  scopes?: string[];
  scopesUnreadable?: string;
}

export interface CreatedToken<Info> {
  /** Shown once; already registered for redaction. */
  tokenValue: string;
  tokenInfo: Info;
}

export interface ScimUser {
  id: string;
  userName: string;
  displayName?: string;
  active: boolean;
  /** Group display names, when the listing asked for `groups`. */
  groups?: string[];
}

export interface ScimServicePrincipal {
  id: string;
  applicationId: string;
  displayName?: string;
  active: boolean;
  /** Group display names, when SCIM returned them (a grant to a group gives its members CAN_USE). */
  groups?: string[];
  entitlements?: string[];
}

export interface CurrentPrincipal {
  id: string;
  /** For a service principal, its applicationId. */
  userName: string;
  displayName?: string;
  active: boolean;
  groups: string[];
  entitlements: string[];
  isAdmin: boolean;
}

export type PrincipalType = 'group' | 'user' | 'service-principal';

export interface TokenPermissionEntry {
  type: PrincipalType;
  /** Group name, userName, or the SP's applicationId. */
  principal: string;
  displayName?: string;
  levels: Array<{ level: string; inherited: boolean }>;
}

export interface TokenPermissions {
  /** False on a workspace that never had a token (G6): nobody but admins can use tokens yet. */
  exists: boolean;
  entries: TokenPermissionEntry[];
}

export interface InstancePoolSpec {
  name: string;
  nodeTypeId: string;
  minIdleInstances?: number;
  maxCapacity?: number;
  idleInstanceAutoterminationMinutes?: number;
  customTags?: Record<string, string>;
  azureAttributes?: { availability?: 'ON_DEMAND_AZURE' | 'SPOT_AZURE'; spotBidMaxPrice?: number };
  /** At most one version. */
  preloadedSparkVersions?: string[];
  enableElasticDisk?: boolean;
}

export interface InstancePool extends InstancePoolSpec {
  instancePoolId: string;
  state: 'ACTIVE' | 'STOPPED' | 'DELETED' | string;
  defaultTags: Record<string, string>;
  stats: { usedCount: number; idleCount: number; pendingUsedCount: number; pendingIdleCount: number };
}

export interface InstancePoolEdit {
  instancePoolId: string;
  name: string;
  /** Must be unchanged; Databricks requires it on every edit. */
  nodeTypeId: string;
  minIdleInstances?: number;
  maxCapacity?: number;
  idleInstanceAutoterminationMinutes?: number;
  /** Replaces the tags: resend them all. */
  customTags?: Record<string, string>;
}

type Raw = Record<string, unknown>;

function bad(what: string): DatabricksError {
  return new DatabricksError({ code: 'UNEXPECTED_RESPONSE', message: `Databricks returned ${what}; the response does not match the documented API — check that the host is the Azure Databricks workspace itself, not a proxy or gateway that rewrites answers.` });
}

/** A list field of a response: absent means empty (Databricks omits empty arrays); anything but an array is an error. */
export function listField(body: unknown, key: string): unknown[] {
  const value = (body as Raw)[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad(`"${key}" as ${typeof value} instead of a list`);
  return value;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * A token's scopes as the API reports them: no `scopes` field is an all-APIs token; a list is a scoped token;
 * auto-scoping still RUNNING or a field that is not a list of names means the scopes cannot be told.
 */
export function scopesOf(r: Raw): Pick<TokenInfo, 'scopes' | 'scopesUnreadable'> {
  if (r.autoscope_state === 'AUTOSCOPE_STATE_RUNNING') {
    return { scopesUnreadable: 'auto-scoping is still inferring them' };
  }
  const raw = r.scopes;
  if (raw === undefined || raw === null) return {};
  if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string' || !x)) {
    return { scopesUnreadable: `the workspace reported its scopes as ${JSON.stringify(raw).slice(0, 60)}, not a list of scope names` };
  }
  return raw.length ? { scopes: raw as string[] } : {};
}

export function toTokenInfo(raw: unknown): TokenInfo {
  const r = (raw ?? {}) as Raw;
  const tokenId = str(r.token_id);
  if (!tokenId) throw bad('a token without token_id');
  const lastUsed = num(r.last_used_day);
  return {
    tokenId,
    creationTime: num(r.creation_time) ?? 0,
    expiryTime: num(r.expiry_time) ?? -1,
    comment: str(r.comment) ?? '',
    createdById: idString(r.created_by_id),
    createdByUsername: str(r.created_by_username),
    ownerId: idString(r.owner_id),
    workspaceId: idString(r.workspace_id),
    lastUsedDay: lastUsed && lastUsed > 0 ? lastUsed : undefined,
    ...scopesOf(r),
  };
}

export function toPublicTokenInfo(raw: unknown): PublicTokenInfo {
  const r = (raw ?? {}) as Raw;
  const tokenId = str(r.token_id);
  if (!tokenId) throw bad('a token without token_id');
  const last = num(r.last_accessed_time);
  return {
    tokenId,
    creationTime: num(r.creation_time) ?? 0,
    expiryTime: num(r.expiry_time) ?? -1,
    comment: str(r.comment) ?? '',
    lastAccessedTime: last && last > 0 ? last : undefined,
    ...scopesOf(r),
  };
}

export function toScimUser(raw: unknown): ScimUser {
  const r = (raw ?? {}) as Raw;
  const id = idString(r.id);
  if (!id) throw bad('a SCIM user without id');
  return { id, userName: str(r.userName) ?? '', displayName: str(r.displayName), active: r.active !== false, ...groupsOf(r) };
}

export function toScimServicePrincipal(raw: unknown): ScimServicePrincipal {
  const r = (raw ?? {}) as Raw;
  const id = idString(r.id);
  if (!id) throw bad('a SCIM service principal without id');
  const values = (list: unknown, key: 'display' | 'value') => (Array.isArray(list) ? list.map((x) => str((x as Raw)?.[key]) ?? '').filter(Boolean) : undefined);
  const groups = values(r.groups, 'display');
  const entitlements = values(r.entitlements, 'value');
  return { id, applicationId: str(r.applicationId) ?? '', displayName: str(r.displayName), active: r.active !== false, ...(groups ? { groups } : {}), ...(entitlements ? { entitlements } : {}) };
}

function groupsOf(r: Raw): { groups?: string[] } {
  if (!Array.isArray(r.groups)) return {};
  return { groups: (r.groups as Raw[]).map((g) => str(g?.display) ?? '').filter(Boolean) };
}

export function toCurrentPrincipal(raw: unknown): CurrentPrincipal {
  const r = (raw ?? {}) as Raw;
  const id = idString(r.id);
  if (!id) throw bad('a SCIM Me without id');
  const values = (list: unknown, key: 'display' | 'value') =>
    Array.isArray(list) ? list.map((x) => str((x as Raw)?.[key]) ?? '').filter(Boolean) : [];
  const groups = values(r.groups, 'display');
  return {
    id, userName: str(r.userName) ?? '', displayName: str(r.displayName), active: r.active !== false,
    groups, entitlements: values(r.entitlements, 'value'), isAdmin: groups.includes('admins'),
  };
}

export function toTokenPermissions(raw: unknown): TokenPermissions {
  const acl = ((raw ?? {}) as Raw).access_control_list;
  const entries: TokenPermissionEntry[] = [];
  for (const e of Array.isArray(acl) ? (acl as Raw[]) : []) {
    const type: PrincipalType | undefined = str(e.group_name) ? 'group' : str(e.user_name) ? 'user' : str(e.service_principal_name) ? 'service-principal' : undefined;
    if (!type) continue;
    const principal = str(e.group_name) ?? str(e.user_name) ?? str(e.service_principal_name)!;
    const levels = Array.isArray(e.all_permissions)
      ? (e.all_permissions as Raw[]).map((p) => ({ level: str(p.permission_level) ?? '', inherited: p.inherited === true }))
      : [];
    entries.push({ type, principal, displayName: str(e.display_name), levels });
  }
  return { exists: true, entries };
}

export function toInstancePool(raw: unknown): InstancePool {
  const r = (raw ?? {}) as Raw;
  const id = str(r.instance_pool_id);
  if (!id) throw bad('an instance pool without instance_pool_id');
  const stats = (r.stats ?? {}) as Raw;
  const azure = r.azure_attributes as Raw | undefined;
  return {
    instancePoolId: id,
    name: str(r.instance_pool_name) ?? '',
    nodeTypeId: str(r.node_type_id) ?? '',
    minIdleInstances: num(r.min_idle_instances),
    maxCapacity: num(r.max_capacity),
    idleInstanceAutoterminationMinutes: num(r.idle_instance_autotermination_minutes),
    customTags: (r.custom_tags as Record<string, string>) ?? {},
    defaultTags: (r.default_tags as Record<string, string>) ?? {},
    azureAttributes: azure ? { availability: str(azure.availability) as 'ON_DEMAND_AZURE' | 'SPOT_AZURE' | undefined, spotBidMaxPrice: num(azure.spot_bid_max_price) } : undefined,
    preloadedSparkVersions: Array.isArray(r.preloaded_spark_versions) ? (r.preloaded_spark_versions as string[]) : undefined,
    enableElasticDisk: typeof r.enable_elastic_disk === 'boolean' ? r.enable_elastic_disk : undefined,
    state: str(r.state) ?? 'ACTIVE',
    stats: {
      usedCount: num(stats.used_count) ?? 0, idleCount: num(stats.idle_count) ?? 0,
      pendingUsedCount: num(stats.pending_used_count) ?? 0, pendingIdleCount: num(stats.pending_idle_count) ?? 0,
    },
  };
}

/** camelCase spec → the create body's snake_case fields (undefined fields are left out). */
export function poolBody(spec: Partial<InstancePoolSpec> & { instancePoolId?: string }): Raw {
  const body: Raw = {
    instance_pool_id: spec.instancePoolId,
    instance_pool_name: spec.name,
    node_type_id: spec.nodeTypeId,
    min_idle_instances: spec.minIdleInstances,
    max_capacity: spec.maxCapacity,
    idle_instance_autotermination_minutes: spec.idleInstanceAutoterminationMinutes,
    custom_tags: spec.customTags,
    azure_attributes: spec.azureAttributes
      ? { availability: spec.azureAttributes.availability, spot_bid_max_price: spec.azureAttributes.spotBidMaxPrice }
      : undefined,
    preloaded_spark_versions: spec.preloadedSparkVersions,
    enable_elastic_disk: spec.enableElasticDisk,
  };
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}
