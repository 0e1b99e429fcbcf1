import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { writeJsonReport } from '../../src/cli/scan.js';
import type { ScanResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import { createScanner, type InventorySource, type Scanner } from '../../src/scanner/scanner.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { cred, defaultConfig } from '../domain/fixtures.js';

/**
 * `keywarden scan --json` lists credentials most urgent first, equally urgent ones in the providers' order (issue 14):
 * the stored scan reads its rows in that order, so its text is byte for byte what the whole-snapshot scan printed,
 * even though a live bot's readers page by id.
 */

const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 3, 1) });
const stores: Store[] = [];
const scanners: Scanner[] = [];
afterEach(async () => {
  for (const s of scanners.splice(0)) await s.shutdown();
  for (const s of stores.splice(0)) s.close();
});

/** Tokens the workspace lists newest first: same name, none expires, so only the providers' order tells them apart. */
const sources = (): InventorySource[] => [{
  estate: 'databricks', scope: 'ws-a', host: 'https://ws-a',
  scan: async () => ({
    estate: 'databricks', scope: 'ws-a', facts: { maxTokenLifetimeDays: 90 },
    credentials: ['t9', 't7', 't5', 't3', 't1'].map((n) => cred('databricks-pat', 'ws-a', n, { name: 'ci', expiresAt: null })),
  }),
}];

async function scanWith(rows: boolean): Promise<ScanResult> {
  const sqlite = openSqliteStore({ path: ':memory:', clock });
  stores.push(sqlite);
  // Without rows the scanner keeps the whole scan in memory, in the providers' order.
  const store: Store = rows ? sqlite : new Proxy(sqlite, { get: (t, p) => (p === 'scanRows' ? undefined : Reflect.get(t, p, t)) });
  const scanner = createScanner({ sources: sources(), config: defaultConfig(), store, clock, logger: createLogger({ level: 'silent' }) });
  scanners.push(scanner);
  return scanner.runScan('cli');
}

async function jsonOf(scan: ScanResult): Promise<string> {
  let text = '';
  await writeJsonReport(scan, clock.now(), (t) => { text += t; });
  return text.replace(/"scanId": "[^"]*"/, '"scanId": "-"');
}

describe('keywarden scan --json over stored rows', () => {
  it('prints equally urgent credentials in the providers\' order, the same text as the whole-snapshot scan', async () => {
    const stored = await scanWith(true);
    expect(stored.view).toBeDefined();
    const text = await jsonOf(stored);
    const ids = (JSON.parse(text) as { credentials: Array<{ id: string }> }).credentials.map((c) => c.id);
    expect(ids).toEqual(['t9', 't7', 't5', 't3', 't1'].map((n) => `databricks-pat:ws-a:${n}`));
    expect(text).toBe(await jsonOf(await scanWith(false)));
  });
});
