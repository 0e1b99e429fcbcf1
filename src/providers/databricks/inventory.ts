import type { WorkspaceConfig } from '../../config/schema.js';
import type { Credential, CredentialOwner, EstateInventory, PeopleDirectory, ScopeFacts } from '../../domain/credential.js';
import { credentialId } from '../../domain/credential.js';
import type { DatabricksClient } from './client.js';
import { collectPages, type StreamInventory } from '../pages.js';
import type { ScimServicePrincipal, ScimUser, TokenInfo, TokenPermissions } from './types.js';

/** Reads one workspace's PATs and the facts policy needs. Read-only: only GET calls. */

export interface DatabricksInventorySource {
  estate: 'databricks';
  scope: string;
  host: string;
  scan(options?: { signal?: AbortSignal }): Promise<EstateInventory>;
  /** The same as one page: the token list is one answer (at most a few thousand tokens per workspace). */
  stream: StreamInventory;
}

export interface DatabricksInventoryOptions {
  workspace: Pick<WorkspaceConfig, 'name' | 'host'>;
  client: DatabricksClient;
  /** Resolves users' userName (UPN/email) to Entra object ids, so owners can be @mentioned and notified. */
  people?: PeopleDirectory;
}

/** "0", "", null or absent all mean "no workspace-specific limit". */
export function parseMaxLifetimeDays(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value.trim() === '') return null;
  const days = Number(value);
  return Number.isFinite(days) && days > 0 ? days : null;
}

function ownerOf(token: TokenInfo, users: Map<string, ScimUser>, sps: Map<string, ScimServicePrincipal>): CredentialOwner {
  const id = token.ownerId;
  const user = id ? users.get(id) : undefined;
  if (user) return { id, name: user.userName, kind: 'user', active: user.active };
  const sp = id ? sps.get(id) : undefined;
  if (sp) return { id, name: sp.displayName || sp.applicationId, kind: 'service-principal', active: sp.active, applicationId: sp.applicationId };
  // Not in SCIM: the principal was deleted, so the token cannot authenticate any more.
  return { id, name: id ? `deleted principal ${id}` : 'unknown owner', kind: 'unknown', active: false };
}

function tokenUsers(permissions: TokenPermissions, sps: ScimServicePrincipal[]): NonNullable<ScopeFacts['tokenUsers']> {
  const out: NonNullable<ScopeFacts['tokenUsers']> = [];
  for (const e of permissions.entries) {
    if (!e.levels.some((l) => l.level === 'CAN_USE')) continue;
    // SPs are granted by applicationId; show the name people know them by.
    const principal = e.type === 'service-principal'
      ? e.displayName ?? sps.find((s) => s.applicationId.toLowerCase() === e.principal.toLowerCase())?.displayName ?? e.principal
      : e.principal;
    out.push({ principal, type: e.type });
  }
  return out;
}

/** Users' Entra object ids from the directory; a directory that fails leaves owners unresolved (noted on the credential). */
async function withEntraIds(credentials: Credential[], people: PeopleDirectory | undefined, signal?: AbortSignal): Promise<Credential[]> {
  const names = [...new Set(credentials.filter((c) => c.owner?.kind === 'user').map((c) => c.owner!.name))];
  if (!people || names.length === 0) return credentials;
  let found: Awaited<ReturnType<PeopleDirectory['lookup']>>;
  try {
    found = await people.lookup(names, { signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    const message = `could not resolve the owner in Entra: ${(err as Error)?.message ?? String(err)}`;
    return credentials.map((c) => (c.owner?.kind === 'user' ? { ...c, attributes: { ...c.attributes, ownerLookupError: message } } : c));
  }
  return credentials.map((c) => {
    const person = c.owner?.kind === 'user' ? found.get(c.owner.name.toLowerCase()) : undefined;
    return person ? { ...c, owner: { ...c.owner!, entraObjectId: person.entraObjectId } } : c;
  });
}

export function createDatabricksInventory(options: DatabricksInventoryOptions): DatabricksInventorySource {
  const { workspace, client } = options;
  const scope = workspace.name;
  const host = workspace.host;

  const stream: StreamInventory = async ({ signal }, onPage) => {
    const [conf, permissions, tokens, users, sps] = await Promise.all([
      client.getWorkspaceConf(['maxTokenLifetimeDays', 'enableTokensConfig'], { signal }),
      client.getTokenPermissions({ signal }),
      client.listTokens({ signal }),
      client.listUsers({ attributes: 'id,userName,displayName,active', signal }),
      client.listServicePrincipals({ attributes: 'id,applicationId,displayName,active', signal }),
    ]);
    const userById = new Map(users.map((u) => [u.id, u]));
    const spById = new Map(sps.map((s) => [s.id, s]));
    const maxTokenLifetimeDays = parseMaxLifetimeDays(conf.maxTokenLifetimeDays);
    const tokensEnabled = conf.enableTokensConfig !== 'false';

    const credentials: Credential[] = tokens.map((t) => ({
      id: credentialId('databricks-pat', scope, t.tokenId),
      kind: 'databricks-pat',
      nativeId: t.tokenId,
      name: t.comment || '(no comment)',
      where: { estate: 'databricks', scope, host, label: scope },
      owner: ownerOf(t, userById, spById),
      createdAt: t.creationTime,
      expiresAt: t.expiryTime === -1 ? null : t.expiryTime,
      lastUsedAt: t.lastUsedDay ?? null,
      enabled: tokensEnabled,
      heldIn: [],
      consumers: [],
      attributes: {
        tokenId: t.tokenId,
        comment: t.comment,
        workspaceId: t.workspaceId ?? null,
        ownerId: t.ownerId ?? null,
        createdById: t.createdById ?? null,
        createdByUsername: t.createdByUsername ?? null,
        maxTokenLifetimeDays,
        ...(tokensEnabled ? {} : { tokensDisabled: true }),
        // Only on scoped tokens (absent = all APIs), so a rotation can keep them.
        ...(t.scopes ? { scopes: t.scopes.join(',') } : {}),
        ...(t.scopesUnreadable ? { scopesUnreadable: t.scopesUnreadable } : {}),
      },
    }));

    await onPage(await withEntraIds(credentials, options.people, signal));
    return { estate: 'databricks', scope, host, facts: { maxTokenLifetimeDays, tokensEnabled, tokenUsers: tokenUsers(permissions, sps) } };
  };

  return { estate: 'databricks', scope, host, stream, scan: ({ signal } = {}) => collectPages(stream, { signal }) };
}
