import type { Credential } from '../domain/credential.js';
import type { ScanResult } from '../domain/scan.js';
import type { Store } from '../store/store.js';

/** Scan snapshots in the `snapshots` collection: "latest" plus a short history, and the diff between two scans. */

export const LATEST_SNAPSHOT_ID = 'latest';
const HISTORY_PREFIX = 'history:';
export const DEFAULT_HISTORY_SIZE = 10;
/** Orders scans that start in the same millisecond (a frozen test clock). */
let sequence = 0;

/** What counts as "changed": the facts a person acts on, not last-used timestamps that move every day. */
function fingerprint(c: Credential): string {
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
  const removed = [...before.values()]
    .filter((c) => !after.has(c.id) && !failedScopes.has(scopeKey(c.where.estate, c.where.scope)))
    .map((c) => c.id);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

export function scopeKey(estate: string, scope: string): string {
  return `${estate}:${scope}`;
}

export function readLatestSnapshot(store: Store): ScanResult | undefined {
  return store.get<ScanResult>('snapshots', LATEST_SNAPSHOT_ID)?.value;
}

/** Recent scans, newest first. */
export function listSnapshotHistory(store: Store, limit = DEFAULT_HISTORY_SIZE): ScanResult[] {
  return store.list<ScanResult>('snapshots', { prefix: HISTORY_PREFIX })
    .sort((a, b) => (a.id < b.id ? 1 : -1))
    .slice(0, limit)
    .map((r) => r.value);
}

/** Stores the scan as the latest snapshot and in the history, dropping history beyond `historySize`. */
export function saveSnapshot(store: Store, result: ScanResult, historySize = DEFAULT_HISTORY_SIZE): void {
  store.transaction(() => {
    store.put('snapshots', LATEST_SNAPSHOT_ID, result);
    // Zero-padded start time first, so ids sort in time order.
    sequence = (sequence + 1) % 1_000_000;
    store.put('snapshots', `${HISTORY_PREFIX}${String(result.startedAt).padStart(15, '0')}:${String(sequence).padStart(6, '0')}:${result.id}`, result);
    const history = store.list<ScanResult>('snapshots', { prefix: HISTORY_PREFIX }).sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const old of history.slice(0, Math.max(0, history.length - historySize))) store.delete('snapshots', old.id);
  });
}
