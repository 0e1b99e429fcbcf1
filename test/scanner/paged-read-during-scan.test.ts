import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';

/**
 * A reader that pages through the latest scan, yielding between pages (a report, /findings, the alerts), while the
 * next scan runs (issue 14): the rescan moves every row it sees to its own ordinal, and the reader must still see each
 * credential exactly once, on SQLite and on Azure Tables.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let azurite: Azurite;
let config: KeywardenConfig;
const stores: Store[] = [];
const scanners: Scanner[] = [];

beforeAll(async () => {
  [clouds, azurite] = await Promise.all([startSandboxClouds({ clock }), startAzurite()]);
  config = configSchema.parse(withSandboxConfig({}, clouds.config));
}, 60_000);
afterAll(async () => {
  for (const s of scanners) await s.shutdown();
  for (const s of stores) s.close();
  await Promise.all([clouds?.close(), azurite?.stop()]);
});

const backends: Array<{ name: string; open: () => Store }> = [
  { name: 'SQLite', open: () => openSqliteStore({ path: ':memory:', clock }) },
  { name: 'Azure Tables', open: () => openAzureTablesStore({ connectionString: azurite.connectionString, table: `kwpaged${process.pid}`, container: 'keywarden', clock }) },
];

describe.each(backends)('a paged read of the latest scan while the next scan runs, on $name', ({ open }) => {
  it('sees every credential exactly once', async () => {
    const store = open();
    stores.push(store);
    const { sources } = createInventorySources(config, { clock });
    const scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
    scanners.push(scanner);
    const first = await scanner.runScan('command');
    expect(first.errors).toEqual([]);
    const expected = first.credentials.map((c) => c.id).sort();
    expect(expected.length).toBeGreaterThan(20);

    // Vaults answer slowly, so the rescan writes its pages while the reader is between two of its own.
    for (const vault of clouds.handles.keyVault.vaults.values()) vault.server.setLatency(50);
    const seen: string[] = [];
    let rescan: Promise<unknown> | undefined;
    let rescanned = false;
    try {
      for (const page of first.view!.pages({ pageSize: 3 })) {
        seen.push(...page.map((r) => r.credential.id));
        if (!rescan) rescan = scanner.runScan('command').finally(() => { rescanned = true; });
        // A third of the pages while the rescan runs, the rest after it has moved every row.
        if (rescanned || seen.length < expected.length / 3) await sleep(40);
        else await rescan;
      }
      await rescan;
    } finally {
      for (const vault of clouds.handles.keyVault.vaults.values()) vault.server.setLatency(0);
    }
    expect(rescanned).toBe(true);
    expect(store.scanRows!.lastScan()).toBe(2);
    const twice = seen.filter((id, i) => seen.indexOf(id) !== i);
    expect(twice).toEqual([]);
    expect([...seen].sort()).toEqual(expected);
  }, 120_000);
});
