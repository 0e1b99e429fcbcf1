import { describe, expect, it } from 'vitest';
import { createKeywarden } from '../../src/app.js';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { StoreError, type Store } from '../../src/store/store.js';
import { cred } from '../domain/fixtures.js';
import { storeBackends, T0 } from '../store/backends.js';

/**
 * The core's fence-aware store on both stores: unfenced it is the store it wraps; once the core is fenced every write
 * (records, transactions, audit, scan rows) is refused with STORE_FENCED naming the reason and the fix, nothing reaches
 * storage, reads keep answering, and the log says it once per kind of write.
 */

const { backends, opened } = storeBackends();
const REASON = 'the store is at format 2, written by Keywarden 9.9.9 (replica-b pid 4242), but this Keywarden 0.1.0 writes format 1';

function refusal(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    return err as StoreError;
  }
  throw new Error('the write was not refused');
}

describe.each(backends)('the fence-aware store on $name', (backend) => {
  function core(): { store: Store; raw: Store; lines: string[]; fence: () => Promise<void> } {
    const raw = backend.open(backend.newTarget(), new AdjustableClock({ frozenAt: T0 }));
    opened.push(raw);
    const lines: string[] = [];
    const keywarden = createKeywarden({
      config: configSchema.parse({}), store: raw, clock: new AdjustableClock({ frozenAt: T0 }),
      logger: createLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } }),
    });
    const fence = () => keywarden.fence({ reason: REASON, userMessage: 'out of date', retryAfterSeconds: 30 });
    return { store: keywarden.store, raw, lines, fence };
  }

  it('unfenced, writes and reads are the store\'s own', () => {
    const { store, raw } = core();
    expect(store.insert('jobs', 'j1', { n: 1 })?.version).toBe(1);
    expect(store.compareAndSet('jobs', 'j1', 1, { n: 2 })?.value).toEqual({ n: 2 });
    expect(store.put('settings', 's1', { on: true }).version).toBe(1);
    expect(store.transaction(() => store.insert('jobs', 'j2', { n: 3 })?.id)).toBe('j2');
    expect(store.appendAudit({ action: 'test.ok', result: 'info' }).seq).toBe(1);
    expect(store.delete('jobs', 'j2')).toBe(true);
    expect(raw.list('jobs').map((r) => [r.id, r.value])).toEqual([['j1', { n: 2 }]]);
    expect(store.isOpen).toBe(true);
    expect(store.address).toEqual(raw.address);
  });

  it('fenced, every write is refused with STORE_FENCED and nothing reaches storage; reads keep working', async () => {
    const { store, raw, lines, fence } = core();
    store.insert('jobs', 'j1', { n: 1 });
    store.appendAudit({ action: 'test.before', result: 'info' });
    const row = cred('databricks-pat', 'ws', 't1');
    store.scanRows?.stage(0, [row]);
    const head = raw.auditHead();
    await fence();

    const writes: Array<[string, () => unknown]> = [
      ['insert', () => store.insert('jobs', 'j2', { n: 2 })],
      ['compareAndSet', () => store.compareAndSet('jobs', 'j1', 1, { n: 9 })],
      ['put', () => store.put('jobs', 'j1', { n: 9 })],
      ['put again', () => store.put('jobs', 'j3', { n: 9 })],
      ['delete', () => store.delete('jobs', 'j1')],
      ['transaction', () => store.transaction(() => raw.put('jobs', 'j4', { n: 4 }))],
      ['appendAudit', () => store.appendAudit({ action: 'test.after', result: 'info' })],
      ['appendAudit again', () => store.appendAudit({ action: 'test.after', result: 'info' })],
      ...(store.commitTogether ? [['commitTogether', () => store.commitTogether!(() => raw.put('jobs', 'j5', { n: 5 }))] as [string, () => unknown]] : []),
      ['scanRows.stage', () => store.scanRows!.stage(1, [row])],
      ['scanRows.clearStaging', () => store.scanRows!.clearStaging()],
      ['scanRows.delete', () => store.scanRows!.delete([row.id])],
      ['scanRows.write', () => store.scanRows!.write({ upsert: [], touch: [] })],
    ];
    for (const [what, write] of writes) {
      const err = refusal(write);
      expect(err, what).toBeInstanceOf(StoreError);
      expect(err.code, what).toBe('STORE_FENCED');
      expect(err.message, what).toBe(`this replica may no longer write to the store: it was taken over by a newer release (${REASON}). `
        + 'Replace this replica with the newer release; it writes nothing until then, and the newer release resumes its unfinished work');
    }

    expect(raw.list('jobs').map((r) => [r.id, r.version, r.value])).toEqual([['j1', 1, { n: 1 }]]);
    expect(raw.auditHead()).toEqual(head);
    expect(store.get('jobs', 'j1')?.value).toEqual({ n: 1 });
    expect(store.listIds('jobs')).toEqual(['j1']);
    expect(store.listAudit().map((a) => a.action)).toEqual(['test.before']);
    expect(store.verifyAudit().ok).toBe(true);
    expect(store.scanRows!.staged(0, 0, 10).map((s) => s.credential.id)).toEqual([row.id]);
    expect(store.scanRows!.lastScan()).toBe(0);

    // One line per kind of write: the second put to jobs and the second audit append say nothing more.
    const told = lines.map((l) => JSON.parse(l) as { msg: string }).filter((l) => /refused a store write/.test(l.msg)).map((l) => /\(([^)]+)\)/.exec(l.msg)![1]);
    expect(told).toEqual(['insert jobs', 'compareAndSet jobs', 'put jobs', 'delete jobs', 'transaction', 'appendAudit',
      ...(store.commitTogether ? ['commitTogether'] : []), 'scanRows.stage', 'scanRows.clearStaging', 'scanRows.delete', 'scanRows.write']);
  });
});
