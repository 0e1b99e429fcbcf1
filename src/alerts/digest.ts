import type { KeywardenConfig } from '../config/schema.js';
import type { CredentialKind } from '../domain/credential.js';
import { daysLeft, formatExpiry } from '../domain/expiry.js';
import { compareRisk } from '../domain/blast-radius.js';
import { openJobs } from '../workflows/engine/open-jobs.js';
import { credentialsInRotation, rotationText } from '../domain/rotation-state.js';
import type { Store } from '../store/store.js';
import { pagedIds } from '../store/paged-ids.js';
import { ownerText } from './cards.js';
import { cardFindings } from './lifecycle.js';
import { enqueue } from './pacing.js';
import { timeSlices } from './slices.js';
import type { AlertRecord, DigestData, DigestItem } from './types.js';

/** One digest card per scan per channel, instead of one card per credential: the overview people read first. */

/** Rows kept in the stored digest; the card shows fewer (and fewer again if Teams says it is too large). */
const STORED_ROWS = 25;

export const URGENCY_BUCKETS = ['expired', '≤ 1 day', '≤ 7 days', '≤ 14 days', '≤ 30 days', 'later', 'findings'] as const;

export function urgencyBucket(alert: AlertRecord, now: number): (typeof URGENCY_BUCKETS)[number] {
  const left = daysLeft(alert.credential, now);
  if (left === null || alert.threshold === null) return 'findings';
  if (left <= 0) return 'expired';
  if (left <= 1) return '≤ 1 day';
  if (left <= 7) return '≤ 7 days';
  if (left <= 14) return '≤ 14 days';
  if (left <= 30) return '≤ 30 days';
  return 'later';
}

/** An open alert of the channel that belongs in its digest: crossed a threshold or carries a severe finding. */
function inDigest(a: AlertRecord, channel: string, config: KeywardenConfig): boolean {
  return a.state !== 'resolved' && a.channel === channel && (a.threshold !== null || cardFindings(a.findings, config).length > 0);
}

/** Old credentials in a rotation grace window whose alert was in this channel: shown as rotated, not as needing attention. */
export function rotatedItems(store: Store, channel: string): DigestItem[] {
  const items: DigestItem[] = [];
  for (const r of credentialsInRotation(openJobs(store)).values()) {
    const alert = r.alertId ? store.get<AlertRecord>('alerts', r.alertId)?.value : undefined;
    if (!alert || alert.channel !== channel) continue;
    const c = alert.credential;
    items.push({ name: c.name, kind: c.kind, where: c.where.label, owner: ownerText(c), expires: rotationText(r), urgency: 'rotated' });
  }
  return items.sort((a, b) => a.name.localeCompare(b.name));
}

/** What a digest needs of its alerts: counts of all of them and the STORED_ROWS most at risk (the rest is not kept). */
function digestTally(now: number) {
  const byUrgency = new Map<string, number>();
  const byKind = new Map<CredentialKind, number>();
  const rank = compareRisk(now);
  let top: AlertRecord[] = [];
  let total = 0;
  // A stable sort keeps the alerts' order among equals, as sorting them all at once would.
  const keepTop = () => {
    top = top.sort((a, b) => rank(a.credential, b.credential)).slice(0, STORED_ROWS);
  };
  return {
    add(a: AlertRecord): void {
      total += 1;
      const bucket = urgencyBucket(a, now);
      byUrgency.set(bucket, (byUrgency.get(bucket) ?? 0) + 1);
      byKind.set(a.credential.kind, (byKind.get(a.credential.kind) ?? 0) + 1);
      top.push(a);
      if (top.length >= 4 * STORED_ROWS + 100) keepTop();
    },
    digest(options: { scanId: string; channel: string; newCount: number; rotated?: DigestItem[] }): DigestData {
      keepTop();
      return {
        scanId: options.scanId,
        at: now,
        channel: options.channel,
        total,
        newCount: options.newCount,
        byUrgency: URGENCY_BUCKETS.filter((u) => byUrgency.has(u)).map((u) => ({ urgency: u, count: byUrgency.get(u)! })),
        byKind: [...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([kind, count]) => ({ kind, count })),
        items: top.map((a) => ({
          name: a.credential.name,
          kind: a.credential.kind,
          where: a.credential.where.label,
          owner: ownerText(a.credential),
          expires: a.credential.expiresAt === null ? 'never expires' : formatExpiry(a.credential.expiresAt, now),
          urgency: urgencyBucket(a, now),
          consumers: a.credential.consumers.length,
        })),
        ...(options.rotated?.length ? { rotated: options.rotated.slice(0, STORED_ROWS) } : {}),
      };
    },
  };
}

export function buildDigest(alerts: AlertRecord[], options: { scanId: string; channel: string; newCount: number; now: number; rotated?: DigestItem[] }): DigestData {
  const tally = digestTally(options.now);
  for (const a of alerts) tally.add(a);
  return tally.digest(options);
}

/**
 * Queues one digest per channel that had something new (a rescan with no change queues nothing), reading the alerts
 * one record at a time in slices of a few milliseconds: the alerts grow with the estate, so neither all records in
 * memory nor one long loop on the bot's event loop.
 */
export async function queueScanDigests(store: Store, config: KeywardenConfig, newByChannel: Map<string, Set<string>>, scanId: string, now: number): Promise<string[]> {
  if (!config.alerts.digest) return [];
  const channels = [...newByChannel].filter(([, fresh]) => fresh.size > 0);
  if (channels.length === 0) return [];
  const tallies = new Map(channels.map(([channel]) => [channel, digestTally(now)]));
  const slice = timeSlices();
  for (const id of pagedIds(store, 'alerts')) {
    await slice();
    const a = store.get<AlertRecord>('alerts', id)?.value;
    const tally = a?.channel ? tallies.get(a.channel) : undefined;
    if (a && tally && inDigest(a, a.channel!, config)) tally.add(a);
  }
  const queued: string[] = [];
  for (const [channel, fresh] of channels) {
    const digest = tallies.get(channel)!.digest({ scanId, channel, newCount: fresh.size, rotated: rotatedItems(store, channel) });
    if (digest.total === 0) continue;
    const id = `digest:${channel}:${scanId}`;
    enqueue(store, id, { kind: 'digest', channel, digest, priority: 0 }, now);
    queued.push(id);
  }
  return queued;
}
