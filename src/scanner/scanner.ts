import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import { correlate } from '../domain/correlate.js';
import type { Credential, Estate, EstateError, EstateInventory } from '../domain/credential.js';
import type { InventoryHeader, StreamInventory } from '../providers/pages.js';
import { evaluatePolicy } from '../domain/policy.js';
import { markSelfCredentials, selfIdentityOf } from '../domain/self-credential.js';
import type { ScanListener, ScanResult } from '../domain/scan.js';
import type { Logger } from '../logging/logger.js';
import { redactText } from '../logging/redact.js';
import type { Store } from '../store/store.js';
import { createHostLimiter, hostKey } from './concurrency.js';
import { startSchedule as startCron, type ScanSchedule } from './schedule.js';
import type { ScanRows } from '../store/scan-rows.js';
import { streamScan } from './pipeline.js';
import { isRowSummary, rowBackedResult, type RowScanSummary } from './rows-view.js';
import { diffScans, LATEST_SNAPSHOT_ID, readLatestSnapshot, saveSnapshot, scopeKey } from './snapshot.js';

/** One place to scan: a workspace, a vault, a tenant or a factory (what the providers export). */
export interface InventorySource {
  estate: Estate;
  scope: string;
  host?: string;
  scan(options: { signal?: AbortSignal }): Promise<EstateInventory>;
  /**
   * The same inventory in pages (optional): each page is handed to `onPage` as it arrives and the source reads on
   * when it resolves; resolves with the inventory's facts. The streamed scan prefers it (memory of one page).
   */
  stream?: StreamInventory;
}

/**
 * Sources whose pages are being read at once (each holds up to one page, or its whole inventory without `stream`):
 * with one host per workspace or vault, the host limit alone would start all of them.
 */
export const SOURCES_AT_ONCE = 32;

/** Start order: the longest sources first (a tenant's thousands of owners calls, then vaults' version listings). */
const START_ORDER: Record<Estate, number> = { entra: 0, keyvault: 1, databricks: 2, datafactory: 3 };

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
  /** The latest completed scan (memory, else the stored snapshot). */
  lastScan(): ScanResult | undefined;
  /** The latest scan, running one first when none exists yet. */
  latestOrScan(trigger: ScanTrigger): Promise<ScanResult>;
  readonly isScheduled: boolean;
  readonly isScanning: boolean;
  /** Milliseconds between scheduled scans, when scheduled. */
  scheduleInterval(): number | null;
}

export class ScanSourceTimeout extends Error {
  override readonly name = 'ScanSourceTimeout';
  readonly code = 'SCAN_TIMEOUT';
  readonly statusCode = undefined;
}

