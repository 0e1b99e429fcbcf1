import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import type { EstateInventory } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { createScanner, type InventorySource, type Scanner } from '../../src/scanner/scanner.js';
import { ScheduleError } from '../../src/scanner/schedule.js';
import { listSnapshotHistory, readLatestSnapshot } from '../../src/scanner/snapshot.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { cred, defaultConfig } from '../domain/fixtures.js';

/**
 * Scanner behaviour over in-memory inventory sources (the provider seam). The same scanner against the
 * real providers and emulators is in test/scanner/estate.test.ts.
 */

const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 3, 1) });
const logger = createLogger({ level: 'silent' });
let store: Store;
let scanner: Scanner | undefined;

afterEach(async () => {
  await scanner?.shutdown();
  scanner = undefined;
  store?.close();
});

function source(scope: string, host: string, make: () => Promise<EstateInventory> | EstateInventory): InventorySource {
  return { estate: 'databricks', scope, host, scan: async () => make() };
}

function inventory(scope: string, tokens: Array<[string, number | null]>): EstateInventory {
  return {
    estate: 'databricks', scope, facts: {},
    credentials: tokens.map(([id, expiresIn]) => cred('databricks-pat', scope, id, {
      createdAt: clock.now() - DAY_MS, expiresAt: expiresIn === null ? null : clock.now() + expiresIn * DAY_MS,
    })),
  };
}

function make(sources: InventorySource[], config = defaultConfig()): Scanner {
  store = openSqliteStore({ path: ':memory:', clock });
  scanner = createScanner({ sources, config, store, clock, logger });
  return scanner;
}

