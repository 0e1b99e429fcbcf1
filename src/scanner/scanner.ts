import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import { correlate } from '../domain/correlate.js';
import type { EstateError, EstateInventory } from '../domain/credential.js';
import { evaluatePolicy } from '../domain/policy.js';
import { markSelfCredentials, selfIdentityOf } from '../domain/self-credential.js';
import { capChanges, changeCountsOf, type ScanListener, type ScanResult } from '../domain/scan.js';
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';
import type { ScanRows } from '../store/scan-rows.js';
import { createHostLimiter, hostKey } from './concurrency.js';
import { inlineScanEngine, type ScanEngine } from './engine.js';
import type { StreamScanOutcome } from './pipeline.js';
import { createSourceRunner, type InventorySource } from './run-sources.js';
import { startSchedule as startCron, type ScanSchedule } from './schedule.js';
import { isRowSummary, rowBackedResult, type RowScanSummary } from './rows-view.js';
import { diffScans, LATEST_SNAPSHOT_ID, readLatestSnapshot, saveSnapshot, scopeKey } from './snapshot.js';

// Sources and their runner moved to run-sources.ts; their names stay importable from here.
export { SOURCES_AT_ONCE, ScanSourceTimeout, toEstateError, type InventorySource } from './run-sources.js';

export type ScanTrigger = ScanResult['trigger'];

export interface ScannerOptions {
  sources: readonly InventorySource[];
  config: Pick<KeywardenConfig, 'scanner' | 'policy' | 'keyVault'> & Partial<Pick<KeywardenConfig, 'bot' | 'azure' | 'databricks'>>;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Longest one source may take before it becomes an estate error (default 5 minutes). */
  sourceTimeoutMs?: number;
  /** Scans kept in the snapshot history besides "latest" (default 10). */
  historySize?: number;
  /** Where the streamed scan runs (default: on this thread over `sources`; scanner/thread/ runs it on a scan thread). */
  engine?: ScanEngine;
}

export interface RunScanOptions {
  /** Resolve only after every onScan listener has finished (default true). Chat commands pass false to answer fast. */
  waitForListeners?: boolean;
}

export interface Scanner {
  /** Runs a scan now; while one is running, callers share it instead of starting another. */
  runScan(trigger: ScanTrigger, options?: RunScanOptions): Promise<ScanResult>;
  /** Called after every scan; returns an unsubscribe function. A failing listener is logged, never fatal. */
  onScan(listener: ScanListener): () => void;
  /** Starts the cron schedule (and the start-up scan when configured). Throws ScheduleError on a bad expression. */
  startSchedule(): void;
  stopSchedule(): Promise<void>;
  /** Stops the schedule, aborts a running scan's network calls and waits for it to wind down (before the store closes). */
  shutdown(): Promise<void>;
  /** The replica was fenced: a scan running elsewhere (the scan thread) writes nothing more (see ScanEngine.fence). */
  fence(reason: string): void;
  /** The latest completed scan (memory, else the stored snapshot). */
  lastScan(): ScanResult | undefined;
  /** The latest scan, running one first when none exists yet. */
  latestOrScan(trigger: ScanTrigger): Promise<ScanResult>;
  readonly isScheduled: boolean;
  readonly isScanning: boolean;
  /** Milliseconds between scheduled scans, when scheduled. */
  scheduleInterval(): number | null;
}