/** Turns whatever a provider threw into an estate error a person can act on (never a secret). */
export function toEstateError(source: InventorySource, err: unknown): EstateError {
  const e = err as { message?: unknown; code?: unknown; statusCode?: unknown; status?: unknown };
  const raw = typeof e?.message === 'string' && e.message ? e.message : String(err);
  const where = `${source.estate} ${source.scope}${source.host ? ` (${source.host})` : ''}`;
  const statusCode = typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.status === 'number' ? e.status : undefined;
  return {
    estate: source.estate,
    scope: source.scope,
    message: redactText(`could not scan ${where}: ${raw}`),
    ...(typeof e?.code === 'string' || typeof e?.code === 'number' ? { code: String(e.code) } : {}),
    ...(statusCode !== undefined ? { statusCode } : {}),
  };
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
  // Every source running at once listens for shutdown.
  setMaxListeners(SOURCES_AT_ONCE + 16, stopping.signal);

  /** Runs `work` under the source's timeout and the shutdown signal. */
  function bounded<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([timeout, stopping.signal]);
    // Each request in flight for this source (a vault's window is 20) follows its signal: not a leak.
    setMaxListeners(0, signal);
    return new Promise<T>((resolve, reject) => {
      // A provider that ignores its signal still cannot hold the scan past the timeout.
      const onAbort = () => reject(timeout.aborted
        ? new ScanSourceTimeout(`no answer within ${Math.round(timeoutMs / 1000)} s — check that the host is reachable, or look for throttling`)
        : new Error('scan stopped because Keywarden is shutting down'));
      signal.addEventListener('abort', onAbort, { once: true });
      work(signal).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  const noInventory = () => new Error('the provider returned no inventory — this is a bug in the provider');

  function sourceFailed(source: InventorySource, err: unknown): EstateError {
    const error = toEstateError(source, err);
    log.warn({ estate: error.estate, scope: error.scope, code: error.code, statusCode: error.statusCode }, error.message);
    return error;
  }

  async function scanSource(source: InventorySource): Promise<EstateInventory | EstateError> {
    try {
      const inventory = await bounded((signal) => source.scan({ signal }));
      if (!inventory || !Array.isArray(inventory.credentials)) throw noInventory();
      return inventory;
    } catch (err) {
      return sourceFailed(source, err);
    }
  }

  /**
   * A source page by page (its `stream`, else its whole inventory as one page). Pages reach `onPage` one at a time; once
   * the source failed or timed out, the page being taken finishes and later ones are refused. A failing `onPage` (the
   * store) fails the scan, not the source.
   */
  async function streamSource(source: InventorySource, onPage: (credentials: Credential[]) => Promise<void>): Promise<InventoryHeader | EstateError> {
    let closed = false;
    let taking: Promise<void> = Promise.resolve();
    let sinkFailure: { error: unknown } | undefined;
    const page = (credentials: Credential[]): Promise<void> => {
      if (closed) return Promise.reject(new Error('this source was already given up'));
      if (!Array.isArray(credentials)) return Promise.reject(noInventory());
      const took = taking.then(() => onPage(credentials)).catch((error: unknown) => {
        sinkFailure ??= { error };
        throw error;
      });
      taking = took.catch(() => undefined);
      return took;
    };
    let outcome: { header: InventoryHeader } | { err: unknown };
    try {
      const header = await bounded(async (signal): Promise<InventoryHeader> => {
        if (source.stream) return source.stream({ signal }, page);
        const inventory = await source.scan({ signal });
        if (!inventory || !Array.isArray(inventory.credentials)) throw noInventory();
        const { credentials, ...rest } = inventory;
        await page(credentials);
        return rest;
      });
      if (!header || typeof header !== 'object') throw noInventory();
      outcome = { header: { ...header, facts: header.facts ?? {} } };
    } catch (err) {
      outcome = { err };
    }
    closed = true;
    await taking;
    if (sinkFailure) throw sinkFailure.error;
    return 'header' in outcome ? outcome.header : sourceFailed(source, outcome.err);
  }

  async function scanOnce(trigger: ScanTrigger): Promise<ScanResult> {
    const startedAt = clock.now();
    const id = `scan-${randomUUID()}`;
    log.info({ scanId: id, trigger, sources: sources.length }, 'scan started');
    const result = store.isOpen && store.scanRows ? await scanToRows(id, trigger, startedAt, store.scanRows) : await scanInMemory(id, trigger, startedAt);
    latest = result;
    const counts = result.counts;
    log.info({
      scanId: id, credentials: counts?.credentials ?? result.credentials.length, errors: result.errors.length,
      added: result.changes.added.length, removed: result.changes.removed.length, changed: result.changes.changed.length,
    }, 'scan finished');
    return result;
  }

  /** The streamed scan: rows in the store, a small summary in memory (pipeline.ts). */
  async function scanToRows(id: string, trigger: ScanTrigger, startedAt: number, rows: ScanRows): Promise<ScanResult> {
    // The stored summary is read (and parsed: a first scan lists every id as added) only once per process.
    if (lastOrdinal === undefined) {
      const stored = store.get<unknown>('snapshots', LATEST_SNAPSHOT_ID)?.value;
      lastOrdinal = isRowSummary(stored) ? stored.ordinal : 0;
    }
    const ordinal = Math.max(rows.lastScan(), lastOrdinal) + 1;
    lastOrdinal = ordinal;
    const outcome = await streamScan({
      ordinal, rows, config, self: selfIdentityOf(config), now: () => clock.now(),
      fetch: async (onPage) => {
        const limiter = createHostLimiter(config.scanner.concurrencyPerHost);
        const slots = createHostLimiter(SOURCES_AT_ONCE);
        const order = sources.map((s, i) => ({ s, i })).sort((a, b) => START_ORDER[a.s.estate] - START_ORDER[b.s.estate] || a.i - b.i);
        const outcomes = new Array<InventoryHeader | EstateError>(sources.length);
        await Promise.all(order.map(async ({ s, i }) => {
          outcomes[i] = await limiter.run(hostKey(s.host ?? s.scope), () => slots.run('sources', () => streamSource(s, (page) => onPage(i, page))));
        }));
        return outcomes;
      },
    });
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
    const outcomes = await Promise.all(sources.map((s) => limiter.run(hostKey(s.host ?? s.scope), () => scanSource(s))));
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
      changes: diffScans(previous?.credentials, credentials, failed),
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

    async shutdown() {
      await scanner.stopSchedule();
      stopping.abort();
      await running?.settled.catch(() => undefined);
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