describe('scanner', () => {
  it('scans every source, applies policy and stores the result as the latest snapshot', async () => {
    const s = make([source('ws-a', 'https://a', () => inventory('ws-a', [['1', 7], ['2', null]])), source('ws-b', 'https://b', () => inventory('ws-b', [['3', 60]]))]);
    const result = await s.runScan('command');
    expect(result.credentials.map((c) => c.id).sort()).toEqual(['databricks-pat:ws-a:1', 'databricks-pat:ws-a:2', 'databricks-pat:ws-b:3']);
    expect(result.findings.map((f) => `${f.code}:${f.credentialId}`).sort()).toEqual(['expiring:databricks-pat:ws-a:1', 'no-expiry:databricks-pat:ws-a:2']);
    expect(result.errors).toEqual([]);
    expect(result.trigger).toBe('command');
    expect(readLatestSnapshot(store)?.id).toBe(result.id);
    expect(s.lastScan()?.id).toBe(result.id);
  });

  it('a failing source becomes an estate error with a clear message while the rest completes', async () => {
    const failing = source('ws-bad', 'https://bad', () => {
      throw Object.assign(new Error('GET /api/2.0/token-management/tokens answered 500 after 3 attempts'), { code: 'DATABRICKS_HTTP_500', statusCode: 500 });
    });
    const s = make([failing, source('ws-ok', 'https://ok', () => inventory('ws-ok', [['1', 3]]))]);
    const result = await s.runScan('command');
    expect(result.credentials.map((c) => c.where.scope)).toEqual(['ws-ok']);
    expect(result.errors).toEqual([{
      estate: 'databricks', scope: 'ws-bad', code: 'DATABRICKS_HTTP_500', statusCode: 500,
      message: 'could not scan databricks ws-bad (https://bad): GET /api/2.0/token-management/tokens answered 500 after 3 attempts',
    }]);
  });

  it('a source that never answers times out as an estate error', async () => {
    store = openSqliteStore({ path: ':memory:', clock });
    scanner = createScanner({
      sources: [source('ws-hang', 'https://hang', () => new Promise<EstateInventory>(() => undefined)), source('ws-ok', 'https://ok', () => inventory('ws-ok', []))],
      config: defaultConfig(), store, clock, logger, sourceTimeoutMs: 200,
    });
    const result = await scanner.runScan('command');
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.message).toMatch(/ws-hang .*no answer within 0 s|ws-hang .*no answer within/);
    expect(result.errors[0]!.code).toBe('SCAN_TIMEOUT');
  });

  it('coalesces overlapping scans: a second request shares the running one', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const s = make([source('ws-a', 'https://a', async () => { calls += 1; await gate; return inventory('ws-a', [['1', 5]]); })]);
    const first = s.runScan('schedule');
    const second = s.runScan('command');
    expect(s.isScanning).toBe(true);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.id).toBe(b.id);
    expect(calls).toBe(1);
    const third = await s.runScan('command');
    expect(third.id).not.toBe(a.id);
    expect(calls).toBe(2);
  });

  it('runs at most concurrencyPerHost sources against one host, and hosts side by side', async () => {
    const active = new Map<string, number>();
    const peak = new Map<string, number>();
    const slow = (host: string, scope: string): InventorySource => source(scope, host, async () => {
      active.set(host, (active.get(host) ?? 0) + 1);
      peak.set(host, Math.max(peak.get(host) ?? 0, active.get(host)!));
      await new Promise((r) => setTimeout(r, 20));
      active.set(host, active.get(host)! - 1);
      return inventory(scope, []);
    });
    const config = defaultConfig({ scanner: { concurrencyPerHost: 2 } });
    const sources = [1, 2, 3, 4, 5].map((i) => slow('https://shared:443', `ws-${i}`)).concat([slow('https://other', 'ws-x'), slow('https://other', 'ws-y')]);
    await make(sources, config).runScan('command');
    expect(peak.get('https://shared:443')).toBe(2);
    expect(peak.get('https://other')).toBe(2);
  });

  it('records what changed since the previous scan and keeps a short history', async () => {
    let tokens: Array<[string, number | null]> = [['1', 40], ['2', 50]];
    const s = make([source('ws-a', 'https://a', () => inventory('ws-a', tokens))]);
    const first = await s.runScan('command');
    expect(first.changes).toEqual({ added: ['databricks-pat:ws-a:1', 'databricks-pat:ws-a:2'], removed: [], changed: [] });
    tokens = [['2', 80], ['3', 10]];
    const second = await s.runScan('command');
    expect(second.changes).toEqual({ added: ['databricks-pat:ws-a:3'], removed: ['databricks-pat:ws-a:1'], changed: ['databricks-pat:ws-a:2'] });
    const third = await s.runScan('command');
    expect(third.changes).toEqual({ added: [], removed: [], changed: [] });
    for (let i = 0; i < 12; i++) await s.runScan('command');
    const history = listSnapshotHistory(store, 50);
    expect(history).toHaveLength(10);
    expect(history[0]!.id).toBe(s.lastScan()!.id);
    expect(listSnapshotHistory(store, 3).map((h) => h.id)).toEqual(history.slice(0, 3).map((h) => h.id));
    // History keeps what each scan saw and what changed; only "latest" keeps the credentials themselves.
    expect(history[0]).toEqual({
      id: s.lastScan()!.id, trigger: 'command', startedAt: clock.now(), finishedAt: clock.now(),
      counts: { credentials: 2, findings: s.lastScan()!.findings.length, errors: 0 }, errors: [], changes: { added: [], removed: [], changed: [] },
    });
    expect(JSON.stringify(history)).not.toContain('"credentials":[');
    expect(readLatestSnapshot(store)?.credentials.map((c) => c.id)).toEqual(['databricks-pat:ws-a:2', 'databricks-pat:ws-a:3']);
  });

  it('reads history written by an older Keywarden (whole scan results) as summaries, and prunes it', async () => {
    const s = make([source('ws-a', 'https://a', () => inventory('ws-a', [['1', 40]]))]);
    const old = await s.runScan('command');
    store.put('snapshots', 'history:000000000000001:000001:scan-old', { ...old, id: 'scan-old', startedAt: 1, finishedAt: 2 });
    expect(listSnapshotHistory(store).at(-1)).toEqual({
      id: 'scan-old', trigger: 'command', startedAt: 1, finishedAt: 2, counts: { credentials: 1, findings: old.findings.length, errors: 0 },
      errors: [], changes: old.changes,
    });
    for (let i = 0; i < 10; i++) await s.runScan('command');
    expect(listSnapshotHistory(store, 50).map((h) => h.id)).not.toContain('scan-old');
  });

  it('after a restart, diffs against the stored latest scan', async () => {
    store = openSqliteStore({ path: ':memory:', clock });
    let tokens: Array<[string, number | null]> = [['1', 40], ['2', 50]];
    const src = source('ws-a', 'https://a', () => inventory('ws-a', tokens));
    const before = createScanner({ sources: [src], config: defaultConfig(), store, clock, logger });
    await before.runScan('command');
    await before.shutdown();
    tokens = [['2', 90], ['4', 10]];
    scanner = createScanner({ sources: [src], config: defaultConfig(), store, clock, logger });
    const after = await scanner.runScan('command');
    expect(after.changes).toEqual({ added: ['databricks-pat:ws-a:4'], removed: ['databricks-pat:ws-a:1'], changed: ['databricks-pat:ws-a:2'] });
  });

  it('a scope that fails does not report its credentials as removed', async () => {
    let fail = false;
    const s = make([source('ws-a', 'https://a', () => {
      if (fail) throw new Error('HTTP 503');
      return inventory('ws-a', [['1', 40]]);
    })]);
    await s.runScan('command');
    fail = true;
    const second = await s.runScan('command');
    expect(second.changes.removed).toEqual([]);
    expect(second.errors).toHaveLength(1);
  });

  it('notifies listeners; a failing listener does not stop the others', async () => {
    const s = make([source('ws-a', 'https://a', () => inventory('ws-a', []))]);
    const seen: string[] = [];
    s.onScan(() => { throw new Error('listener bug'); });
    const off = s.onScan((r) => { seen.push(r.id); });
    const r = await s.runScan('command');
    expect(seen).toEqual([r.id]);
    off();
    await s.runScan('command');
    expect(seen).toHaveLength(1);
  });

  it('latestOrScan scans once when there is no snapshot yet, then reads it', async () => {
    let calls = 0;
    const s = make([source('ws-a', 'https://a', () => { calls += 1; return inventory('ws-a', []); })]);
    const a = await s.latestOrScan('command');
    const b = await s.latestOrScan('command');
    expect(a.id).toBe(b.id);
    expect(calls).toBe(1);
  });

  it('refuses a bad cron expression at start with the setting and an example', () => {
    const s = make([], defaultConfig({ scanner: { schedule: '61 * * *' } }));
    expect(() => s.startSchedule()).toThrow(ScheduleError);
    expect(() => s.startSchedule()).toThrow(/scanner.schedule "61 \* \* \*" is not a valid cron expression .*e\.g\. "0 \*\/6 \* \* \*"/);
    expect(s.isScheduled).toBe(false);
  });

  it('refuses an unknown time zone', () => {
    const s = make([], defaultConfig({ scanner: { timezone: 'Mars/Olympus' } }));
    expect(() => s.startSchedule()).toThrow(/scanner.timezone "Mars\/Olympus"/);
  });

  it('starts the schedule and the start-up scan, and stops cleanly', async () => {
    const s = make([source('ws-a', 'https://a', () => inventory('ws-a', [['1', 5]]))], defaultConfig({ scanner: { schedule: '0 */6 * * *', scanOnStart: true } }));
    s.startSchedule();
    expect(s.isScheduled).toBe(true);
    expect(s.scheduleInterval()).toBe(6 * 3_600_000);
    const r = await s.runScan('command'); // joins the start-up scan
    expect(r.trigger).toBe('start');
    await s.stopSchedule();
    expect(s.isScheduled).toBe(false);
  });
});
