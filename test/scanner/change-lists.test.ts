import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { buildScanResultCard } from '../../src/commands/scan.js';
import type { EstateInventory } from '../../src/domain/credential.js';
import { CHANGE_LIST_CAP, changeCountsOf } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import { createScanner, type InventorySource, type Scanner } from '../../src/scanner/scanner.js';
import { listSnapshotHistory } from '../../src/scanner/snapshot.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { cred, defaultConfig } from '../domain/fixtures.js';

/**
 * A scan keeps at most CHANGE_LIST_CAP ids per change list (a first scan of 360k credentials kept every id in the stored
 * summary and in the scan thread's answer), and the true totals: the /scan card and the log say how many changed.
 */

const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 3, 1) });
const stores: Store[] = [];
const scanners: Scanner[] = [];
afterEach(async () => {
  for (const s of scanners.splice(0)) await s.shutdown();
  for (const s of stores.splice(0)) s.close();
});

let tokens = 2500;
function source(): InventorySource {
  return {
    estate: 'databricks', scope: 'ws-a', host: 'https://ws-a',
    scan: async (): Promise<EstateInventory> => ({
      estate: 'databricks', scope: 'ws-a', facts: { maxTokenLifetimeDays: null },
      credentials: Array.from({ length: tokens }, (_, i) => cred('databricks-pat', 'ws-a', `t${i}`, {
        name: `token-${i}`, createdAt: clock.now() - DAY_MS, expiresAt: clock.now() + 90 * DAY_MS,
      })),
    }),
  };
}

function scannerOver(withRows: boolean): Scanner {
  const sqlite = openSqliteStore({ path: ':memory:', clock });
  stores.push(sqlite);
  // Without rows the scanner keeps whole snapshots (the in-memory diff): capped the same way.
  const store: Store = withRows ? sqlite : new Proxy(sqlite, { get: (t, p) => (p === 'scanRows' ? undefined : Reflect.get(t, p, t)) });
  const scanner = createScanner({ sources: [source()], config: defaultConfig(), store, clock, logger: createLogger({ level: 'silent' }) });
  scanners.push(scanner);
  return scanner;
}

describe('change lists of a large scan', () => {
  it.each([['streamed into rows', true], ['held whole', false]])('%s: capped ids, true counts on the card and in history', async (_label, withRows) => {
    tokens = 2500;
    const scanner = scannerOver(withRows);
    const first = await scanner.runScan('command');
    expect(first.changes.added).toHaveLength(CHANGE_LIST_CAP);
    expect(changeCountsOf(first)).toEqual({ added: 2500, removed: 0, changed: 0 });
    expect(JSON.stringify(buildScanResultCard(first))).toContain('Since the previous scan: 2500 new, 0 gone, 0 changed.');

    tokens = 1200;
    const second = await scanner.runScan('command');
    expect(second.changes.removed).toHaveLength(CHANGE_LIST_CAP);
    expect(new Set(second.changes.removed).size).toBe(CHANGE_LIST_CAP);
    expect(changeCountsOf(second)).toEqual({ added: 0, removed: 1300, changed: 0 });
    expect(JSON.stringify(buildScanResultCard(second))).toContain('Since the previous scan: 0 new, 1300 gone, 0 changed.');

    const stored = listSnapshotHistory(stores[0]!);
    expect(stored.map((s) => changeCountsOf(s))).toEqual([{ added: 0, removed: 1300, changed: 0 }, { added: 2500, removed: 0, changed: 0 }]);
    for (const s of stored) expect(s.changes.added.length + s.changes.removed.length).toBeLessThanOrEqual(CHANGE_LIST_CAP);
  }, 60_000);
});
