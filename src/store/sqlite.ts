import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { systemClock, type Clock } from '../clock.js';
import { redactText, redactValue } from '../logging/redact.js';
import { canonicalJson } from '../domain/canonical-json.js';
import { AUDIT_GENESIS_HASH, auditHash, checkAuditChain, type AuditChainOptions, type AuditChainReport } from './audit-chain.js';
import { runMigrations } from './migrations.js';
import { createSqliteScanRows, type ScanRows } from './scan-rows.js';
import {
  StoreError,
  type AuditEntry,
  type AuditRecord,
  type Collection,
  type ListOptions,
  type Store,
  type StoredRecord,
  type AuditVerdict,
  type VerifiedAuditHead,
  auditVerdict,
  toJson,
  type StoreAddress,
} from './store.js';

export { canonicalJson, AUDIT_GENESIS_HASH, auditHash };

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for tests. The parent directory is created. */
  path: string;
  clock?: Clock;
  /** How long a writer waits for another process's lock before failing (default 10 s). */
  busyTimeoutMs?: number;
  /** HMAC key for new audit records (from Key Vault, never stored here); without it records are plain SHA-256. */
  auditKey?: Buffer;
  /** Fail with STORE_NOT_FOUND instead of creating a new database (verify, inspection). */
  mustExist?: boolean;
  /** Called after each audit append (the anchorer's nudge); must not throw or block. */
  onAuditAppended?: (seq: number) => void;
}

interface RecordRow {
  collection: string;
  id: string;
  version: number;
  value: string;
  created_at: number;
  updated_at: number;
}

interface AuditRow {
  seq: number;
  at: number;
  action: string;
  actor: string | null;
  subject: string | null;
  result: string;
  details: string | null;
  prev_hash: string;
  hash: string;
  keyed: number;
}


function toRecord<T>(row: RecordRow): StoredRecord<T> {
  return {
    collection: row.collection as Collection,
    id: row.id,
    version: row.version,
    value: JSON.parse(row.value) as T,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toAudit(row: AuditRow): AuditRecord {
  const record: AuditRecord = { seq: row.seq, at: row.at, action: row.action, result: row.result as AuditRecord['result'], prevHash: row.prev_hash, hash: row.hash };
  if (row.actor !== null) record.actor = JSON.parse(row.actor) as AuditRecord['actor'];
  if (row.subject !== null) record.subject = row.subject;
  if (row.details !== null) record.details = JSON.parse(row.details) as Record<string, unknown>;
  if (row.keyed) record.keyed = true;
  return record;
}

function openDatabase(path: string, busyTimeoutMs: number, mustExist: boolean): BetterSqlite3.Database {
  const inMemory = path === ':memory:';
  const shown = inMemory ? path : resolve(path);
  if (mustExist && !inMemory && !existsSync(shown)) {
    throw new StoreError(`no store at ${shown} (nothing was created) — check store.path in the config, or pass --config with the bot's config file`, 'STORE_NOT_FOUND');
  }
  if (!inMemory && !mustExist) {
    try {
      mkdirSync(dirname(shown), { recursive: true });
    } catch (err) {
      throw new StoreError(
        `cannot create the store directory ${dirname(shown)}: ${(err as Error).message} — set store.path to a writable location`,
        'STORE_OPEN_FAILED',
      );
    }
  }
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: mustExist });
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    if (!inMemory) db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // Reading the schema proves the file is a database (SQLITE_NOTADB surfaces here, not in the constructor).
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  } catch (err) {
    db?.close();
    const reason = (err as Error).message;
    const code = (err as { code?: string }).code;
    const fix = code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT'
      ? 'the file is not a Keywarden store; move it away or point store.path at a new file'
      : 'check that the path is a writable file (not a directory) or set store.path to another location';
    throw new StoreError(`cannot open the store at ${shown}: ${reason} — ${fix}`, 'STORE_OPEN_FAILED');
  }
}

