import type { Credential } from '../domain/credential.js';
import type { ScanResult } from '../domain/scan.js';
import type { Store } from '../store/store.js';
import { isRowSummary, rowBackedResult, type RowScanSummary } from './rows-view.js';

/** Scan snapshots in the `snapshots` collection: "latest" plus a short history, and the diff between two scans. */

export const LATEST_SNAPSHOT_ID = 'latest';
const HISTORY_PREFIX = 'history:';
export const DEFAULT_HISTORY_SIZE = 10;
/** Orders scans that start in the same millisecond (a frozen test clock). */
let sequence = 0;

/** What counts as "changed": the facts a person acts on, not last-used timestamps that move every day. */
export function fingerprint(c: Credential): string {
  return JSON.stringify([
    c.name, c.expiresAt, c.createdAt ?? null, c.enabled ?? null, c.owner?.name ?? null, c.owner?.active ?? null,
    c.holds ?? null, c.heldIn.map((r) => `${r.vault}/${r.name}`).sort(), c.consumers.map((x) => `${x.factory}/${x.name}`).sort(),
  ]);
}

/**
 * Credentials added, removed and changed since `previous`. A scope that failed this time is unknown, not empty:
 * its earlier credentials are not reported as removed.
 */
export function diffScans(
  previous: readonly Credential[] | undefined,
  current: readonly Credential[],
  failedScopes: ReadonlySet<string> = new Set(),
): ScanResult['changes'] {
  if (!previous) return { added: current.map((c) => c.id).sort(), removed: [], changed: [] };
  const before = new Map(previous.map((c) => [c.id, c]));
  const after = new Map(current.map((c) => [c.id, c]));
  const added: string[] = [];
  const changed: string[] = [];
  for (const [id, c] of after) {
    const old = before.get(id);
    if (!old) added.push(id);
    else if (fingerprint(old) !== fingerprint(c)) changed.push(id);
  }
  // An error can name another scope than the credential's (Entra errors name the tenant, credentials the app): in an
  // estate with an error, a scope of which nothing at all was seen is unknown too (the rule alerts use).
  const failedEstates = new Set([...failedScopes].map((k) => k.slice(0, k.indexOf(':'))));
  const seenScopes = new Set(current.map((c) => scopeKey(c.where.estate, c.where.scope)));
  const unknown = (c: Credential): boolean => {
    const key = scopeKey(c.where.estate, c.where.scope);
    return failedScopes.has(key) || (failedEstates.has(c.where.estate) && !seenScopes.has(key));
  };
  const removed = [...before.values()]
    .filter((c) => !after.has(c.id) && !unknown(c))
    .map((c) => c.id);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

export function scopeKey(estate: string, scope: string): string {
  return `${estate}:${scope}`;
}

/** The latest scan: a summary over the stored rows, or (stores written before rows) a whole stored result. */
export function readLatestSnapshot(store: Store): ScanResult | undefined {
  const value = store.get<ScanResult | RowScanSummary>('snapshots', LATEST_SNAPSHOT_ID)?.value;
  if (!value) return undefined;
  if (isRowSummary(value)) return store.scanRows ? rowBackedResult(store.scanRows, value) : undefined;
  return value;
}

/**
 * A history entry: what one scan saw and what changed, without the credentials and findings themselves. The full
 * result lives only in "latest" (the next scan diffs against it), so keeping history costs kilobytes, not 10 × the estate.
 */
export interface SnapshotSummary {
  id: string;
  trigger: ScanResult['trigger'];
  startedAt: number;
  finishedAt: number;
  counts: { credentials: number; findings: number; errors: number };
  errors: ScanResult['errors'];
  changes: ScanResult['changes'];
}

export function summarizeScan(result: ScanResult): SnapshotSummary {
  return {
    id: result.id,
    trigger: result.trigger,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    counts: result.counts
      ? { credentials: result.counts.credentials, findings: Object.values(result.counts.findings).reduce((a, b) => a + b, 0), errors: result.errors.length }
      : { credentials: result.credentials.length, findings: result.findings.length, errors: result.errors.length },
    errors: result.errors,
    changes: result.changes,
  };
}

/** Stores written before history was slimmed hold whole scan results; read them as summaries too. */
function asSummary(value: SnapshotSummary | ScanResult): SnapshotSummary {
  return 'credentials' in value && Array.isArray(value.credentials) ? summarizeScan(value) : value as SnapshotSummary;
}

/** Recent scans, newest first. */
export function listSnapshotHistory(store: Store, limit = DEFAULT_HISTORY_SIZE): SnapshotSummary[] {
  // Ids sort in time order, so the newest `limit` are the last ones: only those are read and parsed.
  const ids = store.listIds('snapshots', { prefix: HISTORY_PREFIX });
  return ids.slice(Math.max(0, ids.length - Math.max(0, limit))).reverse()
    .map((id) => store.get<SnapshotSummary | ScanResult>('snapshots', id)?.value)
    .filter((v): v is SnapshotSummary | ScanResult => v !== undefined)
    .map(asSummary);
}

/**
 * Stores the scan as the latest snapshot and its summary in the history, dropping history beyond `historySize`. A
 * scan over rows stores only its summary as "latest" (the rows are the estate).
 */
export function saveSnapshot(store: Store, result: ScanResult | RowScanSummary, historySize = DEFAULT_HISTORY_SIZE): void {
  const summary = isRowSummary(result) ? result : undefined;
  const full: ScanResult = summary ? rowBackedResult(store.scanRows!, summary) : result as ScanResult;
  store.transaction(() => {
    store.put('snapshots', LATEST_SNAPSHOT_ID, summary ?? full);
    // Zero-padded start time first, so ids sort in time order.
    sequence = (sequence + 1) % 1_000_000;
    store.put('snapshots', `${HISTORY_PREFIX}${String(full.startedAt).padStart(15, '0')}:${String(sequence).padStart(6, '0')}:${full.id}`, summarizeScan(full));
    // Pruning needs only the ids (sorted oldest first), never the stored values.
    const history = store.listIds('snapshots', { prefix: HISTORY_PREFIX });
    for (const id of history.slice(0, Math.max(0, history.length - historySize))) store.delete('snapshots', id);
  });
}
