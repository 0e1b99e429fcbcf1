import { systemClock, type Clock } from '../../clock.js';
import { redactText, redactValue } from '../../logging/redact.js';
import { AUDIT_GENESIS_HASH, auditHash, checkAuditChain, type AuditChainOptions, type AuditChainReport } from '../audit-chain.js';
import {
  StoreError, auditVerdict, toJson, type AuditEntry, type AuditRecord, type AuditVerdict, type Collection, type ListOptions, type Store, type StoredRecord, type VerifiedAuditHead, type StoreAddress,
} from '../store.js';
import type { ScanRows } from '../scan-rows.js';
import type { BlockingStats, BlockingWorker } from './blocking-call.js';
import { TablesIo, connectWorker, present, slotKey } from './io.js';
import {
  AUDIT_HEAD_ROW, AUDIT_RANGE, MAX_BATCH_OPS, STATE_PARTITION, auditRowKey, partitionOf, rowKeyOf, rowRange,
  type CommitResult, type RowMeta, type RowOp, type ServerRow,
} from './rows.js';
import { createTablesScanRows } from './scan-rows.js';
import type { TablesConnection } from './worker.js';

/**
 * The Store port on Azure Table Storage, for two or more replicas. Every claim is a conditional write: insert is
 * createEntity (409 → undefined), compareAndSet and delete carry the ETag read at the expected version (412 →
 * undefined). A transaction runs fn against a private overlay, then commits all its writes as one entity group
 * transaction, each write conditional on what fn read; if another replica changed any of them, fn runs again on the
 * fresh state (optimistic, like SQLite's serialised writers but without a lock). The audit head is a row in the same
 * partition, so appendAudit is a compare-and-set on the head and two replicas never fork the chain.
 * Calls are synchronous (see blocking-call.ts): every call blocks the event loop for one or two storage round trips.
 */

export interface AzureTablesStoreOptions extends Omit<TablesConnection, 'requestTimeoutMs'> {
  clock?: Clock;
  auditKey?: Buffer;
  onAuditAppended?: (seq: number) => void;
  /** Longest a single storage call may block (default 30 s). */
  requestTimeoutMs?: number;
}

export type AzureTablesStore = Store & { readonly blocking: BlockingStats };

const TX_ATTEMPTS = 12;

export function openAzureTablesStore(options: AzureTablesStoreOptions): AzureTablesStore {
  const { clock, auditKey, onAuditAppended, requestTimeoutMs, ...connection } = options;
  if (!connection.connectionString && !(connection.tableEndpoint && connection.blobEndpoint)) {
    throw new StoreError('the Azure Tables store needs store.azure.connectionString or both store.azure.tableEndpoint and store.azure.blobEndpoint', 'STORE_OPEN_FAILED');
  }
  let opened: ReturnType<typeof connectWorker>;
  try {
    opened = connectWorker({ ...connection, requestTimeoutMs: requestTimeoutMs ?? 30_000 });
  } catch (err) {
    throw new StoreError(`cannot open the Azure Tables store (table "${connection.table}", container "${connection.container}"): ${(err as Error).message}`, 'STORE_OPEN_FAILED');
  }
  const address: StoreAddress = { type: 'azure-tables', connection: { ...connection, ...(requestTimeoutMs ? { requestTimeoutMs } : {}) } };
  return new TablesStore(opened.worker, opened.conn, connection.table, clock ?? systemClock, auditKey, onAuditAppended, address);
}

interface Slot { pk: string; rk: string; server: ServerRow | undefined; pending?: Pending | null }
interface Pending { id: string; meta: RowMeta; valueText: string }
interface Tx { slots: Map<string, Slot>; appended: AuditRecord[] }

