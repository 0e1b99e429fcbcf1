import type BetterSqlite3 from 'better-sqlite3';
import { SCAN_ROWS_BY_ID_PREFIX_SQL, SCAN_ROWS_BY_KIND_SQL, SCAN_ROWS_MIGRATION_SQL } from './scan-rows.js';

/** One schema change. Versions only go up; a released migration is never edited, only followed by a new one. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Records as a rowid table (migration 6). WITHOUT ROWID keeps a record inside its primary key's b-tree, whose cells
 * spill to overflow pages past about 1 KB, and random ids (alerts, outbox entries) put every insert on another page;
 * a rowid table appends the value and keeps only (collection, id) in the key. Alerts after a first scan: a fifth less CPU.
 */
const RECORDS_WITH_ROWID_SQL = `
  CREATE TABLE records_rowid (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
  );
  INSERT INTO records_rowid (collection, id, version, value, created_at, updated_at)
    SELECT collection, id, version, value, created_at, updated_at FROM records ORDER BY collection, id;
  DROP TABLE records;
  ALTER TABLE records_rowid RENAME TO records;
  CREATE INDEX records_by_updated ON records (collection, updated_at);
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'records and audit log',
    sql: `
      CREATE TABLE records (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (collection, id)
      ) WITHOUT ROWID;
      CREATE INDEX records_by_updated ON records (collection, updated_at);

      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT,
        subject TEXT,
        result TEXT NOT NULL,
        details TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
      );
      CREATE INDEX audit_by_subject ON audit_log (subject, seq);
      -- Append-only: the product never edits history (the hash chain catches anyone who does it anyway).
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    `,
  },
  {
    version: 2,
    name: 'keyed audit records',
    // 1 = hash is HMAC-SHA256 with the audit key (audit.keySecret); 0 = legacy plain SHA-256.
    sql: 'ALTER TABLE audit_log ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;',
  },
  {
    version: 3,
    name: 'scanned credentials as rows',
    sql: SCAN_ROWS_MIGRATION_SQL,
  },
  {
    version: 4,
    name: 'scanned credentials by kind in id order',
    sql: SCAN_ROWS_BY_KIND_SQL,
  },
  {
    version: 5,
    name: 'scanned credentials by kind as id ranges',
    sql: SCAN_ROWS_BY_ID_PREFIX_SQL,
  },
  {
    version: 6,
    name: 'records in a rowid table',
    sql: RECORDS_WITH_ROWID_SQL,
  },
];

/**
 * Brings the schema up to date inside one IMMEDIATE transaction, so two processes opening the same file
 * at once apply each migration exactly once (the second waits on the write lock, then sees it done).
 * Returns the versions it applied.
 */
export function runMigrations(db: BetterSqlite3.Database, now: number, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const applied: number[] = [];
  const migrate = db.transaction(() => {
    const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
    const newest = migrations.reduce((max, m) => Math.max(max, m.version), 0);
    if (current > newest) {
      throw new Error(`the database schema is version ${current} but this Keywarden knows only up to ${newest}; upgrade Keywarden or use another store.path`);
    }
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now);
      applied.push(m.version);
    }
  });
  migrate.immediate();
  return applied;
}
