import { createHash } from 'node:crypto';
import type { Store, StoredRecord } from '../store/store.js';
import { DONE_PREFIX, entryOf, FAILED_PREFIX, fromTime, IndexCursor, removeEntry, writeEntry, type IndexValue } from './outbox-index.js';
import type { OutboxEntry } from './types.js';

/**
 * Two jobs that keep Teams happy: a per-thread sliding-window pacer (Teams allows a bot 7 sends per second,
 * 8 per 2 s, 60 per 30 s and 1800 per hour in one conversation), and the durable outbox the sends come from,
 * so a backlog survives restarts and drains most urgent first.
 */

export interface ThreadLimit {
  windowMs: number;
  max: number;
}

/** Teams' per-bot, per-thread limits (learn "Optimize your bot with rate limiting in Teams"). */
export const TEAMS_THREAD_LIMITS: readonly ThreadLimit[] = [
  { windowMs: 1_000, max: 7 },
  { windowMs: 2_000, max: 8 },
  { windowMs: 30_000, max: 60 },
  { windowMs: 3_600_000, max: 1800 },
];

export interface ThreadPacerOptions {
  limits?: readonly ThreadLimit[];
  /** Added to every window: our timestamp is taken before the request, Teams counts on arrival. */
  marginMs?: number;
}

/** Remembers when each thread was sent to (on the injected clock) and says when the next send may go. */
export class ThreadPacer {
  private readonly sends = new Map<string, number[]>();
  private readonly limits: readonly ThreadLimit[];
  private readonly marginMs: number;
  private readonly longest: number;

  constructor(options: ThreadPacerOptions = {}) {
    this.limits = options.limits ?? TEAMS_THREAD_LIMITS;
    this.marginMs = options.marginMs ?? 250;
    this.longest = Math.max(...this.limits.map((l) => l.windowMs)) + this.marginMs;
  }

  private readonly holds = new Map<string, number>();

  /** Teams said "throttled": no sends to this thread before `until`. */
  holdUntil(thread: string, until: number): void {
    this.holds.set(thread, Math.max(this.holds.get(thread) ?? 0, until));
  }

  /** Earliest time (≥ now) a send to `thread` stays inside every limit. */
  nextSlot(thread: string, now: number): number {
    const held = this.holds.get(thread) ?? 0;
    const times = this.sends.get(thread);
    if (!times || times.length === 0) return Math.max(now, held);
    let earliest = Math.max(now, held);
    for (const limit of this.limits) {
      const window = limit.windowMs + this.marginMs;
      // Sends still inside the window that would end at `now` (times are ascending).
      let first = times.length;
      while (first > 0 && times[first - 1]! > now - window) first--;
      const inWindow = times.length - first;
      if (inWindow + 1 > limit.max) {
        // Wait until enough of the oldest sends leave the window.
        const blocking = times[first + (inWindow - limit.max)]!;
        earliest = Math.max(earliest, blocking + window);
      }
    }
    return earliest;
  }

  record(thread: string, at: number): void {
    const times = this.sends.get(thread) ?? [];
    // Keep ascending even if two callers record out of order.
    let i = times.length;
    while (i > 0 && times[i - 1]! > at) i--;
    times.splice(i, 0, at);
    while (times.length > 0 && times[0]! <= at - this.longest) times.shift();
    this.sends.set(thread, times);
  }
}

/** Retry schedule for transient failures: 5 s doubling to 15 min, ±20 % jitter that is stable per entry. */
export function backoffMs(attempts: number, seed: string): number {
  const base = Math.min(15 * 60_000, 5_000 * 2 ** Math.max(0, attempts - 1));
  const h = createHash('sha256').update(`${seed}#${attempts}`).digest();
  const jitter = (h[0]! / 255) * 0.4 - 0.2;
  return Math.round(base * (1 + jitter));
}

/** After this many transient failures an entry is marked failed (and shows up in readiness). */
export const MAX_ATTEMPTS = 12;

