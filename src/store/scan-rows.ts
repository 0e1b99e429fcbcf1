import type BetterSqlite3 from 'better-sqlite3';
import type { Credential, CredentialKind, Estate, Finding } from '../domain/credential.js';
import type { ScanQuery } from '../domain/scan.js';
import { openScanStaging } from './scan-staging.js';

/**
 * The scanned estate as rows: one per credential with its findings and a fingerprint for the diff, so a scan keeps
 * memory proportional to what changed instead of holding (and re-reading) one JSON snapshot of the whole estate.
 *
 * Part of the Store port (`store.scanRows`): SQLite here (migration 3); Azure Tables in src/store/tables/scan-keys.ts
 * (a partition per credential kind, a row and an order entry per credential, a staging table per scan).
 */

export interface CredentialRow {
  id: string;
  estate: Estate;
  scope: string;
  kind: CredentialKind;
  /** Ordinal of the last scan that saw the credential (a scope that failed keeps its rows from an earlier scan). */
  scan: number;
  /** Position in that scan (keeps the providers' order). */
  seq: number;
  expiresAt: number | null;
  /** What counts as "changed" for a person (see scanner/snapshot.ts). */
  fingerprint: string;
  /** Hash of the stored credential and findings: equal means the row needs no rewrite. */
  contentHash: string;
  /** Has findings or is held in a Key Vault secret: what alerting must look at. */
  relevant: boolean;
  credential: Credential;
  findings: Finding[];
  /** `credential` and `findings` as JSON when the scan already has that text (saves stringifying them again to store). */
  texts?: { credential: string; findings: string };
}

/** Just enough of a row to diff and to skip unchanged writes. */
export interface RowStamp {
  fingerprint: string;
  contentHash: string;
}

export interface RowQuery extends ScanQuery {
  /** Only rows seen by this scan (ordinal) or a later one. */
  seenSince?: number;
  relevantOnly?: boolean;
  /** Page order (default 'scan'); see RowOrder. */
  order?: RowOrder;
}

/**
 * 'scan': (scan, seq, id), the providers' order. A scan running meanwhile moves the rows it touches to its own
 * (scan, seq), so a reader paging this way can see a row twice or miss one.
 * 'id': by id, which never changes: a paged read sees each row at most once and misses none that stays.
 */
export type RowOrder = 'scan' | 'id';

export interface ScanRows {
  /** Keeps one source's raw credentials for the second pass (one transaction). */
  stage(source: number, credentials: readonly Credential[]): void;
  /** Staged credentials of one source after `afterSeq`, in staging order, with the JSON text each was read from. */
  staged(source: number, afterSeq: number, limit: number): Array<{ seq: number; credential: Credential; text?: string }>;
  clearStaging(): void;
  /** Drops one source's staged credentials once the scan has read them (optional; keeps each delete one source long). */
  unstage?(source: number): void;
  /** Stored stamps of these ids (absent ids are new). */
  stamps(ids: readonly string[]): Map<string, RowStamp>;
  /** One batch in one transaction: rows to (re)write, and unchanged rows that only move to this scan. */
  write(batch: { upsert: readonly CredentialRow[]; touch: ReadonlyArray<{ id: string; scan: number; seq: number }> }): void;
  get(id: string): CredentialRow | undefined;
  /** Rows matching `query` in its order ((scan, seq, id) or id); page with the last row's cursor. */
  page(query: RowQuery, after: RowCursor | undefined, limit: number): CredentialRow[];
  /** Ids, estates and scopes of rows this scan did not see (candidates for "removed"). */
  unseen(scan: number, afterId: string, limit: number): Array<{ id: string; estate: Estate; scope: string }>;
  delete(ids: readonly string[]): void;
  /** Counts of the rows a scan saw, by kind, and of their findings by code and severity. */
  /** The highest scan ordinal in the rows (0 when empty). */
  lastScan(): number;
}

export interface RowCursor {
  scan: number;
  seq: number;
  id: string;
}

export function cursorOf(row: CredentialRow): RowCursor {
  return { scan: row.scan, seq: row.seq, id: row.id };
}

export const SCAN_ROWS_MIGRATION_SQL = `
  CREATE TABLE scan_credentials (
    id TEXT PRIMARY KEY,
    estate TEXT NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    scan INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    expires_at INTEGER,
    fingerprint TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    relevant INTEGER NOT NULL,
    finding_count INTEGER NOT NULL,
    credential TEXT NOT NULL,
    findings TEXT NOT NULL
  );
  CREATE INDEX scan_credentials_by_scan ON scan_credentials (scan, seq, id);
  CREATE INDEX scan_credentials_by_scope ON scan_credentials (kind, scope);
  CREATE INDEX scan_credentials_by_expiry ON scan_credentials (expires_at);
  CREATE TABLE scan_staging (
    seq INTEGER PRIMARY KEY,
    source INTEGER NOT NULL,
    credential TEXT NOT NULL
  );
  CREATE INDEX scan_staging_by_source ON scan_staging (source, seq);
`;

