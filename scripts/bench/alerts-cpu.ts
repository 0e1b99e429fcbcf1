import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAlertsModule } from '../../src/alerts/index.js';
import { systemClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { changeCountsOf } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import { withSandboxConfig } from '../../src/sandbox/estate.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { startRemoteEstate } from './estate-client.js';
import { parseSize, shapeFor } from './shape.js';

/**
 * What alerts.onScan costs at size: `npx tsx scripts/bench/alerts-cpu.ts --size 30 [--profile out-prefix]`.
 * Seeds N thousand credentials in the emulator process (no latency, no rate limits), then a first scan, an
 * unchanged rescan and a rescan after 1% rotated; after each, alerts.onScan alone: CPU, wall time, the longest
 * synchronous step (gap between event-loop turns) and the outbox entries it queued.
 */

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const sizeK = parseSize(arg('size') ?? '20');
const profile = arg('profile');

/** The longest time between two turns of a 1 ms timer while `fn` runs: the longest synchronous step. */
async function longestBlock<T>(fn: () => Promise<T>): Promise<{ value: T; maxBlockMs: number }> {
  let last = performance.now();
  let max = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    max = Math.max(max, t - last);
    last = t;
  }, 1);
  try {
    const value = await fn();
    max = Math.max(max, performance.now() - last);
    return { value, maxBlockMs: max };
  } finally {
    clearInterval(timer);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'keywarden-alerts-cpu-'));
const estate = await startRemoteEstate(shapeFor(sizeK));
try {
  await estate.setLatency(0);
  await estate.setRateLimits(false);
  const config = configSchema.parse(withSandboxConfig({
    store: { path: join(dir, 'keywarden.db') },
    teams: { channels: [{ name: 'support', conversationId: '19:support@thread.tacv2', serviceUrl: 'http://127.0.0.1:9/', tenantId: '11111111-2222-3333-4444-555555555555', teamId: '19:team@thread.tacv2' }] },
  }, estate.config));
  const store = openSqliteStore({ path: config.store.path, clock: systemClock });
  const logger = createLogger({ level: 'warn', name: 'alerts-cpu', destination: { write: () => undefined } });
  const scanner = createScanner({ sources: createInventorySources(config, { clock: systemClock }).sources, config, store, clock: systemClock, logger, sourceTimeoutMs: 30 * 60_000 });
  const alerts = createAlertsModule({ config, store, clock: systemClock, logger });
  const session = new Session();
  session.connect();

  const step = async (label: string): Promise<void> => {
    const s0 = performance.now();
    const result = await scanner.runScan('cli');
    const scanMs = performance.now() - s0;
    const before = store.listIds('outbox').length;
    if (profile) {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    const { value: outcome, maxBlockMs } = await longestBlock(() => alerts.onScan(result));
    const wallMs = performance.now() - w0;
    const cpu = process.cpuUsage(cpu0);
    if (profile) {
      const { profile: p } = await session.post('Profiler.stop');
      writeFileSync(`${profile}-${label}.cpuprofile`, JSON.stringify(p));
    }
    const queued = store.listIds('outbox').length - before;
    console.log(JSON.stringify({
      step: label, credentials: result.counts?.credentials, changes: changeCountsOf(result),
      scanS: +(scanMs / 1000).toFixed(1), onScanCpuS: +((cpu.user + cpu.system) / 1e6).toFixed(2), onScanWallS: +(wallMs / 1000).toFixed(2),
      maxBlockMs: +maxBlockMs.toFixed(1), queued, opened: outcome.opened.length, raised: outcome.raised.length, resolved: outcome.resolved.length, digests: outcome.digests.length,
    }));
  };

  await step('first');
  await step('unchanged');
  const changed = await estate.change(0.01);
  console.log(JSON.stringify({ rotated: changed }));
  await step('changed');
  await scanner.shutdown();
  session.disconnect();
  store.close();
} finally {
  await estate.close();
  rmSync(dir, { recursive: true, force: true });
}
