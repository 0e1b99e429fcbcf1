import type { Credential } from '../../domain/credential.js';
import { AzureRestError } from './azure-rest.js';
import type { AppCredentialSignInActivity, GraphClient } from './graph.js';

/**
 * When each Entra client secret / certificate was last used, from Graph's beta usage report
 * `reports/appCredentialSignInActivities` (AuditLog.Read.All, Entra ID P1/P2, global cloud). Without the permission
 * (or the licence, or in a national cloud) the last use stays unknown and each credential says why and what to grant:
 * a scan never fails for it.
 */

export const SIGN_IN_PERMISSION = 'AuditLog.Read.All';

export type CredentialSignIns =
  | { ok: true; byKeyId: Map<string, number> }
  | { ok: false; reason: string; statusCode?: number };

function time(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Why the last use is unknown, in words a card can show: the permission to grant, or what Graph said. */
export function signInUnavailableReason(err: unknown): { reason: string; statusCode?: number } {
  const status = err instanceof AzureRestError ? err.statusCode : (err as { statusCode?: number })?.statusCode;
  if (status === 403) {
    return { statusCode: 403, reason: `Graph refused the sign-in activity report (403): grant Keywarden's app the Microsoft Graph application permission ${SIGN_IN_PERMISSION} with admin consent (the report also needs Entra ID P1/P2)` };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { statusCode: status, reason: `the sign-in activity report (Graph beta reports/appCredentialSignInActivities) could not be read: ${message.slice(0, 200)}` };
}

/** Reads the whole report (paged by @odata.nextLink); the latest sign-in per keyId. */
export async function readCredentialSignIns(graph: GraphClient, options: { signal?: AbortSignal } = {}): Promise<CredentialSignIns> {
  let rows: AppCredentialSignInActivity[];
  try {
    rows = await graph.listAppCredentialSignInActivities({ signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return { ok: false, ...signInUnavailableReason(err) };
  }
  const byKeyId = new Map<string, number>();
  for (const row of rows) {
    if (!row || typeof row !== 'object' || typeof row.keyId !== 'string') continue;
    const at = time(row.signInActivity?.lastSignInDateTime);
    if (at === undefined) continue;
    const key = row.keyId.toLowerCase();
    byKeyId.set(key, Math.max(at, byKeyId.get(key) ?? Number.NEGATIVE_INFINITY));
  }
  return { ok: true, byKeyId };
}

/** Entra credentials with their last use: a time, null (no sign-in in the report), or unknown with the reason. */
export function withSignIns(credentials: Credential[], signIns: CredentialSignIns): Credential[] {
  return credentials.map((c) => {
    if (c.kind !== 'entra-password' && c.kind !== 'entra-certificate') return c;
    if (!signIns.ok) return { ...c, attributes: { ...c.attributes, lastUseUnknown: signIns.reason } };
    return { ...c, lastUsedAt: signIns.byKeyId.get(c.nativeId.toLowerCase()) ?? null };
  });
}
