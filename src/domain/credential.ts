/** The one credential model every estate maps into. Pure data: no cloud or Teams types here. */

export type CredentialKind = 'databricks-pat' | 'keyvault-secret' | 'entra-password' | 'entra-certificate';
export type Estate = 'databricks' | 'keyvault' | 'entra' | 'datafactory';

export interface CredentialOwner {
  /** Native id: SCIM id (decimal string, may exceed 2^53) or Entra object id. */
  id?: string;
  /** userName, SP display name or application name. */
  name: string;
  kind: 'user' | 'service-principal' | 'application' | 'unknown';
  /** false when the owner is deactivated (SCIM active=false, Entra accountEnabled=false). */
  active?: boolean;
  /** Entra application (client) id of a service principal; what OBO token creation needs. */
  applicationId?: string;
  /** Entra object id, used to @mention or message the owner in Teams. */
  entraObjectId?: string;
}

/** Resolves estate user names (a Databricks userName is the person's UPN or email) to Entra users. */
export interface PeopleDirectory {
  /** Found people by the lower-cased name asked for; names not found are absent. */
  lookup(userNames: string[], options?: { signal?: AbortSignal }): Promise<Map<string, { entraObjectId: string; displayName?: string }>>;
}

export interface CredentialLocation {
  estate: Estate;
  /** Configured name of the workspace / vault / tenant, e.g. "ws-prod", "kv-prod". */
  scope: string;
  /** Workspace host, vault URL or Graph base URL. */
  host?: string;
  /** Human-readable place, e.g. "ws-prod", "kv-prod", "app etl-ingest". */
  label: string;
}

/** A Key Vault secret that holds a credential's value. */
export interface SecretRef {
  vault: string;
  name: string;
  version?: string;
}

/** Something that uses a secret: today an Azure Data Factory linked service. */
export interface Consumer {
  kind: 'adf-linked-service';
  factory: string;
  name: string;
  /** Pipelines that use the linked service. */
  pipelines?: string[];
  /** secretVersion pinned: a rotation will not reach this consumer. */
  pinnedVersion?: boolean;
  /** secretName is an expression: "possible (dynamic)". */
  dynamic?: boolean;
}

export type AttributeValue = string | number | boolean | null;

export interface Credential {
  /** Stable across scans: `${kind}:${scope}:${nativeId}`. */
  id: string;
  kind: CredentialKind;
  /** token_id, secret name, or Entra keyId. */
  nativeId: string;
  /** PAT comment, secret name, or "<app> / <credential displayName>". */
  name: string;
  where: CredentialLocation;
  /** Who answers for it: for Entra credentials the first human owner from Graph (else the first owner, else the app). */
  owner?: CredentialOwner;
  /** Entra credentials: every owner Graph lists (users and service principals); [] = none; absent = not read. */
  owners?: CredentialOwner[];
  /** Epoch ms. */
  createdAt?: number;
  /** Epoch ms, or null when the credential never expires. */
  expiresAt: number | null;
  /** Epoch ms; null = never used; undefined = not known for this kind. */
  lastUsedAt?: number | null;
  enabled?: boolean;
  /** Key Vault secrets that hold this credential's value (filled by correlation). */
  heldIn: SecretRef[];
  /** For a keyvault-secret: the credential id it holds, when known (tags or configured mapping). */
  holds?: string;
  /** Consumers at risk when this credential breaks (filled by correlation). */
  consumers: Consumer[];
  /** Estate specifics that policy or actions need (tags, appId, comment, workspace limits...). Never a secret value. */
  attributes: Record<string, AttributeValue>;
}

export function credentialId(kind: CredentialKind, scope: string, nativeId: string): string {
  return `${kind}:${scope}:${nativeId}`;
}

/** Tags Keywarden writes on Key Vault secrets at rotation, so a secret can be linked to what it holds. */
export const KV_TAGS = {
  managedBy: 'managed-by',
  credentialKind: 'credential-kind',
  credentialId: 'credential-id',
  workspace: 'workspace',
  applicationId: 'app-id',
  rotationId: 'rotation-id',
} as const;
export const MANAGED_BY_VALUE = 'keywarden';

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
export const SEVERITY_ORDER: Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export type FindingCode =
  | 'expired'
  | 'expiring'
  | 'no-expiry'
  | 'lifetime-too-long'
  | 'not-rotated'
  | 'unused'
  | 'owner-deactivated'
  | 'human-owned-pipeline'
  | 'kv-expiry-mismatch'
  | 'pat-creation-open'
  | 'no-max-token-lifetime'
  | 'tokens-disabled';

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** The credential the finding is about; absent for scope-level findings (e.g. token permissions). */
  credentialId?: string;
  scope: string;
  estate: Estate;
  /** One sentence a person reads on a card. */
  message: string;
  /** One-line fix. */
  remedy: string;
}

/** Facts about a scope that policy needs besides its credentials. */
export interface ScopeFacts {
  /** Databricks workspace-conf maxTokenLifetimeDays; null = no workspace limit. */
  maxTokenLifetimeDays?: number | null;
  /** Databricks workspace-conf enableTokensConfig; false = personal access tokens are disabled in the workspace. */
  tokensEnabled?: boolean;
  /** Principals granted CAN_USE on tokens (group/user/SP names). */
  tokenUsers?: Array<{ principal: string; type: 'group' | 'user' | 'service-principal' }>;
}

/** What one provider returns for one scope (a workspace, a vault, a tenant, a factory). */
export interface EstateInventory {
  estate: Estate;
  scope: string;
  host?: string;
  credentials: Credential[];
  facts: ScopeFacts;
  /** Data Factory only: linked services that reference Key Vault secrets. */
  consumers?: Array<Consumer & { secret: SecretRef }>;
}

export interface EstateError {
  estate: Estate;
  scope: string;
  /** Clear, actionable message (never a secret). */
  message: string;
  code?: string;
  statusCode?: number;
}
