import type { Store } from '../store/store.js';
import { pagedIds } from '../store/paged-ids.js';
import type { SupportChannel } from './routing.js';
import type { AlertRecord } from './types.js';

/**
 * How many alerts deserve a card but have no support channel to go to, kept in one record so /readyz never lists
 * the alerts. Counted by the passes that read every alert anyway (a scan, adopting a channel, start-up); the probe
 * re-checks the few alerts it names, so alerts resolved since are not reported.
 */

const RECORD_ID = 'alerts:unrouted';
/** Alerts named in the record: the probe re-checks at most this many. */
const SAMPLE = 50;

export interface UnroutedRecord {
  count: number;
  /** Up to SAMPLE of their ids. */
  sample: string[];
  at: number;
}

/** Waiting for a channel: a card to post, nothing posted yet, and no (current) support channel. */
export function isUnrouted(alert: AlertRecord, channelKeys: ReadonlySet<string>): boolean {
  return alert.card && !alert.message && alert.state !== 'resolved' && !(alert.channel && channelKeys.has(alert.channel));
}

function recordOf(ids: ReadonlySet<string>, now: number): UnroutedRecord {
  return { count: ids.size, sample: [...ids].slice(0, SAMPLE), at: now };
}

/** Collects unrouted alert ids during a pass, then stores the count. */
export class UnroutedTally {
  private readonly ids = new Set<string>();

  add(alertId: string): void {
    this.ids.add(alertId);
  }

  save(store: Store, now: number): void {
    const value = recordOf(this.ids, now);
    const current = store.get<UnroutedRecord>('settings', RECORD_ID);
    if (current?.value.count === 0 && value.count === 0) return;
    store.put<UnroutedRecord>('settings', RECORD_ID, value);
  }
}

/**
 * The number of unrouted alerts for /readyz, reading at most SAMPLE alerts: exact when the last count named them all,
 * else that count (it is as fresh as the last scan or channel change).
 */
export function unroutedCount(store: Store, channels: SupportChannel[]): number {
  const record = store.get<UnroutedRecord>('settings', RECORD_ID)?.value;
  if (!record || record.count === 0) return 0;
  if (record.count > record.sample.length) return record.count;
  const keys = new Set(channels.map((c) => c.key));
  return record.sample.filter((id) => {
    const alert = store.get<AlertRecord>('alerts', id)?.value;
    return alert !== undefined && isUnrouted(alert, keys);
  }).length;
}

/**
 * Counts anew (at start-up: the configured channels may have changed), a few milliseconds at a time. A scan or
 * channel change that saved a count meanwhile wins: its count is newer.
 */
export async function recountUnrouted(store: Store, channels: SupportChannel[], now: number, slice: () => Promise<void>): Promise<void> {
  const before = store.get<UnroutedRecord>('settings', RECORD_ID);
  const keys = new Set(channels.map((c) => c.key));
  const tally = new Set<string>();
  for (const id of pagedIds(store, 'alerts')) {
    await slice();
    if (!store.isOpen) return;
    const alert = store.get<AlertRecord>('alerts', id)?.value;
    if (alert && isUnrouted(alert, keys)) tally.add(id);
  }
  const value = recordOf(tally, now);
  if (before) store.compareAndSet<UnroutedRecord>('settings', RECORD_ID, before.version, value);
  else store.insert<UnroutedRecord>('settings', RECORD_ID, value);
}
