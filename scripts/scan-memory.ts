import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { systemClock } from '../src/clock.js';
import { configSchema } from '../src/config/schema.js';
import { createLogger } from '../src/logging/logger.js';
import { changeCountsOf } from '../src/domain/scan.js';
import { withSandboxConfig } from '../src/sandbox/estate.js';
import { createScanner } from '../src/scanner/scanner.js';
import { createInventorySources } from '../src/scanner/sources.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/store.js';
import { startRemoteEstate } from './bench/estate-client.js';
import { collectGarbage, percentile, RssSampler } from './bench/measure.js';

/**
 * Scan memory and event-loop bench (issue 14, points 1–2): one cold and one warm scan of an emulated estate of
 * --size credentials (3 workspaces, 2 vaults, Entra apps), measuring peak RSS, the longest event-loop block and the
 * latency of small HTTP requests answered by this process while the scan runs (a click's wait).
 *   npx tsx scripts/scan-memory.ts --size 115000 [--legacy]   (--legacy: whole snapshots in memory, as before rows)
 */

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const size = Number(arg('size') ?? 9000);
const legacy = process.argv.includes('--legacy');
// Same mix as the default bench estate: 2/3 PATs, 2/9 secrets, 1/9 Entra credentials.
const sizes = {
  tokensPerWorkspace: Math.round((size * 2) / 3 / 3),
  secretsPerVault: Math.round((size * 2) / 9 / 2),
  entraApps: Math.round(size / 9 / 2),
  credentialsPerApp: 2,
};
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;

const sampler = new RssSampler();
const dir = mkdtempSync(join(tmpdir(), 'keywarden-scan-memory-'));
const estate = await startRemoteEstate(sizes, 600_000);
try {
  const config = configSchema.parse(withSandboxConfig({ store: { path: join(dir, 'keywarden.db') } }, estate.config));
  const sqlite = openSqliteStore({ path: config.store.path, clock: systemClock });
  // --legacy hides the rows, so the scanner keeps whole snapshots (the code path of stores without rows).
  const store: Store = legacy ? new Proxy(sqlite, { get: (t, p) => (p === 'scanRows' ? undefined : Reflect.get(t, p, t)) }) : sqlite;
  const logger = createLogger({ level: 'silent' });
  const { sources } = createInventorySources(config, { clock: systemClock });
  const scanner = createScanner({ sources, config, store, clock: systemClock, logger });

  // A "click": a small request this process answers, sent every 50 ms while the scan runs.
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  for (const phase of ['cold', 'warm'] as const) {
    collectGarbage();
    sampler.reset();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const latencies: number[] = [];
    let running = true;
    let failures = 0;
    const clicks = (async () => {
      while (running) {
        const t0 = performance.now();
        try {
          await fetch(url, { headers: { connection: 'close' } }).then((r) => r.text());
          latencies.push(performance.now() - t0);
        } catch {
          failures += 1;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const t0 = performance.now();
    const result = await scanner.runScan('cli');
    const wall = performance.now() - t0;
    running = false;
    await clicks;
    loop.disable();
    const m = process.memoryUsage();
    console.log(JSON.stringify({
      size, legacy, phase, credentials: result.counts?.credentials ?? result.credentials.length, errors: result.errors.length,
      wallS: +(wall / 1000).toFixed(1), peakRss: mb(sampler.peak()), rssAfter: mb(m.rss), heapUsedAfter: mb(m.heapUsed),
      loopMaxMs: +(loop.max / 1e6).toFixed(0), loopP99Ms: +(loop.percentile(99) / 1e6).toFixed(0),
      clicks: latencies.length, clickP50Ms: +percentile(latencies, 50).toFixed(0), clickP99Ms: +percentile(latencies, 99).toFixed(0),
      clickMaxMs: +Math.max(...latencies).toFixed(0), clickFailures: failures,
      changes: changeCountsOf(result),
    }));
  }
  server.close();
  await scanner.shutdown();
  sqlite.close();
} finally {
  await estate.close();
  rmSync(dir, { recursive: true, force: true });
  await sampler.stop();
}
