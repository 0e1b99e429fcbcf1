import { sortableNumber } from '../store/sortable-key.js';
import type { Store, StoredRecord } from '../store/store.js';
import type { OutboxEntry } from './types.js';

/**
 * Issue 14: the outbox holds one entry per alert card (≈ 87k after a first scan of a large estate), so no hot path may
 * read it whole. Every outbox write also writes one key in 'outbox-index', in the same transaction, ordered the way its
 * readers need it: `q|<queue>|<priority>|<createdAt>|<id>` for entries still to send (one queue per support channel,
 * one for owner notices), `done|<at>|<id>` for sent and superseded ones (pacer seeding, pruning) and `failed|<at>|<id>`
 * (readiness). Readers page through a key range; an index key whose entry moved on is dropped when met.
 */

export const OUTBOX = 'outbox' as const;
export const INDEX = 'outbox-index' as const;
export const OWNERS_QUEUE = 'owners';
/** Marks a store whose outbox entries all have their index keys (settings/<id>); stores from before are indexed once. */
const BUILT_MARKER = 'outbox-index-v1';

export interface IndexValue {
  /** The outbox entry's id. */
  id: string;
  /** Queued keys: not before this time. Done keys: when it finished. */
  at: number;
  status?: OutboxEntry['status'];
  /** Done keys: what the pacer needs to know which thread a send went to. */
  kind?: OutboxEntry['kind'];
  channel?: string;
  user?: string;
}

export function channelQueue(channelKey: string): string {
  return `ch:${encodeURIComponent(channelKey)}`;
}

export function queueOf(entry: OutboxEntry): string | undefined {
  if (entry.kind === 'owner-notice') return OWNERS_QUEUE;
  return entry.channel !== undefined ? channelQueue(entry.channel) : undefined;
}

export const QUEUED_PREFIX = 'q|';
export const queuePrefix = (queue: string): string => `${QUEUED_PREFIX}${queue}|`;
export const DONE_PREFIX = 'done|';
export const FAILED_PREFIX = 'failed|';

/** The one index key an entry has in its current state (undefined: a queued entry with no channel, which never goes). */
export function indexKeyOf(id: string, entry: OutboxEntry): { key: string; value: IndexValue } | undefined {
  if (entry.status === 'pending' || entry.status === 'sending') {
    const queue = queueOf(entry);
    if (queue === undefined) return undefined;
    return { key: `${queuePrefix(queue)}${sortableNumber(entry.priority)}|${sortableNumber(entry.createdAt)}|${id}`, value: { id, at: entry.dueAt } };
  }
  if (entry.status === 'failed') {
    const at = entry.lastError?.at ?? entry.createdAt;
    return { key: `${FAILED_PREFIX}${sortableNumber(at)}|${id}`, value: { id, at, status: 'failed' } };
  }
  const at = entry.sentAt ?? entry.createdAt;
  return {
    key: `${DONE_PREFIX}${sortableNumber(at)}|${id}`,
    value: { id, at, status: entry.status, kind: entry.kind, ...(entry.channel !== undefined ? { channel: entry.channel } : {}), ...(entry.user ? { user: entry.user.aadObjectId } : {}) },
  };
}

/** The first key of a time-ordered prefix at or after `at`. */
export function fromTime(prefix: string, at: number): string {
  return `${prefix}${sortableNumber(at)}`;
}

/**
 * Writes an outbox entry (insert when `prev` is undefined, else compare-and-set at prev's version) and moves its index
 * key in the same transaction. Undefined when another writer got there first.
 */
