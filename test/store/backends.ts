import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { AdjustableClock } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';

/**
 * The two stores a contract test runs on: the embedded SQLite store and the Azure Tables store (azurite, in memory).
 * A "target" is where a store's data lives (a file, a table); two stores opened on one target are two connections
 * (two replicas). Call `storeBackends()` once at the top of a test file: it starts azurite for the file and closes
 * the stores each case opened.
 */

export interface Backend {
  name: string;
  newTarget(): string;
  open(target: string, clock: AdjustableClock): Store;
}

export const T0 = 1_800_000_000_000;

export function storeBackends(): { backends: Backend[]; opened: Store[]; azurite: () => Azurite } {
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
  return { backends, opened, azurite: () => azurite };
}
