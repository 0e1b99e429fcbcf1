import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import type { EstateError } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { threadScanEngine } from '../../src/scanner/thread/engine.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/**
 * Fetch threads (issue 14): the sources' calls and parsing run on threads beside the scan thread, which takes their
 * pages. A scan reads the same credentials and findings as without them, and a vault that fails reads the same.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let dir: string;
let n = 0;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  dir = mkdtempSync(join(tmpdir(), 'kw-fetch-threads-'));
});
afterAll(async () => {
  await clouds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function configWith(fetchThreads: number): KeywardenConfig {
  return configSchema.parse(withSandboxConfig({ store: { path: join(dir, `scan-${++n}.db`) }, scanner: { fetchThreads } }, clouds.config));
}

async function scan(fetchThreads: number) {
  const config = configWith(fetchThreads);
  const store = openSqliteStore({ path: config.store.path, clock });
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => { logLines.push(line); } } });
  const engine = threadScanEngine({ config, address: store.address!, clock, logger, retry: { maxRetries: 0, baseDelayMs: 5 } });
  const scanner = createScanner({ sources: [], engine, config, store, clock, logger });
  try {
    const result = await scanner.runScan('command');
    // Keywarden's own app credential is "last used" by the scan's sign-in: the one field two scans cannot share.
    const credentials = result.credentials.map((c) => JSON.stringify(c.attributes.keywardenRunsOn ? { ...c, lastUsedAt: 'the scan' } : c)).sort();
    return { result, credentials, findings: result.findings.map((f) => JSON.stringify(f)).sort(), logLines };
  } finally {
    await scanner.shutdown();
    store.close();
  }
}

// Request ids and timestamps differ between two answers; the rest of the message is compared.
const stable = (errors: EstateError[]) => errors
  .map((e) => `${e.estate}/${e.scope} ${e.code ?? ''} ${e.statusCode ?? ''}: ${e.message.replace(/\d{4}-\d\d-\d\dT?\s?\d\d:\d\d:\d\d(\.\d+)?Z/g, 'T').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, 'ID')}`)
  .sort();

const started = (lines: string[]) => lines.filter((l) => l.includes('"fetch thread started"')).length;

describe('fetch threads', () => {
  it('are a whole number from 0 to 16 in the config, said plainly otherwise', () => {
    const error = (fetchThreads: unknown) => configSchema.safeParse({ scanner: { fetchThreads } }).error?.issues[0]?.message;
    expect(error(-1)).toContain('scanner.fetchThreads must be a whole number from 0 to 16');
    expect(error('two')).toContain('scanner.fetchThreads must be a whole number from 0 to 16');
    expect(error(64)).toContain('scanner.fetchThreads must be at most 16');
    expect(error(2)).toBeUndefined();
  });

  it('give the same credentials and findings as a scan without them', async () => {
    const without = await scan(0);
    const withTwo = await scan(2);
    expect(started(without.logLines)).toBe(0);
    expect(started(withTwo.logLines)).toBe(2);
    expect(withTwo.result.errors).toEqual([]);
    expect(without.credentials.length).toBeGreaterThan(10);
    expect(withTwo.credentials).toEqual(without.credentials);
    expect(withTwo.findings).toEqual(without.findings);
    expect(withTwo.result.counts).toEqual(without.result.counts);
  }, 90_000);

  it('give a vault that does not answer up at the source timeout, as without them, and scan it again next time', async () => {
    const timedOut = async (fetchThreads: number) => {
      const config = configWith(fetchThreads);
      const store = openSqliteStore({ path: config.store.path, clock });
      const logger = createLogger({ level: 'warn', destination: { write: () => undefined } });
      const engine = threadScanEngine({ config, address: store.address!, clock, logger, retry: { maxRetries: 0, baseDelayMs: 5 }, sourceTimeoutMs: 5000 });
      const scanner = createScanner({ sources: [], engine, config, store, clock, logger });
      try {
        clouds.handles.keyVault.setLatency(20_000, 'kv-dev');
        const slow = await scanner.runScan('command');
        clouds.handles.keyVault.setLatency(0, 'kv-dev');
        // The same fetch thread scans the vault again: the given-up listing did not hold it.
        const again = await scanner.runScan('command');
        // Only the slow vault's error is compared: on a loaded machine a cold thread's first calls may take long too.
        return { slow: slow.errors.filter((e) => e.scope === 'kv-dev').map((e) => `${e.scope} ${e.code}: ${e.message}`), again: again.errors };
      } finally {
        clouds.handles.keyVault.setLatency(0, 'kv-dev');
        await scanner.shutdown();
        store.close();
      }
    };
    const without = await timedOut(0);
    const withOne = await timedOut(1);
    expect(without.slow).toEqual([expect.stringContaining('kv-dev SCAN_TIMEOUT: could not scan keyvault kv-dev')]);
    expect(withOne.slow).toEqual(without.slow);
    expect(withOne.again).toEqual([]);
  }, 90_000);

  it('that die fail their sources in flight naming why, the scan goes on, and the next scan starts a new one', async () => {
    const config = configSchema.parse(withSandboxConfig({ store: { path: join(dir, `scan-${++n}.db`) }, scanner: { fetchThreads: 2, threadMemoryMb: 64, threadIdleSeconds: 600 } }, clouds.config));
    // The scan thread stays between the two scans (threadIdleSeconds), so only the fetch thread that died is started again.
    // Vault 0 is alone on fetch thread 1 (fetchThreadOf); a listing page far past 64 MB once parsed ends that thread.
    const vault = config.keyVault.vaults[0]!.name;
    const host = config.keyVault.vaults[0]!.url.replace(/\/+$/, '');
    const value = Array.from({ length: 400_000 }, (_, i) => ({ id: `${host}/secrets/huge-${i}`, attributes: { enabled: true, created: 1, updated: 1 }, tags: { n: `${i}` } }));
    clouds.handles.keyVault.injectFault({ method: 'GET', path: /^\/secrets\/?$/, status: 200, body: { value, nextLink: null }, times: 1 }, vault);
    const store = openSqliteStore({ path: config.store.path, clock });
    const logLines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => { logLines.push(line); } } });
    const engine = threadScanEngine({ config, address: store.address!, clock, logger, retry: { maxRetries: 0, baseDelayMs: 5 } });
    const scanner = createScanner({ sources: [], engine, config, store, clock, logger });
    try {
      const first = await scanner.runScan('command');
      expect(first.errors).toEqual([expect.objectContaining({ estate: 'keyvault', scope: vault })]);
      expect(first.errors[0]!.message).toContain('fetch thread 1 stopped (it ran out of memory (scanner.threadMemoryMb is 64 MB)');
      expect(first.counts?.credentials).toBeGreaterThan(10);
      clouds.handles.keyVault.clearFaults();
      const second = await scanner.runScan('command');
      expect(second.errors).toEqual([]);
      expect(started(logLines)).toBe(3);
    } finally {
      clouds.handles.keyVault.clearFaults();
      await scanner.shutdown();
      store.close();
    }
  }, 120_000);

  it('fail a broken vault with the same estate error, and the other sources still scan', async () => {
    clouds.handles.keyVault.injectFault({ status: 500, times: Infinity }, 'kv-dev');
    try {
      const without = await scan(0);
      const withOne = await scan(1);
      expect(without.result.errors.map((e) => e.scope)).toContain('kv-dev');
      expect(stable(withOne.result.errors)).toEqual(stable(without.result.errors));
      expect(withOne.credentials).toEqual(without.credentials);
    } finally {
      clouds.handles.keyVault.clearFaults();
    }
  }, 90_000);
});
