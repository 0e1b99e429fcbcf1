import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { threadScanEngine } from '../../src/scanner/thread/engine.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/**
 * The scan thread ends after its scan (scanner.threadIdleSeconds): a fence that came while no thread ran still holds
 * the next thread, which writes nothing.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let dir: string;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  dir = mkdtempSync(join(tmpdir(), 'kw-scan-thread-idle-'));
});
afterAll(async () => {
  await clouds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a fence between two scans', () => {
  it('holds the scan thread started after it: that scan fails on its first write and the rows stay as they were', async () => {
    const config = configSchema.parse(withSandboxConfig({ store: { path: join(dir, 'idle.db') }, scanner: { threadIdleSeconds: 0 } }, clouds.config));
    const store = openSqliteStore({ path: config.store.path, clock });
    const logger = createLogger({ level: 'silent' });
    let running = 0;
    const engine = threadScanEngine({ config, address: store.address!, clock, logger, onThread: (r) => { running = r ? 1 : 0; } });
    const scanner = createScanner({ sources: [], engine, config, store, clock, logger });
    try {
      const first = await scanner.runScan('command');
      expect(first.errors).toEqual([]);
      for (let i = 0; i < 200 && running === 1; i++) await new Promise((r) => setTimeout(r, 25));
      expect(running).toBe(0);
      const before = store.scanRows!.lastScan();

      engine.fence!('a newer release took the store (test)');
      const second = await scanner.runScan('command').then(() => undefined, (err: unknown) => err as Error);
      expect(second?.message).toContain('a newer release took the store (test)');
      expect(store.scanRows!.lastScan()).toBe(before);
    } finally {
      await scanner.shutdown();
      store.close();
    }
  }, 60_000);
});