/** The embedded store: better-sqlite3 in WAL mode, so several processes can share one file safely. */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  const clock = options.clock ?? systemClock;
  const path = options.path;
  const db = openDatabase(path, options.busyTimeoutMs ?? 10_000, options.mustExist ?? false);
  try {
    runMigrations(db, clock.now());
  } catch (err) {
    db.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot migrate the store at ${path === ':memory:' ? path : resolve(path)}: ${(err as Error).message}`, 'STORE_MIGRATION_FAILED');
  }
  return new SqliteStore(db, clock, path, options.auditKey, options.onAuditAppended);
}

class SqliteStore implements Store {
  private readonly statements: ReturnType<SqliteStore['prepare']>;

  constructor(
    private readonly db: BetterSqlite3.Database, private readonly clock: Clock, private readonly path: string,
    private readonly auditKey: Buffer | undefined, private readonly onAuditAppended: ((seq: number) => void) | undefined,
  ) {
    this.statements = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      get: db.prepare<[string, string], RecordRow>('SELECT * FROM records WHERE collection = ? AND id = ?'),
      insert: db.prepare<[string, string, string, number, number], RecordRow>(
        `INSERT INTO records (collection, id, version, value, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?)
         ON CONFLICT (collection, id) DO NOTHING RETURNING *`),
      cas: db.prepare<[string, number, string, string, number], RecordRow>(
        `UPDATE records SET version = version + 1, value = ?, updated_at = ?
         WHERE collection = ? AND id = ? AND version = ? RETURNING *`),
      put: db.prepare<[string, string, string, number, number], RecordRow>(
        `INSERT INTO records (collection, id, version, value, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?)
         ON CONFLICT (collection, id) DO UPDATE SET version = version + 1, value = excluded.value, updated_at = excluded.updated_at
         RETURNING *`),
      delete: db.prepare<[string, string]>('DELETE FROM records WHERE collection = ? AND id = ?'),
      deleteAt: db.prepare<[string, string, number]>('DELETE FROM records WHERE collection = ? AND id = ? AND version = ?'),
      lastAudit: db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      appendAudit: db.prepare(
        `INSERT INTO audit_log (seq, at, action, actor, subject, result, details, prev_hash, hash, keyed)
         VALUES (@seq, @at, @action, @actor, @subject, @result, @details, @prev_hash, @hash, @keyed)`),
      auditAfter: db.prepare<[number], AuditRow>('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq'),
    };
  }

  private rows: ScanRows | undefined;

  get scanRows(): ScanRows {
    this.live();
    this.rows ??= createSqliteScanRows(this.db);
    return this.rows;
  }

  get address(): StoreAddress | undefined {
    return this.path === ':memory:' ? undefined : { type: 'sqlite', path: resolve(this.path) };
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  close(): void {
    if (!this.db.open) return;
    this.db.close();
  }

  private live(): void {
    if (!this.db.open) throw new StoreError(`the store at ${this.path} is closed — open a new store; this one was shut down`, 'STORE_CLOSED');
  }

  get<T>(collection: Collection, id: string): StoredRecord<T> | undefined {
    this.live();
    const row = this.statements.get.get(collection, id);
    return row ? toRecord<T>(row) : undefined;
  }

  list<T>(collection: Collection, options: ListOptions = {}): StoredRecord<T>[] {
    this.live();
    const { sql, params } = listQuery('*', collection, options);
    return (this.db.prepare(sql).all(...params) as RecordRow[]).map((r) => toRecord<T>(r));
  }

  listIds(collection: Collection, options: ListOptions = {}): string[] {
    this.live();
    const { sql, params } = listQuery('id', collection, options);
    return this.db.prepare(sql).pluck().all(...params) as string[];
  }

  insert<T>(collection: Collection, id: string, value: T): StoredRecord<T> | undefined {
    this.live();
    const now = this.clock.now();
    const row = firstRow(this.statements.insert.all(collection, id, toJson(value, `${collection}/${id}`), now, now));
    return row ? toRecord<T>(row) : undefined;
  }

  compareAndSet<T>(collection: Collection, id: string, expectedVersion: number, value: T): StoredRecord<T> | undefined {
    this.live();
    const row = firstRow(this.statements.cas.all(toJson(value, `${collection}/${id}`), this.clock.now(), collection, id, expectedVersion));
    return row ? toRecord<T>(row) : undefined;
  }

  put<T>(collection: Collection, id: string, value: T): StoredRecord<T> {
    this.live();
    const now = this.clock.now();
    const row = firstRow(this.statements.put.all(collection, id, toJson(value, `${collection}/${id}`), now, now));
    return toRecord<T>(row!);
  }

  delete(collection: Collection, id: string, expectedVersion?: number): boolean {
    this.live();
    const result = expectedVersion === undefined
      ? this.statements.delete.run(collection, id)
      : this.statements.deleteAt.run(collection, id, expectedVersion);
    return result.changes === 1;
  }

  transaction<R>(fn: () => R): R {
    this.live();
    // IMMEDIATE takes the write lock up front, so read-then-write inside fn cannot lose to another process.
    const tx = this.db.transaction(fn);
    return this.db.inTransaction ? tx() : tx.immediate();
  }

  commitTogether<R>(fn: () => R): R {
    return this.transaction(fn);
  }

  appendAudit(entry: AuditEntry): AuditRecord {
    this.live();
    const append = this.db.transaction((): AuditRecord => {
      const last = this.statements.lastAudit.get();
      const prevHash = last?.hash ?? AUDIT_GENESIS_HASH;
      // Last line of defence: whatever a caller passed, no secret value lands in history.
      const record: Omit<AuditRecord, 'prevHash' | 'hash'> = {
        seq: (last?.seq ?? 0) + 1,
        at: this.clock.now(),
        action: redactText(entry.action),
        result: entry.result,
      };
      if (entry.actor) record.actor = JSON.parse(toJson(redactValue(entry.actor), 'audit actor')) as AuditRecord['actor'];
      if (entry.subject !== undefined) record.subject = redactText(entry.subject);
      if (entry.details !== undefined) record.details = JSON.parse(toJson(redactValue(entry.details), 'audit details')) as Record<string, unknown>;
      const hash = auditHash(prevHash, record, this.auditKey);
      this.statements.appendAudit.run({
        seq: record.seq,
        at: record.at,
        action: record.action,
        actor: record.actor ? JSON.stringify(record.actor) : null,
        subject: record.subject ?? null,
        result: record.result,
        details: record.details !== undefined ? JSON.stringify(record.details) : null,
        prev_hash: prevHash,
        hash,
        keyed: this.auditKey ? 1 : 0,
      });
      return { ...record, prevHash, hash, ...(this.auditKey ? { keyed: true } : {}) };
    });
    const appended = this.db.inTransaction ? append() : append.immediate();
    try {
      this.onAuditAppended?.(appended.seq);
    } catch { /* a nudge must never fail an append */ }
    return appended;
  }

  auditHead(): { seq: number; hash: string } | undefined {
    this.live();
    return this.statements.lastAudit.get();
  }

  listAudit(options: { subject?: string; limit?: number; afterSeq?: number } = {}): AuditRecord[] {
    this.live();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (options.subject !== undefined) {
      where.push('subject = ?');
      params.push(options.subject);
    }
    if (options.afterSeq !== undefined) {
      where.push('seq > ?');
      params.push(options.afterSeq);
    }
    let sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`;
    if (options.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(Math.max(0, Math.floor(options.limit)));
    }
    return (this.db.prepare(sql).all(...params) as AuditRow[]).map(toAudit);
  }

  verifyAudit(after?: VerifiedAuditHead): AuditVerdict {
    return auditVerdict(this.checkAudit({ ...(this.auditKey ? { key: this.auditKey } : {}), ...(after ? { after } : {}) }));
  }

  checkAudit(options: AuditChainOptions = {}): AuditChainReport {
    this.live();
    const rows = this.statements.auditAfter.iterate(options.after?.seq ?? 0);
    function* records() {
      for (const row of rows) {
        let record: AuditRecord;
        try {
          record = toAudit(row);
        } catch {
          // Unreadable JSON in an edited row: keep the hashes so the walk reports it as changed.
          record = { seq: row.seq, at: row.at, action: row.action, result: 'info', prevHash: row.prev_hash, hash: row.hash, details: { unreadable: true }, ...(row.keyed ? { keyed: true } : {}) };
        }
        yield record;
      }
    }
    return checkAuditChain(records(), options);
  }
}