/**
 * Indexes for the id order (migration 4): by kind alone (or each kind of an IN list), and by kind and scope, walked in id
 * order so no page sorts. (kind, scope, id) replaces (kind, scope), which it covers.
 */
export const SCAN_ROWS_BY_KIND_SQL = `
  DROP INDEX scan_credentials_by_scope;
  CREATE INDEX scan_credentials_by_scope ON scan_credentials (kind, scope, id);
  CREATE INDEX scan_credentials_by_kind ON scan_credentials (kind, id);
`;

/**
 * Ids are `<kind>:<scope>:<native id>` (domain/credential.ts), so a kind, or a kind in one scope, is a range of the
 * primary key: the two indexes over (kind, id) and (kind, scope, id) only cost every row write (migration 5).
 */
export const SCAN_ROWS_BY_ID_PREFIX_SQL = `
  DROP INDEX scan_credentials_by_kind;
  DROP INDEX scan_credentials_by_scope;
`;

/** The id range `<kind>:` or `<kind>:<scope>:` (':' + 1 is ';'). */
function idRange(kind: string, scope: string | undefined): [string, string] {
  const prefix = scope === undefined ? `${kind}:` : `${kind}:${scope}:`;
  return [prefix, `${prefix.slice(0, -1)};`];
}

interface RowRecord {
  id: string;
  estate: string;
  scope: string;
  kind: string;
  scan: number;
  seq: number;
  expires_at: number | null;
  fingerprint: string;
  content_hash: string;
  relevant: number;
  credential: string;
  findings: string;
}

function toRow(r: RowRecord): CredentialRow {
  return {
    id: r.id, estate: r.estate as Estate, scope: r.scope, kind: r.kind as CredentialKind, scan: r.scan, seq: r.seq,
    expiresAt: r.expires_at, fingerprint: r.fingerprint, contentHash: r.content_hash, relevant: r.relevant === 1,
    credential: JSON.parse(r.credential) as Credential, findings: JSON.parse(r.findings) as Finding[],
  };
}

const byId = (a: CredentialRow, b: CredentialRow): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const byScan = (a: CredentialRow, b: CredentialRow): number => a.scan - b.scan || a.seq - b.seq || byId(a, b);

/** SQLite has a limit on bound parameters; batches of ids stay under it. */
const IN_CHUNK = 500;

