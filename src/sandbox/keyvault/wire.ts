import type { DeletedSecretRecord, StoredSecret, StoredVersion } from './store.js';
import { RECOVERABLE_DAYS, RECOVERY_LEVEL, VaultFailure } from './store.js';

/** The Key Vault secrets JSON shapes (REST 7.x – 2025-07-01): unix-second times, ids with host:port. */

const seconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.floor(ms / 1000));

export interface WireAttributes {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  recoveryLevel: string;
  recoverableDays: number;
}

export function attributes(v: StoredVersion): WireAttributes {
  const out: WireAttributes = {
    enabled: v.enabled, created: seconds(v.created)!, updated: seconds(v.updated)!,
    recoveryLevel: RECOVERY_LEVEL, recoverableDays: RECOVERABLE_DAYS,
  };
  if (v.nbf !== undefined) out.nbf = seconds(v.nbf);
  if (v.exp !== undefined) out.exp = seconds(v.exp);
  return out;
}

function common(base: string, s: StoredSecret, v: StoredVersion, withVersion: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: withVersion ? `${base}/secrets/${s.name}/${v.version}` : `${base}/secrets/${s.name}`,
    attributes: attributes(v),
  };
  if (v.contentType !== undefined) out.contentType = v.contentType;
  if (v.tags !== undefined) out.tags = v.tags;
  if (s.managed) out.managed = true;
  return out;
}

/** SecretBundle; the value only where the service returns it (set and get). */
export function secretBundle(base: string, s: StoredSecret, v: StoredVersion, includeValue: boolean): Record<string, unknown> {
  const out = common(base, s, v, true);
  if (includeValue) out.value = v.value;
  if (s.managed && s.kid) out.kid = s.kid;
  return out;
}

/** SecretItem in GET /secrets (id without version, current version's attributes) or /versions (id with version). */
export function secretItem(base: string, s: StoredSecret, v: StoredVersion, withVersion: boolean): Record<string, unknown> {
  return common(base, s, v, withVersion);
}

export function deletedBundle(base: string, d: DeletedSecretRecord, asItem: boolean): Record<string, unknown> {
  const current = d.secret.versions[d.secret.versions.length - 1]!;
  return {
    recoveryId: `${base}/deletedsecrets/${d.secret.name}`,
    deletedDate: seconds(d.deletedDate),
    scheduledPurgeDate: seconds(d.scheduledPurgeDate),
    ...common(base, d.secret, current, !asItem),
  };
}

export function errorBody(code: string, message: string, innerCode?: string): { error: Record<string, unknown> } {
  return { error: innerCode ? { code, message, innererror: { code: innerCode } } : { code, message } };
}

export function failureBody(f: VaultFailure): { error: Record<string, unknown> } {
  return errorBody(f.code, f.message, f.innerCode);
}

/** Page of a list: `$skiptoken` is an opaque offset; nextLink carries api-version and maxresults like the service. */
export function page<T, R = T>(
  items: T[], url: URL, base: string, path: string, defaultPageSize: number, render: (item: T) => R = (item) => item as unknown as R,
): { value: R[]; nextLink: string | null } {
  const params = new URLSearchParams(url.search);
  const max = params.get('maxresults');
  let size = defaultPageSize;
  if (max !== null) {
    const n = Number(max);
    if (!Number.isInteger(n) || n < 1 || n > 25) {
      throw new VaultFailure(400, 'BadParameter', `maxresults must be an integer from 1 to 25; got '${max}'.`);
    }
    size = n;
  }
  const token = params.get('$skiptoken');
  let offset = 0;
  if (token !== null) {
    const decoded = Number(Buffer.from(token, 'base64url').toString('utf8'));
    if (!Number.isInteger(decoded) || decoded < 0) throw new VaultFailure(400, 'BadParameter', 'The $skiptoken is invalid.');
    offset = decoded;
  }
  // Only the page asked for is rendered (a 2,000-secret vault rendered every secret for each of its 80 pages).
  const slice = items.slice(offset, offset + size).map(render);
  let nextLink: string | null = null;
  if (offset + size < items.length) {
    const apiVersion = params.get('api-version') ?? '2025-07-01';
    const next = Buffer.from(String(offset + size), 'utf8').toString('base64url');
    nextLink = `${base}${path}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${next}&maxresults=${size}`;
  }
  return { value: slice, nextLink };
}
