import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import type { ScanResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';

/**
 * Two replicas on Azure Storage scan into rows too: the real scanner over the sandbox emulators, once on SQLite and
 * once on the Tables store, must report the same credentials, findings and changes, and an unchanged rescan nothing.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let azurite: Azurite;
let config: KeywardenConfig;
const stores: Store[] = [];
const scanners: Scanner[] = [];

beforeAll(async () => {
  [clouds, azurite] = await Promise.all([startSandboxClouds({ clock }), startAzurite()]);
  config = configSchema.parse(withSandboxConfig({ store: { path: ':memory:' } }, clouds.config));
}, 60_000);
afterAll(async () => {
  for (const s of scanners) await s.shutdown();
  for (const s of stores) s.close();
  await Promise.all([clouds?.close(), azurite?.stop()]);
});

function scannerOn(store: Store): Scanner {
  stores.push(store);
  const { sources } = createInventorySources(config, { clock });
  const scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
  scanners.push(scanner);
  return scanner;
}

/** What a person sees of a scan: which credentials, which findings on which, and what changed. */
function seen(scan: ScanResult) {
  return {
    credentials: scan.credentials.map((c) => c.id),
    findings: scan.findings.map((f) => `${f.credentialId ?? f.scope}|${f.code}|${f.severity}`).sort(),
    changes: scan.changes,
    counts: scan.counts,
    errors: scan.errors,
  };
}

describe('a scan into rows on the Azure Tables store', () => {
  it('reports what the same scan on SQLite reports, and nothing on an unchanged rescan', async () => {
    const tablesStore = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'kwscan', container: 'keywarden', clock });
    expect(tablesStore.scanRows).toBeDefined();
    const onSqlite = scannerOn(openSqliteStore({ path: ':memory:', clock }));
    const onTables = scannerOn(tablesStore);

    const first = { sqlite: await onSqlite.runScan('command'), tables: await onTables.runScan('command') };
    expect(first.tables.view).toBeDefined(); // rows, not a whole snapshot
    expect(first.tables.credentials.length).toBeGreaterThan(20);
    expect(first.tables.errors).toEqual([]);
    expect(seen(first.tables)).toEqual(seen(first.sqlite));
    expect(first.tables.changes.added.length).toBe(first.tables.credentials.length);

    const again = { sqlite: await onSqlite.runScan('command'), tables: await onTables.runScan('command') };
    expect(again.tables.changes).toEqual({ added: [], removed: [], changed: [] });
    expect(seen(again.tables)).toEqual(seen(again.sqlite));

    // A second replica reads the latest scan from the same rows.
    const replica = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'kwscan', container: 'keywarden', clock });
    stores.push(replica);
    const view = again.tables.view!;
    const some = first.sqlite.credentials[3]!;
    expect(replica.scanRows!.get(some.id)?.credential).toEqual(some);
    expect(view.get(some.id)?.credential).toEqual(some);
  }, 180_000);
});
