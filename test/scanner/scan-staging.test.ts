import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/**
 * Issue 14: a scan's staged credentials go to a disposable file beside the store, not through the store's WAL: the
 * store's file holds no staging while a scan runs, the staging file is gone once the scan ends, and a file a crashed
 * scan left behind is replaced by the next scan.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let config: KeywardenConfig;
let dir: string;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  config = configSchema.parse(withSandboxConfig({}, clouds.config));
  dir = mkdtempSync(join(tmpdir(), 'kw-staging-'));
}, 60_000);
afterAll(async () => {
  await clouds?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a scan on a store file', () => {
  it('stages in its own file while it runs, leaves the store\'s file without staging, and deletes that file at the end', async () => {
    const path = join(dir, 'keywarden.db');
    const stagingPath = `${path}-scan-staging`;
    // What a scan killed mid-way leaves: a staging file that is not even a database.
    writeFileSync(stagingPath, 'left by a crashed scan');
    const store = openSqliteStore({ path, clock });
    const { sources } = createInventorySources(config, { clock });
    const scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
    const graph = clouds.handles.entra.graph;
    try {
      graph.setLatency(400);
      let stagedInFile = 0;
      let stagedInStore = 0;
      let done = false;
      const scan = scanner.runScan('command').finally(() => { done = true; });
      const look = new Database(path, { readonly: true });
      while (!done) {
        if (existsSync(stagingPath)) {
          try {
            const file = new Database(stagingPath, { readonly: true, fileMustExist: true });
            stagedInFile = Math.max(stagedInFile, (file.prepare('SELECT count(*) AS n FROM scan_staging').get() as { n: number }).n);
            file.close();
          } catch { /* created or deleted just now */ }
        }
        stagedInStore = Math.max(stagedInStore, (look.prepare('SELECT count(*) AS n FROM scan_staging').get() as { n: number }).n);
        await sleep(25);
      }
      look.close();
      const result = await scan;
      expect(result.errors).toEqual([]);
      expect(result.credentials.length).toBeGreaterThan(0);
      expect(stagedInFile).toBeGreaterThan(0);
      expect(stagedInStore).toBe(0);
      expect(existsSync(stagingPath)).toBe(false);
    } finally {
      graph.setLatency(0);
      await scanner.shutdown();
      store.close();
    }
  }, 120_000);
});

describe('a scan that cannot create its staging file', () => {
  it('fails naming the file and the fix, and the next scan runs once the path is free', async () => {
    const path = join(dir, 'blocked.db');
    const stagingPath = `${path}-scan-staging`;
    // Something else sits where the staging file goes (a directory with content cannot be replaced by a file).
    mkdirSync(join(stagingPath, 'not-ours'), { recursive: true });
    const store = openSqliteStore({ path, clock });
    const { sources } = createInventorySources(config, { clock });
    const scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
    try {
      const failed = await scanner.runScan('command').then(() => undefined, (err: unknown) => err as Error);
      expect(failed?.message).toContain(`cannot create the scan's staging file ${stagingPath}`);
      expect(failed?.message).toContain('keep the store\'s directory writable');
      rmSync(stagingPath, { recursive: true });
      const next = await scanner.runScan('command');
      expect(next.errors).toEqual([]);
      expect(next.credentials.length).toBeGreaterThan(0);
    } finally {
      await scanner.shutdown();
      store.close();
    }
  }, 120_000);
});
