import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { CredentialKind } from '../../src/domain/credential.js';
import { cursorOf, type CredentialRow, type RowQuery, type ScanRows } from '../../src/store/scan-rows.js';
import { StoreError, type Store } from '../../src/store/store.js';
import { openAzureTablesStore, type AzureTablesStore } from '../../src/store/tables/store.js';
import { cred, days } from '../domain/fixtures.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';

/**
 * One contract, two stores: every case runs against the embedded SQLite store and the Azure Tables store (azurite,
 * in memory). A "target" is where a store's data lives (a file, a table); two stores opened on one target are two
 * connections (two replicas).
 */

interface Backend {
  name: string;
  newTarget(): string;
  open(target: string, clock: AdjustableClock): Store;
}

const T0 = 1_800_000_000_000;
let dir: string;
let azurite: Azurite;
let tables = 0;
const opened: Store[] = [];
/** Holds the process's store worker thread for the whole file, so each case does not pay for starting it. */
let keeper: Store | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kw-conformance-'));
  azurite = await startAzurite();
  keeper = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'kwkeeper', container: 'keywarden' });
}, 60_000);
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
afterAll(async () => {
  keeper?.close();
  await azurite?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const backends: Backend[] = [
  {
    name: 'SQLite',
    newTarget: () => join(dir, `s${++tables}.db`),
    open: (path, clock) => openSqliteStore({ path, clock }),
  },
  {
    name: 'Azure Tables',
    newTarget: () => `kw${++tables}t${process.pid}`,
    open: (table, clock) => openAzureTablesStore({ connectionString: azurite.connectionString, table, container: 'keywarden', clock }),
  },
];

describe.each(backends)('Store contract on $name', (backend) => {
  function fresh(clock = new AdjustableClock({ frozenAt: T0 })): { store: Store; target: string; clock: AdjustableClock; again: () => Store } {
    const target = backend.newTarget();
    const store = backend.open(target, clock);
    opened.push(store);
    return { store, target, clock, again: () => { const s = backend.open(target, clock); opened.push(s); return s; } };
  }

  it('inserts, reads, lists, puts and deletes versioned records', () => {
    const { store, clock } = fresh();
    const created = store.insert('conversations', 'conv-1', { serviceUrl: 'https://smba', tenantId: 't' })!;
    expect(created).toMatchObject({ collection: 'conversations', id: 'conv-1', version: 1, createdAt: T0, updatedAt: T0 });
    expect(store.get('conversations', 'conv-1')).toEqual(created);
    expect(store.get('conversations', 'missing')).toBeUndefined();
    expect(store.insert('alerts', 'conv-1', { x: 1 })?.version).toBe(1); // same id, other collection
    clock.advance(5_000);
    expect(store.put('conversations', 'conv-1', { serviceUrl: 'https://smba2', tenantId: 't' })).toMatchObject({ version: 2, createdAt: T0, updatedAt: T0 + 5_000 });
    expect(store.put('conversations', 'conv-2', { n: 2 }).version).toBe(1);
    expect(store.list('conversations').map((r) => r.id)).toEqual(['conv-1', 'conv-2']);
    expect(store.list('conversations', { prefix: 'conv-2' }).map((r) => r.id)).toEqual(['conv-2']);
    expect(store.list('conversations', { limit: 1 }).map((r) => r.id)).toEqual(['conv-1']);
    clock.advance(1_000);
    store.put('conversations', 'conv-2', { n: 3 });
    expect(store.list('conversations', { newestFirst: true }).map((r) => r.id)).toEqual(['conv-2', 'conv-1']);
    expect(store.list('conversations', { newestFirst: true, limit: 1 }).map((r) => r.value)).toEqual([{ n: 3 }]);
    expect(store.delete('conversations', 'conv-1', 1)).toBe(false); // stale version
    expect(store.delete('conversations', 'conv-1', 2)).toBe(true);
    expect(store.delete('conversations', 'conv-2')).toBe(true);
    expect(store.delete('conversations', 'conv-2')).toBe(false);
    expect(store.list('conversations')).toEqual([]);
    // A deleted id can be claimed again, from version 1.
    expect(store.insert('conversations', 'conv-1', { again: true })?.version).toBe(1);
  });

  it('treats a prefix literally and orders ids by their bytes', () => {
    const { store } = fresh();
    for (const id of ['a%b', 'axb', 'a_b', 'a/b#c?d', 'Zeta', 'é', 'a']) store.insert('jobs', id, { id });
    expect(store.listIds('jobs', { prefix: 'a%' })).toEqual(['a%b']);
    expect(store.listIds('jobs', { prefix: 'a_' })).toEqual(['a_b']);
    expect(store.listIds('jobs')).toEqual(['Zeta', 'a', 'a%b', 'a/b#c?d', 'a_b', 'axb', 'é']);
    expect(store.get('jobs', 'a/b#c?d')?.value).toEqual({ id: 'a/b#c?d' });
  });

  it('listIds gives the ids list would, in the same order', () => {
    const { store, clock } = fresh();
    for (const id of ['history:003', 'history:001', 'latest', 'history:002']) {
      store.put('snapshots', id, { id, credentials: [] });
      clock.advance(1_000);
    }
    store.put('jobs', 'history:009', {});
    const ids = (options?: Parameters<Store['list']>[1]) => store.list('snapshots', options).map((r) => r.id);
    for (const options of [undefined, { prefix: 'history:' }, { prefix: 'history:', limit: 2 }, { newestFirst: true }, { prefix: 'history:', newestFirst: true, limit: 1 }]) {
      expect(store.listIds('snapshots', options)).toEqual(ids(options));
    }
    expect(store.listIds('snapshots', { prefix: 'history:' })).toEqual(['history:001', 'history:002', 'history:003']);
    expect(store.listIds('snapshots', { prefix: 'nothing:' })).toEqual([]);
  });

  it('claims: one insert wins, across two connections too', () => {
    const { store, again } = fresh();
    const other = again();
    expect(store.insert('alert-claims', 'cred-1:7d', { by: 'replica-a' })).toBeDefined();
    expect(store.insert('alert-claims', 'cred-1:7d', { by: 'replica-a-again' })).toBeUndefined();
    expect(other.insert('alert-claims', 'cred-1:7d', { by: 'replica-b' })).toBeUndefined();
    expect(other.get('alert-claims', 'cred-1:7d')?.value).toEqual({ by: 'replica-a' });
    // Alternating claims of 20 ids between two connections: each id is won exactly once.
    const wins = Array.from({ length: 20 }, (_, i) => [store, other].map((s, n) => Boolean(s.insert('deliveries', `d${i}`, { n }))));
    for (const w of wins) expect(w.filter(Boolean)).toHaveLength(1);
  });

  it('compareAndSet writes only at the expected version, and the loser of two connections gets undefined', () => {
    const { store, again } = fresh();
    const other = again();
    store.insert('approvals', 'req-1', { state: 'pending' });
    expect(other.get('approvals', 'req-1')?.version).toBe(1);
    expect(store.compareAndSet('approvals', 'req-1', 1, { state: 'approved' })?.version).toBe(2);
    expect(store.compareAndSet('approvals', 'req-1', 1, { state: 'approved-again' })).toBeUndefined();
    expect(other.compareAndSet('approvals', 'req-1', 1, { state: 'denied' })).toBeUndefined(); // read v1, lost
    expect(other.compareAndSet('approvals', 'req-1', 2, { state: 'done' })?.version).toBe(3);
    expect(store.compareAndSet('approvals', 'req-1', 2, { state: 'stale' })).toBeUndefined();
    expect(store.compareAndSet('approvals', 'missing', 1, { state: 'x' })).toBeUndefined();
    expect(store.get('approvals', 'req-1')?.value).toEqual({ state: 'done' });
  });

  it('a transaction commits all its writes or none, sees its own writes, and nests', () => {
    const { store, again } = fresh();
    expect(() => store.transaction(() => {
      store.insert('jobs', 'j1', { step: 'create' });
      store.appendAudit({ action: 'rotation.step.create', result: 'ok' });
      throw new Error('crash between steps');
    })).toThrow('crash between steps');
    expect(store.get('jobs', 'j1')).toBeUndefined();
    expect(store.listAudit()).toEqual([]);
    const version = store.transaction(() => {
      store.insert('approvals', 'a1', { state: 'approved' });
      store.insert('jobs', 'j1', { step: 'create' });
      expect(store.get('jobs', 'j1')?.value).toEqual({ step: 'create' });
      expect(store.listIds('jobs')).toEqual(['j1']);
      expect(() => store.transaction(() => {
        store.put('jobs', 'j2', {});
        throw new Error('inner');
      })).toThrow('inner');
      store.appendAudit({ action: 'approval.granted', result: 'ok', subject: 'a1' });
      return store.compareAndSet('jobs', 'j1', 1, { step: 'set' })?.version;
    });
    expect(version).toBe(2);
    const other = again();
    expect(other.get('jobs', 'j1')?.value).toEqual({ step: 'set' });
    expect(other.get('jobs', 'j2')).toBeUndefined();
    expect(other.get('approvals', 'a1')?.version).toBe(1);
    expect(other.listAudit().map((a) => a.action)).toEqual(['approval.granted']);
    // Deleting and re-claiming inside transactions (the pipeline grant's clean-up).
    store.transaction(() => {
      expect(store.delete('approvals', 'a1', 1)).toBe(true);
      expect(store.delete('jobs', 'j1', 1)).toBe(false);
      store.delete('jobs', 'j1');
    });
    expect(other.get('approvals', 'a1')).toBeUndefined();
    expect(other.insert('approvals', 'a1', { again: true })?.version).toBe(1);
    expect(other.listIds('jobs')).toEqual([]);
  });

  it('keeps big values (a scan snapshot) whole', () => {
    const { store, again } = fresh();
    const row = (i: number) => ({ id: `databricks-pat:ws-${i % 7}:${1_000_000 + i}`, name: `token ${i} ${'é'.repeat(i % 5)}`, expiresAt: T0 + i });
    const medium = { credentials: Array.from({ length: 2_000 }, (_, i) => row(i)) }; // ~170 KB: split over properties
    const big = { credentials: Array.from({ length: 12_000 }, (_, i) => row(i)) }; // ~1 MB: beyond one entity
    store.put('snapshots', 'latest', medium);
    expect(again().get('snapshots', 'latest')?.value).toEqual(medium);
    const second = store.put('snapshots', 'latest', big);
    expect(second.version).toBe(2);
    expect(again().get('snapshots', 'latest')?.value).toEqual(big);
    expect(store.list('snapshots').map((r) => (r.value as typeof big).credentials.length)).toEqual([12_000]);
    expect(store.compareAndSet('snapshots', 'latest', 2, { small: true })?.version).toBe(3);
    expect(store.get('snapshots', 'latest')?.value).toEqual({ small: true });
    expect(store.delete('snapshots', 'latest')).toBe(true);
  });

  it('chains audit records, one chain for two connections, and redacts secrets', () => {
    const { store, clock, again } = fresh();
    const other = again();
    const first = store.appendAudit({ action: 'scan.finished', result: 'info', details: { findings: 12 } });
    clock.advance(1000);
    const second = other.appendAudit({ action: 'approval.granted', result: 'ok', subject: 'ws-prod/pat/123', actor: { aadObjectId: 'a1', name: 'Alex' } });
    expect(first).toMatchObject({ seq: 1, prevHash: '0'.repeat(64) });
    expect(second).toMatchObject({ seq: 2, prevHash: first.hash, at: T0 + 1000 });
    // Alternating appends from both: never a fork, never a gap.
    for (let i = 0; i < 6; i++) (i % 2 ? store : other).appendAudit({ action: 'x', result: 'info', subject: `s${i}` });
    expect(store.auditHead()).toEqual({ seq: 8, hash: other.listAudit().at(-1)!.hash });
    expect(store.listAudit({ subject: 'ws-prod/pat/123' })).toEqual([second]);
    expect(store.listAudit({ afterSeq: 7 }).map((a) => a.seq)).toEqual([8]);
    expect(store.listAudit({ limit: 1 })).toEqual([first]);
    expect(other.verifyAudit()).toEqual({ ok: true, count: 8 });
    const pat = 'dapi0123456789abcdef0123456789abcdef';
    const record = store.appendAudit({ action: 'rotation.step.create', result: 'ok', details: { token_value: pat, note: `created ${pat}` } });
    expect(JSON.stringify(store.listAudit())).not.toContain(pat);
    expect(record.details).toEqual({ token_value: '[REDACTED]', note: 'created [REDACTED]' });
    expect(store.checkAudit().ok).toBe(true);
  });

  it('refuses values that are not JSON, and says it is closed once closed', () => {
    const { store } = fresh();
    expect(() => store.put('jobs', 'u', undefined)).toThrow(StoreError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => store.put('jobs', 'c', cyclic)).toThrow(/cannot be stored/);
    expect(store.isOpen).toBe(true);
    store.close();
    store.close();
    expect(store.isOpen).toBe(false);
    expect(() => store.get('jobs', 'x')).toThrow(/closed/);
  });
});

/** A row as the scanner writes it; `n` names the credential. */
function row(kind: CredentialKind, scope: string, n: string, scan: number, seq: number, over: Partial<CredentialRow> = {}): CredentialRow {
  const c = cred(kind, scope, n);
  return {
    id: c.id, estate: c.where.estate, scope, kind, scan, seq, expiresAt: c.expiresAt, fingerprint: `fp-${n}`, contentHash: `h-${n}`,
    relevant: false, credential: c, findings: [], ...over,
  };
}

describe.each(backends)('Scan rows contract on $name', (backend) => {
  function rowsOf(): { rows: ScanRows; again: () => ScanRows } {
    const target = backend.newTarget();
    const clock = new AdjustableClock({ frozenAt: T0 });
    const open = () => {
      const s = backend.open(target, clock);
      opened.push(s);
      return s.scanRows!;
    };
    return { rows: open(), again: open };
  }
  /** Every page of a query, walked with the cursor as the scanner's views walk it. */
  const walk = (rows: ScanRows, query: RowQuery, size: number): string[] => {
    const ids: string[] = [];
    for (let page = rows.page(query, undefined, size); page.length; page = page.length < size ? [] : rows.page(query, cursorOf(page.at(-1)!), size)) ids.push(...page.map((r) => r.id));
    return ids;
  };

  it('stages each source in staging order, pages it after a seq, and clears it', () => {
    const { rows } = rowsOf();
    const a = [cred('databricks-pat', 'ws', 't1'), cred('databricks-pat', 'ws', 't2')];
    rows.stage(1, a);
    rows.stage(0, [cred('keyvault-secret', 'kv', 's1')]);
    rows.stage(1, [cred('databricks-pat', 'ws', 't3')]);
    const first = rows.staged(1, 0, 2);
    expect(first.map((s) => s.credential)).toEqual(a);
    expect(first[0]!.seq).toBeLessThan(first[1]!.seq);
    expect(rows.staged(1, first[1]!.seq, 10).map((s) => s.credential.id)).toEqual([cred('databricks-pat', 'ws', 't3').id]);
    expect(rows.staged(0, 0, 10).map((s) => s.credential.name)).toEqual(['s1']);
    // A source read (or failed part-way) can be dropped alone, where the store offers it.
    const unstage = (rows as { unstage?: (source: number) => void }).unstage;
    if (unstage) {
      unstage(0);
      expect(rows.staged(0, 0, 10)).toEqual([]);
      expect(rows.staged(1, 0, 10)).toHaveLength(3);
    }
    rows.clearStaging();
    expect(rows.staged(1, 0, 10)).toEqual([]);
    rows.stage(0, [cred('keyvault-secret', 'kv', 's2')]);
    expect(rows.staged(0, 0, 10).map((s) => s.credential.name)).toEqual(['s2']);
    rows.clearStaging();
  });

  it('writes rows and reads them back by id, by stamps and in (scan, seq, id) pages with every filter', () => {
    const { rows, again } = rowsOf();
    expect(rows.lastScan()).toBe(0);
    const big = cred('keyvault-secret', 'kv', 'big', { attributes: { note: 'x'.repeat(100_000) } });
    const written = [
      row('databricks-pat', 'ws-a', 't1', 1, 1, { relevant: true, findings: [{ code: 'expiring', severity: 'warning', credentialId: 'x', scope: 'ws-a', message: 'm' } as never] }),
      row('databricks-pat', 'ws-b', 't2', 1, 2, { expiresAt: null }),
      row('keyvault-secret', 'kv', 's1', 1, 3, { expiresAt: days(5) }),
      row('entra-password', 'app-1', 'p1', 1, 4, { relevant: true }),
      { ...row('keyvault-secret', 'kv', 'big', 1, 5), id: big.id, credential: big },
    ];
    rows.write({ upsert: written, touch: [] });
    expect(rows.lastScan()).toBe(1);
    const other = again();
    expect(other.get(written[0]!.id)).toEqual(written[0]);
    expect(other.get(big.id)?.credential).toEqual(big);
    expect(other.get('databricks-pat:ws-a:nope')).toBeUndefined();
    expect(other.stamps([written[2]!.id, 'keyvault-secret:kv:new'])).toEqual(new Map([[written[2]!.id, { fingerprint: 'fp-s1', contentHash: 'h-s1' }]]));
    const ids = written.map((r) => r.id);
    expect(walk(other, {}, 2)).toEqual(ids);
    expect(other.page({}, cursorOf(written[1]!), 2).map((r) => r.id)).toEqual(ids.slice(2, 4));
    expect(walk(other, { relevantOnly: true }, 1)).toEqual([ids[0], ids[3]]);
    expect(walk(other, { withFindings: true }, 10)).toEqual([ids[0]]);
    expect(walk(other, { kind: 'keyvault-secret' }, 10)).toEqual([ids[2], ids[4]]);
    expect(walk(other, { kinds: ['entra-password', 'databricks-pat'] }, 10)).toEqual([ids[0], ids[1], ids[3]]);
    expect(walk(other, { kinds: [] }, 10)).toEqual([]);
    expect(walk(other, { kind: 'databricks-pat', scope: 'ws-b' }, 10)).toEqual([ids[1]]);
    expect(walk(other, { estate: 'entra' }, 10)).toEqual([ids[3]]);
    expect(walk(other, { expiresBefore: days(10) }, 10)).toEqual([ids[2]]);
    expect(walk(other, { seenSince: 2 }, 10)).toEqual([]);
  });

  it('moves unchanged rows to the next scan, rewrites changed ones, and deletes what the scan did not see', () => {
    const { rows } = rowsOf();
    const [a, b, c] = [row('databricks-pat', 'ws', 'a', 1, 1), row('databricks-pat', 'ws', 'b', 1, 2), row('keyvault-secret', 'kv', 'c', 1, 3)];
    rows.write({ upsert: [a, b, c], touch: [] });
    // Scan 2 sees c first, b changed, and a not at all.
    expect(rows.stamps([c.id, b.id]).size).toBe(2);
    const b2 = { ...b, scan: 2, seq: 2, fingerprint: 'fp-b2', contentHash: 'h-b2', relevant: true };
    rows.write({ upsert: [b2], touch: [{ id: c.id, scan: 2, seq: 1 }, { id: 'keyvault-secret:kv:gone', scan: 2, seq: 3 }] });
    expect(rows.get(c.id)).toEqual({ ...c, scan: 2, seq: 1 });
    expect(rows.get('keyvault-secret:kv:gone')).toBeUndefined();
    expect(walk(rows, { seenSince: 2 }, 1)).toEqual([c.id, b.id]);
    expect(walk(rows, {}, 10)).toEqual([a.id, c.id, b.id]);
    expect(walk(rows, { relevantOnly: true }, 10)).toEqual([b.id]);
    expect(rows.lastScan()).toBe(2);
    expect(rows.unseen(2, '', 10)).toEqual([{ id: a.id, estate: 'databricks', scope: 'ws' }]);
    expect(rows.unseen(2, a.id, 10)).toEqual([]);
    rows.delete([a.id]);
    expect(rows.get(a.id)).toBeUndefined();
    expect(walk(rows, {}, 10)).toEqual([c.id, b.id]);
    expect(rows.unseen(3, '', 1).map((r) => r.id)).toEqual([b.id]);
    rows.delete([b.id, c.id]);
    expect(walk(rows, {}, 10)).toEqual([]);
    expect(rows.lastScan()).toBe(0);
  });
});

describe('Azure Tables: what only an optimistic store shows', () => {
  const open = (table: string) => {
    const s = openAzureTablesStore({ connectionString: azurite.connectionString, table, container: 'keywarden', clock: new AdjustableClock({ frozenAt: T0 }) });
    opened.push(s);
    return s;
  };

  it('a transaction that another replica overtakes runs again on the fresh state', () => {
    const a = open('kwoptimistic');
    const b = open('kwoptimistic');
    a.insert('approvals', 'req', { votes: 0 });
    let runs = 0;
    const result = a.transaction(() => {
      runs += 1;
      const cur = a.get<{ votes: number }>('approvals', 'req')!;
      if (runs === 1) b.compareAndSet('approvals', 'req', 1, { votes: 10 }); // the other replica writes meanwhile
      return a.compareAndSet('approvals', 'req', cur.version, { votes: cur.value.votes + 1 })?.value;
    });
    expect(runs).toBe(2);
    expect(result).toEqual({ votes: 11 });
    expect(b.get('approvals', 'req')?.value).toEqual({ votes: 11 });
  });

  it('refuses a transaction over two partitions with a clear error', () => {
    const a = open('kwpartitions');
    expect(() => a.transaction(() => {
      a.put('snapshots', 'latest', {});
      a.put('jobs', 'j', {});
    })).toThrow(/partitions .* cannot commit together/);
    expect(a.get('jobs', 'j')).toBeUndefined();
  });

  it('costs one blocking call per scan page, however many rows and batches it holds', () => {
    const a = open('kwscanpage');
    const rows = a.scanRows!;
    const page = Array.from({ length: 120 }, (_, i) => row(i % 2 ? 'databricks-pat' : 'keyvault-secret', 'ws', `n${i}`, 1, i + 1));
    const calls = (fn: () => unknown): number => {
      const before = a.blocking.calls;
      fn();
      return a.blocking.calls - before;
    };
    expect(calls(() => rows.stage(0, page.map((r) => r.credential)))).toBe(1);
    expect(calls(() => rows.staged(0, 0, 500))).toBe(1);
    expect(calls(() => rows.stamps(page.map((r) => r.id)))).toBe(1);
    expect(calls(() => rows.write({ upsert: page, touch: [] }))).toBe(1); // 240 operations: three entity group transactions
    expect(calls(() => rows.stamps(page.map((r) => r.id)))).toBe(1);
    expect(calls(() => rows.write({ upsert: [], touch: page.map((r) => ({ id: r.id, scan: 2, seq: r.seq })) }))).toBe(1);
    expect(calls(() => expect(rows.page({ seenSince: 2 }, undefined, 500)).toHaveLength(120))).toBe(1);
    expect(calls(() => rows.clearStaging())).toBe(1);
  });

  it('measures how long each call blocks the event loop', () => {
    const a = open('kwtiming') as AzureTablesStore;
    const time = (fn: (i: number) => unknown, n = 20): number => {
      const started = performance.now();
      for (let i = 0; i < n; i++) fn(i);
      return (performance.now() - started) / n;
    };
    const figures = {
      insert: time((i) => a.insert('jobs', `j${i}`, { i })),
      get: time((i) => a.get('jobs', `j${i}`)),
      compareAndSet: time((i) => a.compareAndSet('jobs', `j${i}`, 1, { i, n: 2 })),
      put: time((i) => a.put('jobs', `j${i}`, { i, n: 3 })),
      appendAudit: time((i) => a.appendAudit({ action: 'x', result: 'info', subject: `j${i}` })),
      list20: time(() => a.list('jobs'), 10),
    };
    console.log(`Azure Tables store on azurite, ms blocked per call: ${JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Math.round(v * 100) / 100])))}`);
    for (const ms of Object.values(figures)) expect(ms).toBeLessThan(100);
  });
});
