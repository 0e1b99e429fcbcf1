import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createAlertsModule } from '../../../src/alerts/index.js';
import { systemClock } from '../../../src/clock.js';
import { configSchema } from '../../../src/config/schema.js';
import type { ScanResult } from '../../../src/domain/scan.js';
import { createLogger } from '../../../src/logging/logger.js';
import { maxWindowOf, type ApiFamily, type HostGates } from '../../../src/providers/host-gate.js';
import { withSandboxConfig } from '../../../src/sandbox/estate.js';
import { emulatorFamily } from '../../../src/sandbox/rate-limits.js';
import { createScanner, type InventorySource } from '../../../src/scanner/scanner.js';
import { createInventorySources } from '../../../src/scanner/sources.js';
import { threadScanEngine } from '../../../src/scanner/thread/engine.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { BlockingStats } from '../../../src/store/tables/blocking-call.js';
import { openAzureTablesStore, type AzureTablesStore } from '../../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../../azurite.js';
import { startRemoteEstate, type RemoteEstate, type ServerLoad } from '../estate-client.js';
import { percentile, type RssSampler } from '../measure.js';
import { startBotRig, SUPPORT_CHANNEL, TEAM, TENANT_ID, type BotRig } from '../rig.js';
import { shapeFor } from '../shape.js';
import { postHelp } from './bot.js';

/**
 * `--size N`: the whole estate of N thousand credentials behind emulators in a separate process, with 50 ms per call
 * and each API's published rate limit enforced (429 + Retry-After). Keywarden's side runs here: the real sources and
 * scanner, the alerts module (its outbox counts the Teams messages a scan causes) and the bot server, which gets a
 * /help turn every 250 ms while the full scan runs (the "click" latency a person in Teams would feel).
 */

/** Where Keywarden keeps its state: its SQLite file (one instance) or Azure Table Storage (azurite), as replicas do. */
export type BenchStore = 'sqlite' | 'tables';

export const LATENCY_MS = 50;
const CLICK_EVERY_MS = 250;
const CHANGE_FRACTION = 0.01;

export interface HostBound {
  host: string;
  family: string;
  calls: number;
  inFlightAllowed: number;
  perSecond: number;
  /** Longest run of dependent list pages (each page's link comes from the one before): no window shortens it. */
  chain: number;
  /** max(calls × latency ÷ in-flight allowed, calls ÷ rate, chain × latency). */
  boundMs: number;
  maxInFlightSeen: number;
  throttled: number;
  connections: number;
}

export interface ScanFigures {
  wallMs: number;
  requests: number;
  boundMs: number;
  slowest: HostBound | undefined;
  ratio: number;
  throttled: number;
  tokenRequests: number;
  /** CPU the emulators' process used during the scan (it shares the machine's cores with Keywarden). */
  emulatorCpuMs: number;
  /** Wall time after the slowest source answered (correlate, policy, diff, snapshot). */
  afterNetworkMs: number;
  slowestSources: Array<{ source: string; ms: number }>;
  /** The scanner's own split ('scan finished' log line): reading the estates, then link, policy, diff and rows. */
  phases?: { fetchMs: number; afterFetchMs: number; busy?: number };
}