/** A short synchronous pause between transaction attempts (the caller is synchronous anyway). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

class TablesStore extends TablesIo implements AzureTablesStore {
  private tx: Tx | undefined;
  private rows: ScanRows | undefined;

  constructor(
    worker: BlockingWorker, conn: number, private readonly table: string, private readonly clock: Clock,
    private readonly auditKey: Buffer | undefined, private readonly onAuditAppended: ((seq: number) => void) | undefined,
    readonly address: StoreAddress,
  ) {
    super(worker, conn);
  }

  /** The scanned estate as rows, in partitions of their own (scan-rows.ts in this folder). */
  get scanRows(): ScanRows {
    this.rows ??= createTablesScanRows((op, args) => {
      this.live();
      return this.call(op, args);
    }, this.table);
    return this.rows;
  }

  private toRecord<T>(collection: Collection, row: { id: string; meta: RowMeta; valueText?: string }): StoredRecord<T> {
    return { collection, id: row.id, version: row.meta.v, value: JSON.parse(row.valueText ?? 'null') as T, createdAt: row.meta.c, updatedAt: row.meta.u };
  }

  // ---- the transaction overlay ----

  /** What fn sees for a row inside a transaction: its own pending write, else the row as read (once) from storage. */
  private txRow(tx: Tx, pk: string, rk: string): Pending | undefined {
    const key = slotKey(pk, rk);
    let slot = tx.slots.get(key);
    if (!slot) {
      const cachedHead = rk === AUDIT_HEAD_ROW ? this.headCache : undefined;
      slot = { pk, rk, server: cachedHead ?? this.read(pk, rk) };
      tx.slots.set(key, slot);
    }
    if (slot.pending !== undefined) return slot.pending ?? undefined;
    const s = slot.server;
    return present(s) ? { id: s.id, meta: s.meta, valueText: s.valueText ?? 'null' } : undefined;
  }

  private txWrite(tx: Tx, pk: string, rk: string, pending: Pending | null): void {
    tx.slots.get(slotKey(pk, rk))!.pending = pending;
  }

  /** Runs fn inside a transaction (joining the current one), committing when it is the outermost. */
  private inTx<R>(fn: (tx: Tx) => R): R {
    if (this.tx) return fn(this.tx);
    return this.transaction(() => fn(this.tx!));
  }

  transaction<R>(fn: () => R): R {
    this.live();
    const outer = this.tx;
    if (outer) {
      // Nested: a savepoint — a throw undoes only the inner writes.
      const saved = new Map([...outer.slots].map(([k, s]) => [k, { ...s }]));
      const appended = outer.appended.length;
      try {
        return fn();
      } catch (err) {
        outer.slots.clear();
        for (const [k, s] of saved) outer.slots.set(k, s);
        outer.appended.length = appended;
        throw err;
      }
    }
    let lastConflict = '';
    for (let attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
      const tx: Tx = { slots: new Map(), appended: [] };
      this.tx = tx;
      let result: R;
      try {
        result = fn();
      } finally {
        this.tx = undefined;
      }
      const outcome = this.commitTx(tx);
      if (outcome.ok) {
        for (const record of tx.appended) {
          try {
            this.onAuditAppended?.(record.seq);
          } catch { /* a nudge must never fail an append */ }
        }
        return result;
      }
      lastConflict = outcome.conflict;
      pause(Math.min(200, 5 * 2 ** attempt) * Math.random());
    }
    throw new StoreError(`a store transaction lost to other writers ${TX_ATTEMPTS} times (${lastConflict}) — another replica is writing the same records in a loop`, 'STORE_TX_CONFLICT');
  }

  private commitTx(tx: Tx): CommitResult {
    const ops: RowOp[] = [];
    const partitions = new Set<string>();
    for (const slot of tx.slots.values()) {
      if (slot.pending === undefined) continue;
      const s = slot.server;
      const oldBlob = s?.blob ? { oldBlob: s.blob } : {};
      if (slot.pending === null) {
        if (!present(s)) continue;
        ops.push({ kind: 'delete', rk: slot.rk, etag: s.etag, id: s.id, meta: s.meta, ...oldBlob });
      } else if (!s) {
        ops.push({ kind: 'create', rk: slot.rk, ...slot.pending });
      } else {
        ops.push({ kind: 'replace', rk: slot.rk, etag: s.etag, ...slot.pending, ...oldBlob });
      }
      partitions.add(slot.pk);
    }
    if (ops.length === 0) return { ok: true, etags: {} };
    if (partitions.size > 1) {
      throw new StoreError(`a store transaction wrote to partitions ${[...partitions].join(' and ')}, which Azure Tables cannot commit together — keep snapshots out of transactions over other collections`, 'STORE_TX_SPANS_PARTITIONS');
    }
    if (ops.length > MAX_BATCH_OPS) {
      throw new StoreError(`a store transaction wrote ${ops.length} records; Azure Tables commits at most ${MAX_BATCH_OPS} together — split the work`, 'STORE_TX_TOO_BIG');
    }
    // Tombstones left by batch deletes are replaced, never re-created.
    return this.commit([...partitions][0]!, ops);
  }

  // ---- records ----

  get<T>(collection: Collection, id: string): StoredRecord<T> | undefined {
    this.live();
    const pk = partitionOf(collection);
    const rk = rowKeyOf(collection, id);
    if (this.tx) {
      const row = this.txRow(this.tx, pk, rk);
      return row ? this.toRecord<T>(collection, row) : undefined;
    }
    const row = this.read(pk, rk);
    return present(row) ? this.toRecord<T>(collection, row) : undefined;
  }

  list<T>(collection: Collection, options: ListOptions = {}): StoredRecord<T>[] {
    this.live();
    return this.listRows(collection, options, true).map((r) => this.toRecord<T>(collection, r));
  }

  listIds(collection: Collection, options: ListOptions = {}): string[] {
    this.live();
    return this.listRows(collection, options, false).map((r) => r.id);
  }

  private listRows(collection: Collection, options: ListOptions, values: boolean): Array<{ id: string; meta: RowMeta; valueText?: string }> {
    const pk = partitionOf(collection);
    const limit = options.limit !== undefined ? Math.max(0, Math.floor(options.limit)) : undefined;
    const overlay = this.tx && [...this.tx.slots.values()].some((s) => s.pk === pk && s.pending !== undefined);
    // Ordered by id, the service can stop at the limit; newest-first and a transaction's own writes need every row.
    const range = rowRange(collection, options.prefix, options.after);
    let rows: Array<{ id: string; rk: string; meta: RowMeta; valueText?: string }> = this.query(pk, range, values, options.newestFirst || overlay ? undefined : limit);
    if (this.tx && overlay) {
      const { from, to } = range;
      const byKey = new Map(rows.map((r) => [r.rk, r]));
      for (const slot of this.tx.slots.values()) {
        if (slot.pk !== pk || slot.pending === undefined || slot.rk < from || slot.rk >= to) continue;
        if (slot.pending === null) byKey.delete(slot.rk);
        else byKey.set(slot.rk, { rk: slot.rk, ...slot.pending });
      }
      rows = [...byKey.values()].sort((a, b) => (a.rk < b.rk ? -1 : a.rk > b.rk ? 1 : 0));
    }
    if (options.newestFirst) rows.sort((a, b) => b.meta.u - a.meta.u || (a.rk < b.rk ? -1 : a.rk > b.rk ? 1 : 0));
    return limit !== undefined ? rows.slice(0, limit) : rows;
  }

  insert<T>(collection: Collection, id: string, value: T): StoredRecord<T> | undefined {
    this.live();
    const valueText = toJson(value, `${collection}/${id}`);
    const pk = partitionOf(collection);
    const rk = rowKeyOf(collection, id);
    const now = this.clock.now();
    const meta: RowMeta = { v: 1, c: now, u: now };
    if (this.tx) {
      if (this.txRow(this.tx, pk, rk)) return undefined;
      this.txWrite(this.tx, pk, rk, { id, meta, valueText });
      return this.toRecord<T>(collection, { id, meta, valueText });
    }
    // The claim itself: createEntity, and 409 means someone else holds the id.
    const created = this.commit(pk, [{ kind: 'create', rk, id, meta, valueText }]);
    if (created.ok) return this.toRecord<T>(collection, { id, meta, valueText });
    const row = this.read(pk, rk);
    if (!row?.tombstone) return undefined;
    // A record deleted inside a batch leaves a tombstone until it is cleaned up: claim over it with its ETag.
    return this.commit(pk, [{ kind: 'replace', rk, etag: row.etag, id, meta, valueText }]).ok ? this.toRecord<T>(collection, { id, meta, valueText }) : undefined;
  }

  compareAndSet<T>(collection: Collection, id: string, expectedVersion: number, value: T): StoredRecord<T> | undefined {
    this.live();
    const valueText = toJson(value, `${collection}/${id}`);
    const pk = partitionOf(collection);
    const rk = rowKeyOf(collection, id);
    const now = this.clock.now();
    if (this.tx) {
      const cur = this.txRow(this.tx, pk, rk);
      if (!cur || cur.meta.v !== expectedVersion) return undefined;
      const meta = { v: expectedVersion + 1, c: cur.meta.c, u: now };
      this.txWrite(this.tx, pk, rk, { id, meta, valueText });
      return this.toRecord<T>(collection, { id, meta, valueText });
    }
    const known = this.known.get(slotKey(pk, rk));
    if (known?.version === expectedVersion) {
      // This replica saw the row at that version: one conditional write, no read.
      const meta = { v: expectedVersion + 1, c: known.createdAt, u: now };
      const done = this.commit(pk, [{ kind: 'replace', rk, etag: known.etag, id, meta, valueText, ...(known.blob ? { oldBlob: known.blob } : {}) }]);
      if (done.ok) return this.toRecord<T>(collection, { id, meta, valueText });
    }
    const row = this.read(pk, rk);
    if (!present(row) || row.meta.v !== expectedVersion) return undefined;
    const meta = { v: expectedVersion + 1, c: row.meta.c, u: now };
    const done = this.commit(pk, [{ kind: 'replace', rk, etag: row.etag, id, meta, valueText, ...(row.blob ? { oldBlob: row.blob } : {}) }]);
    return done.ok ? this.toRecord<T>(collection, { id, meta, valueText }) : undefined;
  }

  put<T>(collection: Collection, id: string, value: T): StoredRecord<T> {
    this.live();
    const valueText = toJson(value, `${collection}/${id}`);
    const pk = partitionOf(collection);
    const rk = rowKeyOf(collection, id);
    return this.inTx((tx) => {
      const now = this.clock.now();
      const cur = this.txRow(tx, pk, rk);
      const meta = cur ? { v: cur.meta.v + 1, c: cur.meta.c, u: now } : { v: 1, c: now, u: now };
      this.txWrite(tx, pk, rk, { id, meta, valueText });
      return this.toRecord<T>(collection, { id, meta, valueText });
    });
  }

  delete(collection: Collection, id: string, expectedVersion?: number): boolean {
    this.live();
    const pk = partitionOf(collection);
    const rk = rowKeyOf(collection, id);
    if (this.tx) {
      const cur = this.txRow(this.tx, pk, rk);
      if (!cur || (expectedVersion !== undefined && cur.meta.v !== expectedVersion)) return false;
      this.txWrite(this.tx, pk, rk, null);
      return true;
    }
    for (let attempt = 0; attempt < TX_ATTEMPTS; attempt++) {
      const row = this.read(pk, rk);
      if (!present(row) || (expectedVersion !== undefined && row.meta.v !== expectedVersion)) return false;
      if (this.commit(pk, [{ kind: 'delete', rk, etag: row.etag, ...(row.blob ? { oldBlob: row.blob } : {}) }]).ok) return true;
      if (expectedVersion !== undefined) return false;
    }
    return false;
  }

  // ---- audit ----

  appendAudit(entry: AuditEntry): AuditRecord {
    this.live();
    // Last line of defence: whatever a caller passed, no secret value lands in history.
    const body: Omit<AuditRecord, 'prevHash' | 'hash' | 'seq' | 'at'> = { action: redactText(entry.action), result: entry.result };
    if (entry.actor) body.actor = JSON.parse(toJson(redactValue(entry.actor), 'audit actor')) as AuditRecord['actor'];
    if (entry.subject !== undefined) body.subject = redactText(entry.subject);
    if (entry.details !== undefined) body.details = JSON.parse(toJson(redactValue(entry.details), 'audit details')) as Record<string, unknown>;
    return this.inTx((tx) => {
      const head = this.txRow(tx, STATE_PARTITION, AUDIT_HEAD_ROW);
      const last = head ? JSON.parse(head.valueText) as { seq: number; hash: string } : undefined;
      const prevHash = last?.hash ?? AUDIT_GENESIS_HASH;
      const record: Omit<AuditRecord, 'prevHash' | 'hash'> = { seq: (last?.seq ?? 0) + 1, at: this.clock.now(), ...body };
      const hash = auditHash(prevHash, record, this.auditKey);
      const full: AuditRecord = { ...record, prevHash, hash, ...(this.auditKey ? { keyed: true } : {}) };
      const rk = auditRowKey(record.seq);
      // A new row, not read first: createEntity fails (and the transaction retries) if the seq was taken.
      tx.slots.set(slotKey(STATE_PARTITION, rk), { pk: STATE_PARTITION, rk, server: undefined });
      this.txWrite(tx, STATE_PARTITION, rk, { id: String(record.seq), meta: { v: 1, c: record.at, u: record.at }, valueText: JSON.stringify(full) });
      // The head moves by compare-and-set (its ETag): a second replica appending at the same time retries on top.
      const headMeta = head ? { v: head.meta.v + 1, c: head.meta.c, u: record.at } : { v: 1, c: record.at, u: record.at };
      this.txWrite(tx, STATE_PARTITION, AUDIT_HEAD_ROW, { id: 'head', meta: headMeta, valueText: JSON.stringify({ seq: record.seq, hash }) });
      tx.appended.push(full);
      return full;
    });
  }

  auditHead(): { seq: number; hash: string } | undefined {
    this.live();
    const row = this.tx ? this.txRow(this.tx, STATE_PARTITION, AUDIT_HEAD_ROW) : this.read(STATE_PARTITION, AUDIT_HEAD_ROW);
    return row && !(row as ServerRow).tombstone ? JSON.parse(row.valueText ?? 'null') as { seq: number; hash: string } : undefined;
  }

  private auditRecords(afterSeq?: number): AuditRecord[] {
    const from = afterSeq !== undefined ? auditRowKey(afterSeq + 1) : AUDIT_RANGE.from;
    return this.query(STATE_PARTITION, { from, to: AUDIT_RANGE.to }, true).map((r) => JSON.parse(r.valueText ?? 'null') as AuditRecord);
  }

  listAudit(options: { subject?: string; limit?: number; afterSeq?: number } = {}): AuditRecord[] {
    this.live();
    let records = this.auditRecords(options.afterSeq);
    if (options.subject !== undefined) records = records.filter((r) => r.subject === options.subject);
    return options.limit !== undefined ? records.slice(0, Math.max(0, Math.floor(options.limit))) : records;
  }

  verifyAudit(after?: VerifiedAuditHead): AuditVerdict {
    return auditVerdict(this.checkAudit({ ...(this.auditKey ? { key: this.auditKey } : {}), ...(after ? { after } : {}) }));
  }

  checkAudit(options: AuditChainOptions = {}): AuditChainReport {
    this.live();
    return checkAuditChain(this.auditRecords(options.after?.seq), options);
  }
}