/** The SELECT behind list / listIds: same filter and order, different columns. */
function listQuery(columns: '*' | 'id', collection: Collection, options: ListOptions): { sql: string; params: (string | number)[] } {
  const where = ['collection = ?'];
  const params: (string | number)[] = [collection];
  if (options.prefix) {
    // A key range on the primary key: ids sort by their UTF-8 bytes, which is code point order.
    where.push('id >= ?');
    params.push(options.prefix);
    const end = prefixEnd(options.prefix);
    if (end !== undefined) {
      where.push('id < ?');
      params.push(end);
    } else {
      where.push('substr(id, 1, ?) = ?');
      params.push(options.prefix.length, options.prefix);
    }
  }
  if (options.after !== undefined) {
    where.push('id > ?');
    params.push(options.after);
  }
  const order = options.newestFirst ? 'updated_at DESC, id' : 'id';
  let sql = `SELECT ${columns} FROM records WHERE ${where.join(' AND ')} ORDER BY ${order}`;
  if (options.limit !== undefined) {
    sql += ' LIMIT ?';
    params.push(Math.max(0, Math.floor(options.limit)));
  }
  return { sql, params };
}

/** The smallest string above every string that starts with `prefix` (undefined when there is none). */
export function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0)!);
  while (points.length > 0) {
    let last = points.pop()! + 1;
    // Lone surrogates are not text: the next code point after U+D7FF is U+E000.
    if (last >= 0xd800 && last <= 0xdfff) last = 0xe000;
    if (last <= 0x10ffff) return String.fromCodePoint(...points, last);
  }
  return undefined;
}

/**
 * RETURNING statements are read with .all(): better-sqlite3's .get() leaves them un-stepped to completion, which keeps
 * a read open and stops SQLite's WAL auto-checkpoint (the WAL then grows without bound; found by `npm run bench`).
 */
function firstRow<T>(rows: T[]): T | undefined {
  return rows[0];
}