/** How long a replica may hold an entry in `sending` before another takes it over. */
export const SEND_LEASE_MS = 2 * 60_000;

/** Sent / superseded entries are kept this long for inspection, then pruned. */
export const KEEP_DONE_MS = 24 * 3_600_000;

export type NewOutboxEntry = Omit<OutboxEntry, 'status' | 'attempts' | 'createdAt' | 'dueAt'> & { dueAt?: number };

/**
 * Queues a send. An entry with the same id that is already pending keeps its place (it renders the latest state
 * when it goes) but moves up if the new request is more urgent; a finished one is re-armed.
 */
export function enqueue(store: Store, id: string, entry: NewOutboxEntry, now: number): void {
  for (let attempt = 0; attempt < 10; attempt++) {
    const fresh: OutboxEntry = { ...entry, status: 'pending', attempts: 0, createdAt: now, dueAt: entry.dueAt ?? now };
    const existing = store.get<OutboxEntry>('outbox', id);
    if (!existing) {
      if (writeEntry(store, id, undefined, fresh)) return;
      continue;
    }
    const cur = existing.value;
    if (cur.status === 'pending' || cur.status === 'sending') {
      if (entry.priority >= cur.priority && entry.digest === undefined) return;
      const merged: OutboxEntry = { ...cur, priority: Math.min(cur.priority, entry.priority), digest: entry.digest ?? cur.digest };
      if (writeEntry(store, id, existing, merged)) return;
      continue;
    }
    if (writeEntry(store, id, existing, fresh)) return;
  }
}

/** Whether an entry may be taken now or later (an expired lease counts as pending). */
export function isOutstanding(entry: OutboxEntry, now: number): boolean {
  return entry.status === 'pending' || (entry.status === 'sending' && (entry.leaseUntil ?? 0) <= now);
}

/** Takes an entry for sending with compare-and-set, so two replicas never send the same one. */
export function claimEntry(store: Store, record: StoredRecord<OutboxEntry>, now: number): StoredRecord<OutboxEntry> | undefined {
  return writeEntry(store, record.id, record, { ...record.value, status: 'sending', leaseUntil: now + SEND_LEASE_MS });
}

/** Writes a new state for a claimed entry (a lost race means another replica took it over: fine). */
export function settleEntry(store: Store, claimed: StoredRecord<OutboxEntry>, next: Partial<OutboxEntry>): boolean {
  const current = store.get<OutboxEntry>('outbox', claimed.id);
  if (!current) return false;
  const { leaseUntil: _lease, ...rest } = current.value;
  return Boolean(writeEntry(store, claimed.id, current, { ...rest, ...next }));
}

/**
 * Drops sent and superseded entries older than KEEP_DONE_MS, and failure keys past readiness's 24 h (failed entries
 * stay). Reads only the finished keys older than that, oldest first, a page at a time.
 */
export function pruneOutbox(store: Store, now: number): number {
  let pruned = 0;
  const cutoff = now - KEEP_DONE_MS;
  for (const prefix of [DONE_PREFIX, FAILED_PREFIX]) {
    const cursor = new IndexCursor(store, prefix, 200);
    for (let row = cursor.take(); row && row.value.at < cutoff; row = cursor.take()) {
      if (prefix === FAILED_PREFIX) {
        store.delete('outbox-index', row.id, row.version);
        continue;
      }
      const record = entryOf(store, row);
      if (record && removeEntry(store, record)) pruned++;
    }
  }
  return pruned;
}

/** Finished keys from `since` on, oldest first, a page at a time. */
export function* finishedSince(store: Store, prefix: typeof DONE_PREFIX | typeof FAILED_PREFIX, since: number): Generator<StoredRecord<IndexValue>> {
  // Keys at `since` are `<that>|<id>`, so they sort after it: `after` (exclusive) keeps them.
  const cursor = new IndexCursor(store, prefix, 200, fromTime(prefix, since));
  for (let row = cursor.take(); row; row = cursor.take()) yield row;
}