export function writeEntry(store: Store, id: string, prev: StoredRecord<OutboxEntry> | undefined, next: OutboxEntry): StoredRecord<OutboxEntry> | undefined {
  const before = prev ? indexKeyOf(id, prev.value) : undefined;
  const after = indexKeyOf(id, next);
  const drop = before !== undefined && before.key !== after?.key;
  const keep = after !== undefined && (before?.key !== after.key || JSON.stringify(before.value) !== JSON.stringify(after.value));
  const write = () => (prev ? store.compareAndSet<OutboxEntry>(OUTBOX, id, prev.version, next) : store.insert<OutboxEntry>(OUTBOX, id, next));
  // A claim leaves the key as it is: one compare-and-set (on Azure Tables a transaction would read the row first).
  if (!drop && !keep) return write();
  return store.transaction(() => {
    const written = write();
    if (!written) return undefined;
    if (drop) store.delete(INDEX, before.key);
    if (keep) store.put(INDEX, after.key, after.value);
    return written;
  });
}

/** Deletes a finished entry at the version read, with its index key. */
export function removeEntry(store: Store, record: StoredRecord<OutboxEntry>): boolean {
  return store.transaction(() => {
    if (!store.delete(OUTBOX, record.id, record.version)) return false;
    const key = indexKeyOf(record.id, record.value);
    if (key) store.delete(INDEX, key.key);
    return true;
  });
}

/**
 * The entry an index key points at, when the key is still the entry's own; a key the entry moved away from (or whose
 * entry is gone) is deleted, at the version read, so a writer that re-created it meanwhile keeps it.
 */
export function entryOf(store: Store, row: StoredRecord<IndexValue>): StoredRecord<OutboxEntry> | undefined {
  const record = store.get<OutboxEntry>(OUTBOX, row.value.id);
  if (record && indexKeyOf(record.id, record.value)?.key === row.id) return record;
  store.delete(INDEX, row.id, row.version);
  return undefined;
}

/** Reads index keys under a prefix in key order, a page at a time. */
export class IndexCursor {
  private buffer: StoredRecord<IndexValue>[] = [];
  private after: string | undefined;
  private ended = false;

  constructor(private readonly store: Store, readonly prefix: string, private readonly pageSize = 50, from?: string) {
    this.after = from;
  }

  head(): StoredRecord<IndexValue> | undefined {
    if (this.buffer.length === 0 && !this.ended) {
      const page = this.store.list<IndexValue>(INDEX, { prefix: this.prefix, limit: this.pageSize, ...(this.after !== undefined ? { after: this.after } : {}) });
      if (page.length < this.pageSize) this.ended = true;
      if (page.length > 0) this.after = page.at(-1)!.id;
      this.buffer = page;
    }
    return this.buffer[0];
  }

  take(): StoredRecord<IndexValue> | undefined {
    const row = this.head();
    this.buffer.shift();
    return row;
  }

  /** The key without the prefix: for queues, priority | createdAt | id — the send order across queues. */
  rank(): string | undefined {
    return this.head()?.id.slice(this.prefix.length);
  }
}

/** Counts keys under a prefix, reading ids only and at most `cap` of them. */
export function countKeys(store: Store, prefix: string, cap: number, after?: string): number {
  return store.listIds(INDEX, { prefix, limit: cap, ...(after !== undefined ? { after } : {}) }).length;
}

const pause = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Gives a store written before the index (or by a replica without it) its index keys, once: pages through the outbox
 * (the only whole read left, and only on a store never indexed), then leaves a marker. Safe to run on two replicas.
 */
export async function ensureOutboxIndex(store: Store, now: number, pageSize = 200): Promise<number> {
  if (store.get('settings', BUILT_MARKER)) return 0;
  let after: string | undefined;
  let added = 0;
  for (;;) {
    if (!store.isOpen) return added;
    const page = store.list<OutboxEntry>(OUTBOX, { limit: pageSize, ...(after !== undefined ? { after } : {}) });
    if (page.length === 0) break;
    after = page.at(-1)!.id;
    for (const record of page) {
      // A key from a value that changed meanwhile is only stale: its readers drop it (entryOf); the writer added the new one.
      const key = indexKeyOf(record.id, record.value);
      if (key && store.insert(INDEX, key.key, key.value)) added++;
    }
    await pause();
  }
  store.insert('settings', BUILT_MARKER, { builtAt: now, added });
  return added;
}
