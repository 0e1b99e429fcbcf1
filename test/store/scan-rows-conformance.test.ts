import { describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import type { CredentialKind } from '../../src/domain/credential.js';
import { cursorOf, type CredentialRow, type RowQuery, type ScanRows } from '../../src/store/scan-rows.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { cred, days } from '../domain/fixtures.js';
import { storeBackends, T0 } from './backends.js';

/**
 * The scan rows' contract (store.scanRows, what scanner/pipeline.ts and rows-view.ts rely on), on both stores: staging,
 * stamps, writes that upsert or only move a row to the next scan, pages in (scan, seq, id) order and in id order with
 * every filter, unseen rows and deletes, as a second connection (replica) sees them.
 */

const { backends, opened, azurite } = storeBackends();

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
    // Kinds merged a page at a time keep the order across kinds.
    expect(walk(other, { kinds: ['keyvault-secret', 'entra-password', 'databricks-pat'] }, 1)).toEqual(ids);

    // By id: the same rows and filters, in the ids' order.
    const byId = (query: RowQuery, size: number) => walk(other, { ...query, order: 'id' }, size);
    const sorted = (list: Array<string | undefined>) => [...list].sort();
    expect(byId({}, 2)).toEqual(sorted(ids));
    expect(byId({ seenSince: 1 }, 1)).toEqual(sorted(ids));
    expect(byId({ relevantOnly: true }, 1)).toEqual(sorted([ids[0], ids[3]]));
    expect(byId({ withFindings: true }, 1)).toEqual([ids[0]]);
    expect(byId({ kind: 'keyvault-secret' }, 1)).toEqual(sorted([ids[2], ids[4]]));
    expect(byId({ kinds: ['keyvault-secret', 'entra-password', 'databricks-pat'] }, 1)).toEqual(sorted(ids));
    expect(byId({ kinds: ['entra-password', 'databricks-pat'] }, 2)).toEqual(sorted([ids[0], ids[1], ids[3]]));
    expect(byId({ kinds: [] }, 10)).toEqual([]);
    expect(byId({ kind: 'databricks-pat', scope: 'ws-b' }, 10)).toEqual([ids[1]]);
    expect(byId({ estate: 'entra' }, 10)).toEqual([ids[3]]);
    expect(byId({ expiresBefore: days(10) }, 10)).toEqual([ids[2]]);
    expect(byId({ seenSince: 2 }, 10)).toEqual([]);
    // A kind and a list of kinds together ask for both.
    for (const order of ['scan', 'id'] as const) {
      expect(walk(other, { kind: 'databricks-pat', kinds: ['databricks-pat', 'keyvault-secret'], order }, 1)).toEqual([ids[0], ids[1]]);
      expect(walk(other, { kind: 'databricks-pat', kinds: ['keyvault-secret'], order }, 1)).toEqual([]);
    }
  });

  it('pages by id see each row once while the next scan moves every row under the reader', () => {
    const { rows, again } = rowsOf();
    const kinds: CredentialKind[] = ['databricks-pat', 'keyvault-secret', 'entra-password'];
    const written = Array.from({ length: 12 }, (_, i) => row(kinds[i % 3]!, 'ws', `r${String(i).padStart(2, '0')}`, 1, i + 1));
    rows.write({ upsert: written, touch: [] });
    const reader = again();
    const seen: string[] = [];
    for (const order of ['id', 'scan'] as const) {
      seen.length = 0;
      const query: RowQuery = { seenSince: 1, order };
      let page = reader.page(query, undefined, 4);
      let scan = written[0]!.scan;
      while (page.length) {
        seen.push(...page.map((r) => r.id));
        // Between two pages, the next scan sees the estate in the reverse order (and one credential changed).
        scan += 1;
        const moved = written.map((r, i) => ({ id: r.id, scan, seq: written.length - i }));
        rows.write({ upsert: [{ ...written[5]!, scan, seq: 7, contentHash: `h-${scan}` }], touch: moved.filter((m) => m.id !== written[5]!.id) });
        page = page.length < 4 ? [] : reader.page(query, cursorOf(page.at(-1)!), 4);
      }
      if (order === 'id') expect(seen).toEqual(written.map((r) => r.id).sort());
    }
    // The providers' order is not stable under a running scan: this is what readers in a live bot must not use.
    expect(seen).not.toEqual(written.map((r) => r.id));
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

describe('Azure Tables scan rows: round trips', () => {
  it('costs one blocking call per scan page, however many rows and batches it holds', () => {
    const a = openAzureTablesStore({ connectionString: azurite().connectionString, table: 'kwscanpage', container: 'keywarden', clock: new AdjustableClock({ frozenAt: T0 }) });
    opened.push(a);
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
    expect(calls(() => expect(rows.page({ seenSince: 2, order: 'id' }, undefined, 500)).toHaveLength(120))).toBe(1);
    expect(calls(() => rows.clearStaging())).toBe(1);
  });
});
