import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { Credential } from '../domain/credential.js';
import { StoreError } from './store.js';

/**
 * A scan's staged credentials (SQLite), in a file of their own beside the store: `<store>-scan-staging`. They live
 * for one scan and are rebuilt by the next, so that file needs neither the store's WAL nor its write lock nor
 * fsyncs: staging no longer doubles the store's write traffic or blocks the bot's writes, and a finished scan drops it
 * by deleting the file. A crash leaves at most a stale file, which the next scan deletes before it stages anything.
 */

const SCHEMA = `
  CREATE TABLE scan_staging (seq INTEGER PRIMARY KEY, source INTEGER NOT NULL, credential TEXT NOT NULL);
  CREATE INDEX scan_staging_by_source ON scan_staging (source, seq);
`;

export interface ScanStaging {
  stage(source: number, credentials: readonly Credential[]): void;
  staged(source: number, afterSeq: number, limit: number): Array<{ seq: number; credential: Credential; text: string }>;
  /** Closes and deletes the file (the next stage starts a new one). */
  clear(): void;
}

/** Staging for the store in `store` (a file path, or an in-memory store whose staging is in memory too). */
export function openScanStaging(store: BetterSqlite3.Database): ScanStaging {
  const path = store.memory ? ':memory:' : `${store.name}-scan-staging`;
  let open: ReturnType<typeof createFile> | undefined;

  const remove = (): void => {
    if (path === ':memory:') return;
    for (const suffix of ['', '-journal']) rmSync(`${path}${suffix}`, { force: true });
  };
  /** Opening or filling the file: the error names it and the fix (a full disk, a read-only directory, a directory in the way). */
  function named<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new StoreError(`cannot ${what} the scan's staging file ${path}: ${(err as Error).message} — a scan stages the estate beside the store (about 1 KB per credential): keep the store's directory writable, with room, and nothing else at that path`, 'STORE_STAGING_FAILED');
    }
  }
  function createFile() {
    remove();
    const db = new Database(path);
    // Disposable data: a power cut can only cost a scan that is rerun anyway; the journal stays for rollbacks.
    db.pragma('journal_mode = MEMORY');
    db.pragma('synchronous = OFF');
    db.exec(SCHEMA);
    const insert = db.prepare<[number, string]>('INSERT INTO scan_staging (source, credential) VALUES (?, ?)');
    return {
      db,
      stage: db.transaction((source: number, credentials: readonly Credential[]) => {
        for (const c of credentials) insert.run(source, JSON.stringify(c));
      }),
      read: db.prepare<[number, number, number], { seq: number; credential: string }>(
        'SELECT seq, credential FROM scan_staging WHERE source = ? AND seq > ? ORDER BY seq LIMIT ?'),
    };
  }

  return {
    stage(source, credentials) {
      const file = (open ??= named('create', createFile));
      named('write to', () => file.stage(source, credentials));
    },
    staged(source, afterSeq, limit) {
      if (!open) return [];
      return open.read.all(source, afterSeq, limit).map((r) => ({ seq: r.seq, credential: JSON.parse(r.credential) as Credential, text: r.credential }));
    },
    clear() {
      if (open) {
        open.db.close();
        open = undefined;
      }
      try {
        remove();
      } catch { /* the next stage says what is wrong there, with the fix */ }
    },
  };
}