export interface ScaleResult {
  sizeK: number;
  shape: ReturnType<typeof shapeFor>;
  credentials: number;
  estateSeedMs: number;
  warmUpMs: number;
  /** The scan ran on its own thread (as in production), not on the bot's. */
  scanThread: boolean;
  /** With `--store tables`: the bot thread's blocking calls to the store (Atomics.wait per call) and azurite's CPU. */
  tables?: { fullScan: BlockingStats; alertsOnScan: BlockingStats[]; azuriteCpuMs: number };
  full: ScanFigures;
  cpuUsPerCredential: number;
  peakRssBytes: number;
  /** Peak RSS while the full scan ran (scanner only: before alerts.onScan reads the result). */
  peakRssScanBytes: number;
  /** 'kernel': Linux's own peak (VmHWM); 'sampled': a sampler thread's reads (its isolate counted too). */
  peakRssSource?: 'kernel' | 'sampled';
  /** Peak RSS of each phase in turn: each scan, then its alerts.onScan. */
  peakByPhase?: Array<{ phase: string; bytes: number }>;
  /** The bot's thread's memory when the full scan ended (the scan thread's heap is its own isolate, not in here). */
  memoryAtScanEnd: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  loopMaxBlockMs: number;
  clicks: { n: number; failed: number; p50: number; p99: number; max: number };
  /** The same /help turns while the full scan's alerts.onScan ran, and the event loop's longest delay then. */
  alertsClicks?: ScaleResult['clicks'] & { loopMaxBlockMs: number };
  rescan: ScanFigures & { messages: number };
  change: ScanFigures & { changed: number; messages: number };
  baselineMessages: number;
  alertsMs: number[];
  hosts: HostBound[];
  notes: string[];
}

const GATE_FAMILY: Record<string, ApiFamily | undefined> = { keyvault: 'keyvault', databricks: 'databricks', graph: 'graph', arm: 'arm' };

/**
 * Per host: calls × latency ÷ allowed concurrency (or calls ÷ rate when that is slower, or the chain of dependent list
 * pages × latency when that is longer: a rescan that skips version listings is bound by the secret list's pages);
 * the slowest host bounds the scan.
 */
export function criticalPath(perServer: Record<string, number>, load: Record<string, ServerLoad>, urls: Record<string, string>, gates: HostGates, latencyMs: number): HostBound[] {
  const out: HostBound[] = [];
  for (const [name, calls] of Object.entries(perServer)) {
    const family = GATE_FAMILY[emulatorFamily(name)];
    if (!family || calls === 0) continue;
    const limit = gates.for(urls[name]!, family).limit;
    const l = load[name];
    const chain = l?.chain ?? 0;
    // The window can grow past the published one when round trips are slow (host-gate.ts): the bound allows for it.
    const window = maxWindowOf(limit);
    const boundMs = Math.max((calls * latencyMs) / window, (calls / limit.perSecond) * 1000, chain * latencyMs);
    out.push({ host: name, family, calls, chain, inFlightAllowed: window, perSecond: limit.perSecond, boundMs, maxInFlightSeen: l?.maxInFlight ?? 0, throttled: l?.throttled ?? 0, connections: l?.connections ?? 0 });
  }
  return out.sort((a, b) => b.boundMs - a.boundMs);
}

function clickFigures(times: number[], failed: number): ScaleResult['clicks'] {
  return { n: times.length, failed, p50: percentile(times, 50), p99: percentile(times, 99), max: times.length ? Math.max(...times) : Number.NaN };
}

/** User + system CPU of other processes (Linux /proc; NaN elsewhere), for azurite's share of the machine. */
function processCpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields 14 and 15 (utime, stime) after the command name, which may hold spaces: count from its closing paren.
      const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      return Number.NaN;
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

const t00 = performance.now();
const progress = (text: string) => process.stderr.write(`  [${((performance.now() - t00) / 1000).toFixed(0)} s] ${text}\n`);

