import type { AuditChainOptions, AuditChainReport, VerifiedAuditHead } from './audit-chain.js';

import type { AzureConfig } from '../providers/azure-credential.js';
import type { ScanRows } from './scan-rows.js';

export type { VerifiedAuditHead } from './audit-chain.js';

/**
 * The Store port. State is a set of versioned records per collection, changed only through
 * insert (claim) and compare-and-set, plus an append-only audit log with a hash chain.
 * Calls are synchronous: the embedded SQLite store commits before returning, so "returned" means "durable".
 */

export type Collection =
  | 'conversations'
  /** Channels an approver bound as support channels (alerts/routing.ts). */
  | 'channelBindings'
  | 'alerts'
  | 'alert-claims'
  | 'deliveries'
  | 'approvals'
  | 'jobs'
  | 'snapshots'
  | 'settings'
  | 'outbox'
  /** Keys over the outbox in the order its readers need (alerts/outbox-index.ts): pending by queue and urgency, done by time. */
  | 'outbox-index'
  /** Teams ids (MRIs) of people seen clicking, by Entra object id: refresh.userIds for approvers (approvals/people.ts). */
  | 'people';

export interface StoredRecord<T> {
  collection: Collection;
  id: string;
  /** Starts at 1 and goes up by one on every successful write. */
  version: number;
  value: T;
  createdAt: number;
  updatedAt: number;
}

export interface ListOptions {
  /** Only ids starting with this prefix (a key range on both stores). */
  prefix?: string;
  /** Only ids after this one (exclusive, in id order): with `limit`, pages through a range without reading it all. */
  after?: string;
  limit?: number;
  /** Newest updated first when true; default: by id. */
  newestFirst?: boolean;
}

export interface AuditEntry {
  /** What happened, e.g. "approval.refused", "rotation.step.create". */
  action: string;
  actor?: { aadObjectId?: string; name?: string };
  /** Credential / alert / job the entry is about. */
  subject?: string;
  result: 'ok' | 'refused' | 'failed' | 'info';
  /** Metadata only: ids, versions, hashes, reasons. Never secret values (the store redacts as a last line). */
  details?: Record<string, unknown>;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  at: number;
  prevHash: string;
  hash: string;
  /** HMAC-SHA256 with the audit key (audit.keySecret); absent on legacy, unkeyed records. */
  keyed?: boolean;
}

export interface Store {
  get<T>(collection: Collection, id: string): StoredRecord<T> | undefined;
  list<T>(collection: Collection, options?: ListOptions): StoredRecord<T>[];
  /** The ids `list` would return, in the same order, without reading or parsing the values (cheap for big records). */
  listIds(collection: Collection, options?: ListOptions): string[];
  /** Creates the record if absent. Returns the record, or undefined if it already existed (someone else claimed it). */
  insert<T>(collection: Collection, id: string, value: T): StoredRecord<T> | undefined;
  /** Writes only if the stored version is still `expectedVersion`. Returns the new record, or undefined if it lost. */
  compareAndSet<T>(collection: Collection, id: string, expectedVersion: number, value: T): StoredRecord<T> | undefined;
  /** Unconditional write (last writer wins); for data with a single writer, like conversation references. */
  put<T>(collection: Collection, id: string, value: T): StoredRecord<T>;
  delete(collection: Collection, id: string, expectedVersion?: number): boolean;
  /** Runs fn in one transaction; all writes inside commit together or not at all. */
  transaction<R>(fn: () => R): R;
  /**
   * Runs several independent transactions so they commit as one (SQLite: one commit, not one per transaction). Only
   * for work that is whole either way: a failure rolls all of them back. Absent where transactions cannot join (Tables).
   */
  commitTogether?<R>(fn: () => R): R;
  appendAudit(entry: AuditEntry): AuditRecord;
  listAudit(options?: { subject?: string; limit?: number; afterSeq?: number }): AuditRecord[];
  /**
   * Recomputes the hash chain (keyed records with this store's audit key); returns the first broken seq.
   * `after`: the head of an earlier verdict: only the records after it are read (a chat command's cheap re-check).
   */
  verifyAudit(after?: VerifiedAuditHead): AuditVerdict;
  /** The full check: keyed records with `key`, and the chain against anchors kept outside the database. */
  checkAudit(options?: AuditChainOptions): AuditChainReport;
  /** The newest record's seq and hash (what an anchor copies). */
  auditHead(): { seq: number; hash: string } | undefined;
  /** The scanned estate as rows (scanner/pipeline.ts); a store without it keeps whole snapshots instead. */
  readonly scanRows?: ScanRows;
  /** Where another thread can open the same store (the scan thread); absent for a store only this one can reach. */
  readonly address?: StoreAddress;
  readonly isOpen: boolean;
  close(): void;
}

/** How to reach a store from another thread: an SQLite file, or an Azure Tables table (with its connection). */
export type StoreAddress =
  | { type: 'sqlite'; path: string }
  | { type: 'azure-tables'; connection: { connectionString?: string; tableEndpoint?: string; blobEndpoint?: string; table: string; container: string; azure?: AzureConfig; requestTimeoutMs?: number } };

/** Thrown when the store cannot be opened or migrated; message says the path and the fix. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** A value as both stores keep it: JSON text, with a clear error for what JSON cannot hold. */
/** What a chat command shows of the chain: intact up to `head`, or the first broken record. */
export type AuditVerdict = { ok: true; count: number; head?: VerifiedAuditHead } | { ok: false; brokenAt: number; count: number };

export function auditVerdict(report: AuditChainReport): AuditVerdict {
  return report.ok ? { ok: true, count: report.count, ...(report.head ? { head: report.head } : {}) } : { ok: false, brokenAt: report.brokenAt!, count: report.count };
}

export function toJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(`${what} cannot be stored: ${(err as Error).message} — store plain JSON data (no cycles, no BigInt)`, 'STORE_BAD_VALUE');
  }
  if (text === undefined) throw new StoreError(`${what} cannot be stored: value is undefined — store null or an object instead`, 'STORE_BAD_VALUE');
  return text;
}
