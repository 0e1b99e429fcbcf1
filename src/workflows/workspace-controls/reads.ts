/**
 * What the workspace-controls planners read: fresh from the workspace (token ACL, people and their groups, tokens)
 * and, for where a token is kept and who runs on it, from the latest scan (Key Vault secrets, Data Factory pipelines).
 */
import type { Credential } from '../../domain/credential.js';
import { formatTime } from '../../domain/plan.js';
import type { DatabricksClient } from '../../providers/databricks/client.js';
import type { TokenInfo } from '../../providers/databricks/types.js';
import { scanViewOf } from '../../domain/scan.js';
import { readLatestSnapshot } from '../../scanner/snapshot.js';
import type { Store } from '../../store/store.js';
import { tail } from '../engine/keyvault-steps.js';
import type { WorkspacePerson } from './acl.js';

export async function readPeople(client: DatabricksClient, signal?: AbortSignal): Promise<WorkspacePerson[]> {
  const [users, sps] = await Promise.all([
    client.listUsers({ attributes: 'id,userName,displayName,active,groups', signal }),
    client.listServicePrincipals({ attributes: 'id,applicationId,displayName,active,groups', signal }),
  ]);
  return [
    ...users.map((u) => ({ id: u.id, kind: 'user' as const, principal: u.userName, name: u.userName, groups: u.groups ?? [] })),
    ...sps.map((s) => ({ id: s.id, kind: 'service-principal' as const, principal: s.applicationId, name: s.displayName || s.applicationId, groups: s.groups ?? [] })),
  ];
}

/** One token as a plan names it: enough to recognise it, and what breaks with it. */
export interface TokenLine {
  tokenId: string;
  comment: string;
  owner: string;
  createdAt: number;
  /** Epoch ms, or -1 for never. */
  expiresAt: number;
  heldIn: string[];
  pipelines: string[];
}

/** The latest scan's PATs of one workspace (only those rows), by token id (empty when no scan ran yet). */
export function scannedTokens(store: Store, workspace: string): Map<string, Credential> {
  const scan = readLatestSnapshot(store);
  const byId = new Map<string, Credential>();
  for (const c of scan ? scanViewOf(scan).inScope('databricks-pat', workspace) : []) byId.set(c.nativeId, c);
  return byId;
}

export function tokenLine(t: TokenInfo, people: WorkspacePerson[], scanned: Map<string, Credential>): TokenLine {
  const owner = people.find((p) => p.id === t.ownerId)?.name ?? (t.ownerId ? `principal ${t.ownerId}` : 'unknown owner');
  const c = scanned.get(t.tokenId);
  return {
    tokenId: t.tokenId, comment: t.comment || '(no comment)', owner, createdAt: t.creationTime, expiresAt: t.expiryTime,
    heldIn: (c?.heldIn ?? []).map((h) => `${h.vault}/${h.name}`),
    pipelines: (c?.consumers ?? []).map((k) => `Data Factory ${k.factory} linked service ${k.name}${k.pipelines?.length ? ` (pipelines ${k.pipelines.join(', ')})` : ''}`),
  };
}

/** `token …1a2b "bob-jdbc" of bob@contoso.com, expires …, held in kv-prod/x, used by …` */
export function tokenWords(t: TokenLine, options: { owner?: boolean } = {}): string {
  const where = t.heldIn.length ? `; held in Key Vault ${t.heldIn.join(', ')}` : '';
  const used = t.pipelines.length ? `; used by ${t.pipelines.join('; ')}` : '';
  return `token ${tail(t.tokenId)} "${t.comment}"${options.owner === false ? '' : ` of ${t.owner}`}, expires ${formatTime(t.expiresAt)}${where}${used}`;
}

/** Tokens still listed and not yet expired (expired ones authenticate nobody, so no remedy changes anything for them). */
export function liveTokens(tokens: TokenInfo[], now: number): TokenInfo[] {
  return tokens.filter((t) => t.expiryTime === -1 || t.expiryTime > now);
}

export const MAX_LINES = 15;

/** At most MAX_LINES lines, then "… and N more". */
export function capped(lines: string[]): string[] {
  return lines.length <= MAX_LINES ? lines : [...lines.slice(0, MAX_LINES), `… and ${lines.length - MAX_LINES} more (see /findings or keywarden scan)`];
}