export async function runScaleScenario(sampler: RssSampler, sizeK: number, options: { warmUp?: boolean; thread?: boolean; threadMemoryMb?: number; store?: BenchStore } = {}): Promise<ScaleResult> {
  // As in production (scanner.thread): the scan runs on its own thread; --inline runs it on the bot's thread.
  const threaded = options.thread !== false;
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-bench-scale-'));
  const shape = shapeFor(sizeK);
  const notes: string[] = [];
  let estate: RemoteEstate | undefined;
  let rig: BotRig | undefined;
  let azurite: Azurite | undefined;
  let tablesStore: AzureTablesStore | undefined;
  try {
    progress(`seeding ${sizeK}k credentials in the emulator process`);
    estate = await startRemoteEstate(shape);
    const remote = estate;
    progress(`seeded in ${(remote.seedMs / 1000).toFixed(1)} s; warm-up scan`);
    await remote.setRateLimits(true);
    if (options.store === 'tables') {
      azurite = await startAzurite();
      tablesStore = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'keywarden', container: 'keywarden', clock: systemClock });
    }
    // With Tables, the bot's turns use the same store as the scan and alerts (one replica's process).
    rig = await startBotRig({ clock: systemClock, pacingMs: 0, ...(tablesStore ? { store: tablesStore } : {}) });
    const bot = rig;
    const config = configSchema.parse(withSandboxConfig({
      store: { path: join(dir, 'keywarden.db'), ...(azurite ? { type: 'azure-tables', azure: { connectionString: azurite.connectionString } } : {}) },
      ...(options.threadMemoryMb ? { scanner: { threadMemoryMb: options.threadMemoryMb } } : {}),
      teams: { channels: [{ name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: bot.connector.serviceUrl, tenantId: TENANT_ID, teamId: TEAM.id }] },
    }, remote.config));
    const store = tablesStore ?? openSqliteStore({ path: config.store.path, clock: systemClock });
    // The bot thread's blocking store calls per phase (Tables only): counts and time since the last reset.
    const blocking = (): BlockingStats => {
      const b = tablesStore!.blocking;
      const out = { ...b };
      Object.assign(b, { calls: 0, totalMs: 0, maxMs: 0 });
      return out;
    };
    const alertsBlocking: BlockingStats[] = [];
    // Quiet, except the scanner's 'scan finished' line, whose fetch/after-fetch split the details print.
    let phases: ScanFigures['phases'];
    const logger = createLogger({ level: 'info', name: 'bench', destination: { write: (line: string) => {
      if (!line.includes('"scan finished"')) return;
      const { fetchMs, afterFetchMs, busy } = JSON.parse(line) as { fetchMs?: number; afterFetchMs?: number; busy?: number };
      if (typeof fetchMs === 'number' && typeof afterFetchMs === 'number') phases = { fetchMs, afterFetchMs, ...(typeof busy === 'number' ? { busy } : {}) };
    } } });
    // Warm-up in this process (module loading, JIT) with throw-away sources; the measured scans get fresh ones
    // (no cached version lists, tokens or connections), as after a restart.
    // The CI size skips it (its CPU figure then includes JIT warm-up).
    // A scan thread starts with the measured scan (cold), so the warm-up only serves the inline scan.
    const warmMs = sizeK <= 1 || options.warmUp === false || threaded ? 0 : await (async () => {
      const warmStore = openSqliteStore({ path: join(dir, 'warm.db'), clock: systemClock });
      const warmScanner = createScanner({ sources: createInventorySources(config, { clock: systemClock }).sources, config, store: warmStore, clock: systemClock, logger, sourceTimeoutMs: 30 * 60_000 });
      const w0 = performance.now();
      await warmScanner.runScan('cli');
      const elapsed = performance.now() - w0;
      await warmScanner.shutdown();
      warmStore.close();
      return elapsed;
    })();
    // Let the services' budgets (token buckets of up to 10 s) refill before the measured scan.
    await new Promise((r) => setTimeout(r, Math.min(10_000, warmMs)));

    const { sources: plain, gates } = createInventorySources(config, { clock: systemClock });
    // Each source's time inside the latest scan (provider side, from when the scanner started it).
    const sourceMs = new Map<string, number>();
    const sources: InventorySource[] = plain.map((src) => ({
      estate: src.estate, scope: src.scope, host: src.host,
      async scan(options) {
        const t0 = performance.now();
        try {
          return await src.scan(options);
        } finally {
          sourceMs.set(`${src.estate}:${src.scope}`, performance.now() - t0);
        }
      },
    }));
    const engine = threaded
      ? threadScanEngine({ config, address: store.address!, clock: systemClock, logger, sourceTimeoutMs: 30 * 60_000 })
      : undefined;
    const scanner = createScanner({ sources: threaded ? [] : sources, engine, config, store, clock: systemClock, logger, sourceTimeoutMs: 30 * 60_000 });
    // No gateway: what a scan queues in the outbox is what Teams would receive; nothing is delivered during the bench.
    const alerts = createAlertsModule({ config, store, clock: systemClock, logger });
    const alertsMs: number[] = [];

    const outboxSize = () => store.listIds('outbox').length;
    // Which phase holds the peak: each scan and each alerts.onScan gets its own (the sampler restarts after each).
    const peakByPhase: Array<{ phase: string; bytes: number }> = [];
    let peakSoFar = 0;
    const phaseDone = (phase: string): void => {
      const bytes = sampler.peak();
      peakByPhase.push({ phase, bytes });
      peakSoFar = Math.max(peakSoFar, bytes);
      sampler.reset();
    };
    const scan = async (label: string, onWhileScanning?: (done: () => boolean) => Promise<void>, onScanned?: () => void, onWhileAlerting?: (done: () => boolean) => Promise<void>): Promise<{ result: ScanResult; figures: ScanFigures; messages: number; hosts: HostBound[] }> => {
      await remote.requests(true);
      phases = undefined;
      const t0 = performance.now();
      let finished = false;
      const side = onWhileScanning?.(() => finished);
      const result = await scanner.runScan('cli');
      const wallMs = performance.now() - t0;
      // CPU, event loop and memory of the scan itself stop here; what alerting does with the result is its own.
      onScanned?.();
      finished = true;
      await side;
      phaseDone(`${label} scan`);
      const req = await remote.requests(true);
      if (result.errors.length > 0) notes.push(`scan ${result.id}: ${result.errors.length} estate errors: ${result.errors.map((e) => e.message).join(' | ').slice(0, 400)}`);
      const before = outboxSize();
      const a0 = performance.now();
      if (tablesStore) blocking();
      let alerted = false;
      const alongside = onWhileAlerting?.(() => alerted);
      await alerts.onScan(result);
      alerted = true;
      await alongside;
      alertsMs.push(performance.now() - a0);
      if (tablesStore) alertsBlocking.push(blocking());
      phaseDone(`${label} alerts.onScan`);
      const messages = outboxSize() - before;
      const hosts = criticalPath(req.perServer, req.load, remote.urls, gates, LATENCY_MS);
      const slowestSources = [...sourceMs.entries()].sort((a, b) => b[1] - a[1]);
      const networkMs = slowestSources[0]?.[1] ?? 0;
      const boundMs = hosts[0]?.boundMs ?? 0;
      return {
        result, messages, hosts,
        figures: {
          wallMs, requests: req.total, boundMs, slowest: hosts[0], ratio: boundMs > 0 ? wallMs / boundMs : Number.NaN,
          throttled: Object.values(req.load).reduce((n, l) => n + l.throttled, 0), tokenRequests: req.perServer['entra-authority'] ?? 0, emulatorCpuMs: req.cpuMs,
          afterNetworkMs: wallMs - networkMs, slowestSources: slowestSources.slice(0, 3).map(([k, v]) => ({ source: k, ms: v })),
          ...(phases ? { phases } : {}),
        },
      };
    };

    // The bot's first turn loads and compiles its card and Teams modules (about 2 s): a start-up cost, not the scan's.
    await postHelp(bot, 0);
    await remote.setLatency(LATENCY_MS);
    // 1. The full scan (nothing known yet): clicks every 250 ms, event-loop delay, CPU and peak RSS of this process.
    const clicks: number[] = [];
    let failedClicks = 0;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    sampler.reset();
    peakByPhase.push({ phase: 'before (bot started, one turn)', bytes: process.memoryUsage.rss() });
    const cpu0 = process.cpuUsage();
    const azuriteCpu0 = azurite ? processCpuMs(azurite.pids) : 0;
    let azuriteCpuMs = 0;
    let fullBlocking: BlockingStats = { calls: 0, totalMs: 0, maxMs: 0 };
    if (tablesStore) blocking();
    loop.enable();
    progress('full scan (+50 ms per call)');
    let cpu = { user: 0, system: 0 };
    let peakScan = 0;
    let memoryAtScanEnd = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
    // A /help turn every 250 ms until done; a turn the bot gave up on (503 after server.turnTimeoutSeconds) counts
    // with the time the person waited for nothing.
    const clickUntil = async (done: () => boolean, into: { times: number[]; failed: number }): Promise<void> => {
      let user = 0;
      while (!done()) {
        const t0 = performance.now();
        try {
          into.times.push(await postHelp(bot, user++ % 20));
        } catch {
          into.times.push(performance.now() - t0);
          into.failed += 1;
        }
        const rest = CLICK_EVERY_MS - (performance.now() - t0);
        if (rest > 0 && !done()) await new Promise((r) => setTimeout(r, rest));
      }
    };
    const afterClicks = { times: [] as number[], failed: 0 };
    const afterLoop = monitorEventLoopDelay({ resolution: 10 });
    const full = await scan('full', async (done) => {
      const during = { times: clicks, failed: 0 };
      await clickUntil(done, during);
      failedClicks = during.failed;
    }, () => {
      loop.disable();
      cpu = process.cpuUsage(cpu0);
      if (azurite) azuriteCpuMs = processCpuMs(azurite.pids) - azuriteCpu0;
      if (tablesStore) fullBlocking = blocking();
      peakScan = sampler.peak();
      const m = process.memoryUsage();
      memoryAtScanEnd = { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
    }, async (done) => {
      // Clicks while alerts.onScan takes the result in (on the bot's thread): a person clicking just after a scan.
      afterLoop.enable();
      await clickUntil(done, afterClicks);
      afterLoop.disable();
    });
    // The count, not `credentials` (that getter reads every row into memory at once).
    const credentials = full.result.counts?.credentials ?? full.result.credentials.length;
    const peakAfterFull = sampler.peak();

    // 2. Unchanged rescan, then 3. 1% of the credentials rotated (PATs, secrets' versions, app secrets).
    progress(`full scan: ${(full.figures.wallMs / 1000).toFixed(1)} s, ${full.figures.requests} requests; unchanged rescan`);
    const rescanRun = await scan('unchanged');
    const changed = await remote.change(CHANGE_FRACTION);
    progress(`rescan: ${(rescanRun.figures.wallMs / 1000).toFixed(1)} s; ${changed} credentials rotated, rescan`);
    const changeRun = await scan('1% change');
    progress(`after the change: ${(changeRun.figures.wallMs / 1000).toFixed(1)} s`);
    await remote.setLatency(0);
    await scanner.shutdown();
    store.close();

    return {
      sizeK, shape, credentials, estateSeedMs: remote.seedMs, warmUpMs: warmMs, scanThread: threaded,
      full: full.figures,
      cpuUsPerCredential: credentials > 0 ? (cpu.user + cpu.system) / credentials : Number.NaN,
      peakRssBytes: Math.max(peakAfterFull, peakSoFar, sampler.peak()),
      peakRssScanBytes: peakScan,
      peakRssSource: sampler.source,
      peakByPhase,
      memoryAtScanEnd,
      loopMaxBlockMs: loop.max / 1e6,
      clicks: clickFigures(clicks, failedClicks),
      alertsClicks: { ...clickFigures(afterClicks.times, afterClicks.failed), loopMaxBlockMs: afterLoop.max / 1e6 },
      rescan: { ...rescanRun.figures, messages: rescanRun.messages },
      change: { ...changeRun.figures, changed, messages: changeRun.messages },
      baselineMessages: full.messages,
      alertsMs,
      ...(tablesStore ? { tables: { fullScan: fullBlocking, alertsOnScan: alertsBlocking, azuriteCpuMs } } : {}),
      hosts: full.hosts,
      notes,
    };
  } finally {
    await rig?.close();
    if (tablesStore?.isOpen) tablesStore.close();
    await azurite?.stop();
    await estate?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