export function createSqliteScanRows(db: BetterSqlite3.Database): ScanRows {
  const s = {
    upsert: db.prepare(`INSERT INTO scan_credentials
      (id, estate, scope, kind, scan, seq, expires_at, fingerprint, content_hash, relevant, finding_count, credential, findings)
      VALUES (@id, @estate, @scope, @kind, @scan, @seq, @expiresAt, @fingerprint, @contentHash, @relevant, @findingCount, @credential, @findings)
      ON CONFLICT (id) DO UPDATE SET estate = excluded.estate, scope = excluded.scope, kind = excluded.kind, scan = excluded.scan,
        seq = excluded.seq, expires_at = excluded.expires_at, fingerprint = excluded.fingerprint, content_hash = excluded.content_hash,
        relevant = excluded.relevant, finding_count = excluded.finding_count, credential = excluded.credential, findings = excluded.findings`),
    touch: db.prepare<[number, number, string]>('UPDATE scan_credentials SET scan = ?, seq = ? WHERE id = ?'),
    get: db.prepare<[string], RowRecord>('SELECT * FROM scan_credentials WHERE id = ?'),
    unseen: db.prepare<[number, string, number], { id: string; estate: string; scope: string }>(
      'SELECT id, estate, scope FROM scan_credentials WHERE scan < ? AND id > ? ORDER BY id LIMIT ?'),
    delete: db.prepare<[string]>('DELETE FROM scan_credentials WHERE id = ?'),
    lastScan: db.prepare<[], number>('SELECT COALESCE(MAX(scan), 0) FROM scan_credentials').pluck(),
  };
  const staging = openScanStaging(db);
  let oldStagingCleared = false;
  const writeTx = db.transaction((batch: Parameters<ScanRows['write']>[0]) => {
    for (const r of batch.upsert) {
      s.upsert.run({
        id: r.id, estate: r.estate, scope: r.scope, kind: r.kind, scan: r.scan, seq: r.seq, expiresAt: r.expiresAt,
        fingerprint: r.fingerprint, contentHash: r.contentHash, relevant: r.relevant ? 1 : 0, findingCount: r.findings.length,
        credential: r.texts?.credential ?? JSON.stringify(r.credential), findings: r.texts?.findings ?? JSON.stringify(r.findings),
      });
    }
    for (const t of batch.touch) s.touch.run(t.scan, t.seq, t.id);
  });
  const deleteTx = db.transaction((ids: readonly string[]) => {
    for (const id of ids) s.delete.run(id);
  });
  /** One page of rows of one kind (or of any kind), in the query's order. */
  function pageOf(query: RowQuery, kind: string | undefined, after: RowCursor | undefined, limit: number): CredentialRow[] {
    const byIdOrder = query.order === 'id';
    const where: string[] = [];
    const params: Array<string | number> = [];
    // In id order a unary + keeps SQLite off the scan and expiry indexes (walking one, then sorting each page).
    const unindexed = byIdOrder ? '+' : '';
    if (query.seenSince !== undefined) {
      where.push(`${unindexed}scan >= ?`);
      params.push(query.seenSince);
    }
    if (query.relevantOnly) where.push('relevant = 1');
    if (query.withFindings) where.push('finding_count > 0');
    if (kind !== undefined) {
      where.push('kind = ?');
      params.push(kind);
      // In id order, or within one scope, the kind is a range of ids; in scan order a kind alone walks the (scan, seq,
      // id) index instead of sorting all the kind's rows.
      if (byIdOrder || query.scope !== undefined) {
        where.push('id >= ? AND id < ?');
        params.push(...idRange(kind, query.scope));
      }
    }
    if (query.scope !== undefined) {
      where.push('scope = ?');
      params.push(query.scope);
    }
    if (query.estate) {
      where.push('estate = ?');
      params.push(query.estate);
    }
    if (query.expiresBefore !== undefined) {
      where.push(`expires_at IS NOT NULL AND ${unindexed}expires_at < ?`);
      params.push(query.expiresBefore);
    }
    if (after && byIdOrder) {
      where.push('id > ?');
      params.push(after.id);
    } else if (after) {
      where.push('(scan, seq, id) > (?, ?, ?)');
      params.push(after.scan, after.seq, after.id);
    }
    const sql = `SELECT * FROM scan_credentials ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${byIdOrder ? 'id' : 'scan, seq, id'} LIMIT ?`;
    return (db.prepare(sql).all(...params, limit) as RowRecord[]).map(toRow);
  }
  const run = <A extends unknown[], R>(tx: BetterSqlite3.Transaction<(...a: A) => R>, ...args: A): R => (db.inTransaction ? tx(...args) : tx.immediate(...args));

  return {
    // Staged credentials live in a file of their own (scan-staging.ts); deleting it at the scan's end is the clean-up.
    stage: (source, credentials) => staging.stage(source, credentials),
    staged: (source, afterSeq, limit) => staging.staged(source, afterSeq, limit),
    clearStaging: () => {
      staging.clear();
      // Stores from before kept staging in their own table: what a crashed scan left there goes once.
      if (!oldStagingCleared) db.prepare('DELETE FROM scan_staging').run();
      oldStagingCleared = true;
    },
    stamps(ids) {
      const out = new Map<string, RowStamp>();
      for (let i = 0; i < ids.length; i += IN_CHUNK) {
        const chunk = ids.slice(i, i + IN_CHUNK);
        const rows = db.prepare(`SELECT id, fingerprint, content_hash FROM scan_credentials WHERE id IN (${chunk.map(() => '?').join(',')})`)
          .all(...chunk) as Array<{ id: string; fingerprint: string; content_hash: string }>;
        for (const r of rows) out.set(r.id, { fingerprint: r.fingerprint, contentHash: r.content_hash });
      }
      return out;
    },
    write: (batch) => run(writeTx, batch),
    get(id) {
      const r = s.get.get(id);
      return r ? toRow(r) : undefined;
    },
    page(query, after, limit) {
      const kinds = query.kinds ? query.kinds.filter((k) => !query.kind || k === query.kind) : query.kind && [query.kind];
      if (kinds?.length === 0) return [];
      if (!kinds || kinds.length < 2) return pageOf(query, kinds?.[0], after, limit);
      // One kind at a time, merged: an IN list would make SQLite read and sort every remaining row of those kinds.
      const byKind = [...new Set(kinds)].flatMap((kind) => pageOf(query, kind, after, limit));
      return byKind.sort(query.order === 'id' ? byId : byScan).slice(0, limit);
    },
    unseen: (scanId, afterId, limit) => s.unseen.all(scanId, afterId, limit) as Array<{ id: string; estate: Estate; scope: string }>,
    delete: (ids) => run(deleteTx, ids),
    lastScan: () => s.lastScan.get() as number,
  };
}
