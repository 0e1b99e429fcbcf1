import type { KeywardenConfig } from '../config/schema.js';
import type { CredentialKind } from '../domain/credential.js';
import { daysLeft, formatExpiry } from '../domain/expiry.js';
import { compareRisk } from '../domain/blast-radius.js';
import type { JobRecord } from '../domain/job.js';
import { credentialsInRotation, rotationText } from '../domain/rotation-state.js';
import type { Store } from '../store/store.js';
import { ownerText } from './cards.js';
import { cardFindings } from './lifecycle.js';
import { enqueue } from './pacing.js';
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

/** Open alerts of a channel that belong in its digest: crossed a threshold or carry a severe finding. */
export function digestAlerts(store: Store, channel: string, config: KeywardenConfig): AlertRecord[] {
  return store.list<AlertRecord>('alerts')
    .map((r) => r.value)
    .filter((a) => a.state !== 'resolved' && a.channel === channel && (a.threshold !== null || cardFindings(a.findings, config).length > 0));
}

/** Old credentials in a rotation grace window whose alert was in this channel: shown as rotated, not as needing attention. */
export function rotatedItems(store: Store, channel: string): DigestItem[] {
  const items: DigestItem[] = [];
  for (const r of credentialsInRotation(store.list<JobRecord>('jobs').map((j) => j.value)).values()) {
    const alert = r.alertId ? store.get<AlertRecord>('alerts', r.alertId)?.value : undefined;
    if (!alert || alert.channel !== channel) continue;
    const c = alert.credential;
    items.push({ name: c.name, kind: c.kind, where: c.where.label, owner: ownerText(c), expires: rotationText(r), urgency: 'rotated' });
  }
  return items.sort((a, b) => a.name.localeCompare(b.name));
}

export function buildDigest(alerts: AlertRecord[], options: { scanId: string; channel: string; newCount: number; now: number; rotated?: DigestItem[] }): DigestData {
  const { now } = options;
  const byUrgency = new Map<string, number>();
  const byKind = new Map<CredentialKind, number>();
  for (const a of alerts) {
    const bucket = urgencyBucket(a, now);
    byUrgency.set(bucket, (byUrgency.get(bucket) ?? 0) + 1);
    byKind.set(a.credential.kind, (byKind.get(a.credential.kind) ?? 0) + 1);
  }
  const ranked = [...alerts].sort((a, b) => compareRisk(now)(a.credential, b.credential));
  return {
    scanId: options.scanId,
    at: now,
    channel: options.channel,
    total: alerts.length,
    newCount: options.newCount,
    byUrgency: URGENCY_BUCKETS.filter((u) => byUrgency.has(u)).map((u) => ({ urgency: u, count: byUrgency.get(u)! })),
    byKind: [...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([kind, count]) => ({ kind, count })),
    items: ranked.slice(0, STORED_ROWS).map((a) => ({
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
}

/** Queues one digest per channel that had something new in this scan (a rescan with no change queues nothing). */
export function queueDigests(store: Store, config: KeywardenConfig, newByChannel: Map<string, Set<string>>, scanId: string, now: number): string[] {
  if (!config.alerts.digest) return [];
  const queued: string[] = [];
  for (const [channel, fresh] of newByChannel) {
    if (fresh.size === 0) continue;
    const alerts = digestAlerts(store, channel, config);
    if (alerts.length === 0) continue;
    const digest = buildDigest(alerts, { scanId, channel, newCount: fresh.size, now, rotated: rotatedItems(store, channel) });
    const id = `digest:${channel}:${scanId}`;
    enqueue(store, id, { kind: 'digest', channel, digest, priority: 0 }, now);
    queued.push(id);
  }
  return queued;
}
