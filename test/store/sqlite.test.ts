import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { MIGRATIONS, runMigrations } from '../../src/store/migrations.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { StoreError, type Store } from '../../src/store/store.js';

let dir: string;
const open: Store[] = [];
function openAt(path: string, clock = new AdjustableClock({ frozenAt: 1_800_000_000_000 })): Store {
  const store = openSqliteStore({ path, clock });
  open.push(store);
  return store;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kw-store-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

// Port-level behaviour (claims, compare-and-set, lists, transactions, audit chain) is in conformance.test.ts,
// which runs it against SQLite and Azure Tables; what stays here is SQLite's own: files, migrations, raw SQL.
describe('records', () => {
  it('listIds gives the ids list would, in the same order, without reading the values', () => {
    const clock = new AdjustableClock({ frozenAt: 1_800_000_000_000 });
    const path = join(dir, 'ids.db');
    const store = openAt(path, clock);
    for (const id of ['history:003', 'history:001', 'latest', 'history:002']) {
      store.put('snapshots', id, { id, credentials: [] });
      clock.advance(1_000);
    }
    store.put('jobs', 'history:009', {}); // another collection is not listed
    const ids = (options?: Parameters<Store['list']>[1]) => store.list('snapshots', options).map((r) => r.id);
    for (const options of [undefined, { prefix: 'history:' }, { prefix: 'history:', limit: 2 }, { newestFirst: true }, { prefix: 'history:', newestFirst: true, limit: 1 }]) {
      expect(store.listIds('snapshots', options)).toEqual(ids(options));
    }
    expect(store.listIds('snapshots', { prefix: 'history:' })).toEqual(['history:001', 'history:002', 'history:003']);
    expect(store.listIds('snapshots', { prefix: 'nothing:' })).toEqual([]);

    // A value that no longer parses breaks list, not listIds: pruning never depends on the stored values.
    const raw = new Database(path);
    raw.prepare("UPDATE records SET value = '{not json' WHERE collection = 'snapshots' AND id = 'history:002'").run();
    raw.close();
    expect(() => store.list('snapshots', { prefix: 'history:' })).toThrow();
    expect(store.listIds('snapshots', { prefix: 'history:' })).toEqual(['history:001', 'history:002', 'history:003']);
  });

});

describe('file, reopen and migrations', () => {
  it('creates the parent directory, runs migrations once, and keeps data across close/reopen', () => {
    const path = join(dir, 'nested', 'deeper', 'keywarden.db');
    const first = openAt(path);
    first.put('conversations', 'conv-1', { serviceUrl: 'https://smba' });
    first.appendAudit({ action: 'install', result: 'ok', subject: 'conv-1' });
    first.close();
    first.close(); // idempotent
    expect(first.isOpen).toBe(false);
    expect(() => first.get('conversations', 'conv-1')).toThrow(/closed/);

    const second = openAt(path);
    expect(second.isOpen).toBe(true);
    expect(second.get('conversations', 'conv-1')?.value).toEqual({ serviceUrl: 'https://smba' });
    expect(second.verifyAudit()).toMatchObject({ ok: true, count: 1 });
    second.close();
    openAt(path).close();

    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.prepare('SELECT version FROM schema_migrations').all()).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }]);
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('says which file and how to fix it when the path cannot be opened', () => {
    const notADb = join(dir, 'not-a-db.db');
    writeFileSync(notADb, 'this is a text file, not SQLite '.repeat(100));
    expect(() => openSqliteStore({ path: notADb })).toThrow(StoreError);
    try {
      openSqliteStore({ path: notADb });
    } catch (err) {
      expect((err as StoreError).code).toBe('STORE_OPEN_FAILED');
      expect((err as Error).message).toContain(notADb);
      expect((err as Error).message).toMatch(/store\.path/);
    }
    const aDirectory = join(dir, 'a-directory');
    mkdirSync(aDirectory);
    expect(() => openSqliteStore({ path: aDirectory })).toThrow(/cannot open the store at .*a-directory.*store\.path/);
    const underAFile = join(notADb, 'child.db');
    expect(() => openSqliteStore({ path: underAFile })).toThrow(/store directory/);
  });

  it('keeps every record, version and date when a store from before migration 6 moves records to a rowid table', () => {
    const path = join(dir, 'before-6.db');
    const raw = new Database(path);
    runMigrations(raw, 0, MIGRATIONS.filter((m) => m.version <= 5));
    const insert = raw.prepare('INSERT INTO records (collection, id, version, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
    insert.run('alerts', 'a-2', 3, JSON.stringify({ state: 'open', history: ['x'.repeat(3000)] }), 10, 30);
    insert.run('alerts', 'a-1', 1, JSON.stringify({ state: 'resolved' }), 20, 20);
    insert.run('jobs', 'j-1', 7, JSON.stringify({ kind: 'rotate' }), 5, 50);
    expect((raw.prepare("SELECT sql FROM sqlite_master WHERE name = 'records'").pluck().get() as string)).toMatch(/WITHOUT ROWID/);
    raw.close();

    const store = openAt(path);
    expect(store.list('alerts').map((r) => [r.id, r.version, r.createdAt, r.updatedAt])).toEqual([['a-1', 1, 20, 20], ['a-2', 3, 10, 30]]);
    expect(store.get<{ history: string[] }>('alerts', 'a-2')?.value.history[0]).toHaveLength(3000);
    expect(store.compareAndSet('jobs', 'j-1', 7, { kind: 'rotate', state: 'done' })?.version).toBe(8);
    expect(store.insert('alerts', 'a-1', {})).toBeUndefined();
    expect(store.list('jobs', { newestFirst: true }).map((r) => r.id)).toEqual(['j-1']);
    store.close();
    const after = new Database(path, { readonly: true });
    try {
      expect((after.prepare("SELECT sql FROM sqlite_master WHERE name = 'records'").pluck().get() as string)).not.toMatch(/WITHOUT ROWID/);
      expect(after.prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'records' AND type = 'index' AND sql IS NOT NULL").pluck().all()).toEqual(['records_by_updated']);
    } finally {
      after.close();
    }
  });

  it('refuses a database from a newer Keywarden', () => {
    const path = join(dir, 'future.db');
    openAt(path).close();
    const raw = new Database(path);
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run();
    raw.close();
    expect(() => openSqliteStore({ path })).toThrow(/schema is version 999/);
  });

  it('lets two connections to one file see each other and wait instead of failing', () => {
    const path = join(dir, 'shared.db');
    const a = openAt(path);
    const b = openAt(path);
    a.insert('jobs', 'j', { by: 'a' });
    expect(b.insert('jobs', 'j', { by: 'b' })).toBeUndefined();
    expect(b.compareAndSet('jobs', 'j', 1, { by: 'b' })?.version).toBe(2);
    expect(a.compareAndSet('jobs', 'j', 1, { by: 'a' })).toBeUndefined();
    expect(a.get('jobs', 'j')?.value).toEqual({ by: 'b' });
  });
});

describe('audit log', () => {
  it('detects an entry edited with raw SQL, and refuses plain edits', () => {
    const path = join(dir, 'audit.db');
    const store = openAt(path);
    for (let i = 1; i <= 5; i++) store.appendAudit({ action: 'approval.refused', result: 'refused', subject: `alert-${i}`, details: { reason: 'not an approver' } });
    store.close();

    const raw = new Database(path);
    try {
      expect(() => raw.prepare("UPDATE audit_log SET result = 'ok' WHERE seq = 3").run()).toThrow(/append-only/);
      expect(() => raw.prepare('DELETE FROM audit_log WHERE seq = 4').run()).toThrow(/append-only/);
      // A determined tamperer drops the guard; the hash chain still gives them away.
      raw.exec('DROP TRIGGER audit_log_no_update');
      raw.prepare(`UPDATE audit_log SET details = '{"reason":"approved by admin"}', result = 'ok' WHERE seq = 3`).run();
    } finally {
      raw.close();
    }
    const reopened = openAt(path);
    expect(reopened.verifyAudit()).toEqual({ ok: false, brokenAt: 3, count: 5 });
  });

  it('detects a deleted entry in the middle of the chain', () => {
    const path = join(dir, 'audit-gap.db');
    const store = openAt(path);
    for (let i = 1; i <= 4; i++) store.appendAudit({ action: 'x', result: 'info' });
    store.close();
    const raw = new Database(path);
    raw.exec('DROP TRIGGER audit_log_no_delete');
    raw.prepare('DELETE FROM audit_log WHERE seq = 2').run();
    raw.close();
    expect(openAt(path).verifyAudit()).toEqual({ ok: false, brokenAt: 3, count: 3 });
  });
});
