import { describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { StoreError, type Store } from '../../src/store/store.js';
import { openAzureTablesStore, type AzureTablesStore } from '../../src/store/tables/store.js';
import { storeBackends, T0 } from './backends.js';

/**
 * One contract, two stores: every case runs against the embedded SQLite store and the Azure Tables store (azurite,
 * in memory); see backends.ts. The scan rows' contract is scan-rows-conformance.test.ts.
 */

const { backends, opened, azurite } = storeBackends();

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

  it('pages through a prefix with after + limit, in id order, inside a transaction too', () => {
    const { store } = fresh();
    const ids = ['q|a|001', 'q|a|002', 'q|a|010', 'q|a\u{10FFFF}|1', 'q|ab|1', 'q|b|1', 'q|\uD7FF|1', 'q|\uE000|1', 'r|a|1'];
    for (const id of ids) store.insert('outbox-index', id, { id });
    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const page = store.listIds('outbox-index', { prefix: 'q|a|', limit: 2, ...(after !== undefined ? { after } : {}) });
      if (page.length === 0) break;
      pages.push(page);
      after = page.at(-1);
    }
    expect(pages).toEqual([['q|a|001', 'q|a|002'], ['q|a|010']]);
    expect(store.list('outbox-index', { prefix: 'q|a', after: 'q|a|010' }).map((r) => r.id)).toEqual(['q|a\u{10FFFF}|1']);
    expect(store.listIds('outbox-index', { prefix: 'q|a' })).toEqual(['q|ab|1', 'q|a|001', 'q|a|002', 'q|a|010', 'q|a\u{10FFFF}|1']);
    expect(store.listIds('outbox-index', { prefix: 'q|a\u{10FFFF}' })).toEqual(['q|a\u{10FFFF}|1']);
    expect(store.listIds('outbox-index', { prefix: 'q|\uD7FF' })).toEqual(['q|\uD7FF|1']);
    // `after` need not be a stored id, and may sit before the prefix.
    expect(store.listIds('outbox-index', { prefix: 'q|a|', after: 'q|a|005' })).toEqual(['q|a|010']);
    expect(store.listIds('outbox-index', { prefix: 'q|b', after: 'a' })).toEqual(['q|b|1']);
    expect(store.listIds('outbox-index', { after: 'q|b|1', limit: 2 })).toEqual(['q|\uD7FF|1', 'q|\uE000|1']);
    store.transaction(() => {
      store.insert('outbox-index', 'q|a|003', {});
      store.delete('outbox-index', 'q|a|010');
      expect(store.listIds('outbox-index', { prefix: 'q|a|', after: 'q|a|001', limit: 5 })).toEqual(['q|a|002', 'q|a|003']);
    });
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

  it('commits several transactions together where it can, and one failure among them leaves none', () => {
    const { store, again } = fresh();
    const together = <R>(fn: () => R): R => (store.commitTogether ? store.commitTogether(fn) : fn());
    // The alerts' pass over a scan: one credential's claim, alert and audit record per transaction, a few per commit.
    const applied = together(() => ['c1', 'c2'].map((id) => store.transaction(() => {
      store.insert('alert-claims', id, { alertId: `a-${id}` });
      store.appendAudit({ action: 'alert.opened', result: 'info', subject: `a-${id}` });
      return store.insert('alerts', `a-${id}`, { credentialId: id })?.version;
    })));
    expect(applied).toEqual([1, 1]);
    const other = again();
    expect(other.listIds('alert-claims')).toEqual(['c1', 'c2']);
    expect(other.listAudit().map((a) => a.subject)).toEqual(['a-c1', 'a-c2']);
    if (!store.commitTogether) return;
    expect(() => store.commitTogether!(() => {
      store.transaction(() => store.insert('alert-claims', 'c3', { alertId: 'a-c3' }));
      store.transaction(() => store.appendAudit({ action: 'alert.opened', result: 'info', subject: 'a-c3' }));
      throw new Error('the next credential failed');
    })).toThrow('the next credential failed');
    expect(other.get('alert-claims', 'c3')).toBeUndefined();
    expect(other.listAudit()).toHaveLength(2);
    expect(other.verifyAudit()).toMatchObject({ ok: true, count: 2 });
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
    expect(other.verifyAudit()).toMatchObject({ ok: true, count: 8 });
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

describe('Azure Tables: what only an optimistic store shows', () => {
  const open = (table: string) => {
    const s = openAzureTablesStore({ connectionString: azurite().connectionString, table, container: 'keywarden', clock: new AdjustableClock({ frozenAt: T0 }) });
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