export function createScanner(options: ScannerOptions): Scanner {
  const { sources, config, store, clock } = options;
  const log = options.logger.child({ component: 'scanner' });
  const listeners = new Set<ScanListener>();
  const timeoutMs = options.sourceTimeoutMs ?? 5 * 60_000;
  let schedule: ScanSchedule | undefined;
  let latest: ScanResult | undefined;
  /** Ordinal of the latest streamed scan (the rows' scan numbers), once known. */
  let lastOrdinal: number | undefined;
  let running: { result: Promise<ScanResult>; settled: Promise<ScanResult> } | undefined;
  const stopping = new AbortController();
  const runner = createSourceRunner({ timeoutMs, stopping: stopping.signal, log });
  const engine = options.engine ?? (store.scanRows ? inlineScanEngine({ sources, config, rows: store.scanRows, now: () => clock.now(), runner }) : undefined);

  async function scanOnce(trigger: ScanTrigger): Promise<ScanResult> {
    const startedAt = clock.now();
    const id = `scan-${randomUUID()}`;
    log.info({ scanId: id, trigger, sources: engine?.sources ?? sources.length, ...(engine?.thread ? { thread: engine.thread } : {}) }, 'scan started');
    let phases: StreamScanOutcome['phases'];
    const result = store.isOpen && store.scanRows && engine
      ? await scanToRows(id, trigger, startedAt, store.scanRows, engine, (p) => { phases = p; })
      : await scanInMemory(id, trigger, startedAt);
    latest = result;
    const counts = result.counts;
    log.info({
      scanId: id, credentials: counts?.credentials ?? result.credentials.length, errors: result.errors.length,
      ...changeCountsOf(result), ...phases,
    }, 'scan finished');
    return result;
  }

  /** The streamed scan: rows in the store, a small summary in memory (pipeline.ts). */
  async function scanToRows(id: string, trigger: ScanTrigger, startedAt: number, rows: ScanRows, engine: ScanEngine, timed: (phases: StreamScanOutcome['phases']) => void): Promise<ScanResult> {
    // The stored summary is read (and parsed: a first scan lists every id as added) only once per process.
    if (lastOrdinal === undefined) {
      const stored = store.get<unknown>('snapshots', LATEST_SNAPSHOT_ID)?.value;
      lastOrdinal = isRowSummary(stored) ? stored.ordinal : 0;
    }
    const ordinal = Math.max(rows.lastScan(), lastOrdinal) + 1;
    lastOrdinal = ordinal;
    const outcome = await engine.run({ scanId: id, ordinal }, stopping.signal);
    timed(outcome.phases);
    const summary: RowScanSummary = {
      id, trigger, startedAt, finishedAt: clock.now(), errors: outcome.errors, changes: outcome.changes,
      ordinal, counts: outcome.counts, scopeFindings: outcome.scopeFindings,
    };
    try {
      saveSnapshot(store, summary, options.historySize);
    } catch (err) {
      log.error({ err, scanId: id }, 'could not store the scan summary; the rows are stored, the summary is kept in memory only');
    }
    return rowBackedResult(rows, summary);
  }

  /** A store without rows keeps whole snapshots (the estate in memory). */
  async function scanInMemory(id: string, trigger: ScanTrigger, startedAt: number): Promise<ScanResult> {
    const limiter = createHostLimiter(config.scanner.concurrencyPerHost);
    const outcomes = await Promise.all(sources.map((s) => limiter.run(hostKey(s.host ?? s.scope), () => runner.scanSource(s))));
    const inventories = outcomes.filter((o): o is EstateInventory => 'credentials' in o);
    const errors = outcomes.filter((o): o is EstateError => !('credentials' in o));

    const credentials = markSelfCredentials(correlate(inventories, { mappings: config.keyVault.mappings, vaults: config.keyVault.vaults }).credentials, selfIdentityOf(config));
    const now = clock.now();
    const findings = evaluatePolicy({
      credentials,
      scopes: inventories.map((i) => ({ estate: i.estate, scope: i.scope, facts: i.facts ?? {} })),
      policy: config.policy,
      now,
    });
    const previous = latest ?? safeRead();
    const failed = new Set(errors.map((e) => scopeKey(e.estate, e.scope)));
    const result: ScanResult = {
      id, trigger, startedAt, finishedAt: clock.now(), credentials, findings, errors,
      changes: capChanges(diffScans(previous?.credentials, credentials, failed)),
    };
    try {
      saveSnapshot(store, result, options.historySize);
    } catch (err) {
      log.error({ err, scanId: id }, 'could not store the scan snapshot; the result is kept in memory only');
    }
    return result;
  }

  function safeRead(): ScanResult | undefined {
    try {
      return store.isOpen ? readLatestSnapshot(store) : undefined;
    } catch (err) {
      log.warn({ err }, 'could not read the previous scan snapshot');
      return undefined;
    }
  }

  async function notify(result: ScanResult): Promise<void> {
    for (const listener of [...listeners]) {
      try {
        await listener(result);
      } catch (err) {
        log.error({ err, scanId: result.id }, 'a scan listener failed; the other listeners still ran');
      }
    }
  }

  const scanner: Scanner = {
    runScan(trigger, runOptions = {}) {
      if (!running) {
        // Coalescing ends when listeners are done (so they never see two scans at once), before callers resume.
        const done = () => {
          if (running === current) running = undefined;
        };
        const result = scanOnce(trigger);
        const settled = result.then(
          async (r) => {
            try {
              await notify(r);
            } finally {
              done();
            }
            return r;
          },
          (err: unknown) => {
            done();
            throw err;
          },
        );
        // A caller that does not wait for listeners must not leave the failure unhandled here.
        settled.catch(() => undefined);
        const current = { result, settled };
        running = current;
      }
      return runOptions.waitForListeners === false ? running.result : running.settled;
    },

    onScan(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    startSchedule() {
      if (schedule) return;
      schedule = startCron({
        expression: config.scanner.schedule,
        timezone: config.scanner.timezone,
        run: async () => {
          await scanner.runScan('schedule').catch((err: unknown) => log.error({ err }, 'scheduled scan failed'));
        },
      });
      log.info({ schedule: config.scanner.schedule, next: schedule.nextRun()?.toISOString() }, 'scan schedule started');
      if (config.scanner.scanOnStart) {
        void scanner.runScan('start').catch((err: unknown) => log.error({ err }, 'start-up scan failed'));
      }
    },

    async stopSchedule() {
      const s = schedule;
      schedule = undefined;
      await s?.stop();
    },

    lastScan: () => latest ?? safeRead(),

    async latestOrScan(trigger) {
      return scanner.lastScan() ?? running?.result ?? scanner.runScan(trigger, { waitForListeners: false });
    },

    fence(reason) {
      engine?.fence?.(reason);
    },

    async shutdown() {
      await scanner.stopSchedule();
      stopping.abort();
      await running?.settled.catch(() => undefined);
      await engine?.close();
    },

    get isScheduled() {
      return schedule !== undefined;
    },
    get isScanning() {
      return running !== undefined;
    },
    scheduleInterval: () => schedule?.interval() ?? null,
  };
  return scanner;
}
