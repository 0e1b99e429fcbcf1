import type { Collection } from '../store.js';

/**
 * How Keywarden's records sit in one Azure table. Entity group transactions only span one partition, so every
 * collection that a `store.transaction` touches together (approvals + jobs, alerts + alert-claims, the audit head) lives
 * in the "state" partition; the snapshots (big, written alone) have their own. Row keys are the collection and the id's
 * UTF-8 bytes in hex: hex sorts like SQLite's binary order, keeps prefix queries a key range, and avoids the characters
 * Tables forbids in keys (/ \ # ? and control characters).
 */

export const STATE_PARTITION = 'state';
export const SNAPSHOT_PARTITION = 'snapshots';

export function partitionOf(collection: Collection | string): string {
  return collection === 'snapshots' ? SNAPSHOT_PARTITION : STATE_PARTITION;
}

export function rowKeyOf(collection: Collection | string, id: string): string {
  return `${collection}|${Buffer.from(id, 'utf8').toString('hex')}`;
}

/**
 * The key range [from, to) of a collection, or of the ids starting with prefix (hex digits all sort below "g"),
 * starting past `after` when given: the key of `after` plus "0" sorts above it and below every key greater than it.
 */
export function rowRange(collection: Collection | string, prefix = '', after?: string): { from: string; to: string } {
  const start = rowKeyOf(collection, prefix);
  const past = after !== undefined ? `${rowKeyOf(collection, after)}0` : '';
  return { from: past > start ? past : start, to: `${start}g` };
}

/** The audit log: one row per record (seq zero-padded so keys sort by seq) and a head row written by compare-and-set. */
export const AUDIT_HEAD_ROW = '~audit~head';
export function auditRowKey(seq: number): string {
  return `~audit!${String(seq).padStart(12, '0')}`;
}
export const AUDIT_RANGE = { from: '~audit!0', to: '~audit!:' };

/** Version and times of a record, kept as one JSON property so the value can be skipped when only ids are listed. */
export interface RowMeta {
  v: number;
  c: number;
  u: number;
}

/** A row as read: `tombstone` rows are records deleted inside a batch (the SDK's batch delete cannot carry an ETag). */
export interface ServerRow {
  rk: string;
  etag: string;
  id: string;
  meta: RowMeta;
  tombstone?: boolean;
  /** Present when values were asked for (JSON text). */
  valueText?: string;
  /** The blob that holds a value too big for the entity, if any. */
  blob?: string;
}

/** A write in a commit. `replace` and `delete` carry the ETag they were read at (If-Match); `create` fails on an existing row. */
export interface RowOp {
  kind: 'create' | 'replace' | 'delete';
  rk: string;
  etag?: string;
  id?: string;
  meta?: RowMeta;
  valueText?: string;
  /** The blob the row pointed at before this write: deleted once the write committed. */
  oldBlob?: string;
}

export type CommitResult = { ok: true; etags: Record<string, string> } | { ok: false; conflict: string };

/** Tables limits: 64 KiB per string property (UTF-16, so 32 Ki characters), 1 MiB per entity, 100 operations per batch. */
export const CHUNK_CHARS = 30_000;
export const MAX_INLINE_CHUNKS = 14;
export const MAX_BATCH_OPS = 100;
