import type { Worker } from 'node:worker_threads';
import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Logger } from '../../logging/logger.js';
import { redactText, registeredSecrets } from '../../logging/redact.js';
import type { CallRecorder } from '../../observability/calls.js';
import { createAzureCredential, shareTokens } from '../../providers/azure-credential.js';
import type { StoreAddress } from '../../store/store.js';
import { startWorker } from '../../worker-boot.js';
import type { ScanEngine, ScanRequest } from '../engine.js';
import type { StreamScanOutcome } from '../pipeline.js';
import type { InventorySourcesOptions } from '../sources.js';
import type { FromScanThread, ScanThreadData, ToScanThread } from './protocol.js';
import { lendToken } from './token-lender.js';

/**
 * Runs the streamed scan on a scan thread (worker.ts): the bot's event loop only posts the request and takes the
 * summary back, so a click never waits on correlate, policy or the row writes. The thread starts with a scan and ends
 * `scanner.threadIdleSeconds` after it (default 5 minutes), so the hours between scheduled scans do not hold its
 * isolate (70 MB at 7k credentials, more for larger estates); if it dies (out of memory, a crash), that scan fails with
 * the reason and the next one starts a new thread.
 */

export interface ThreadScanEngineOptions {
  config: KeywardenConfig;
  /** The bot's store, as another thread can open it. */
  address: StoreAddress;
  clock: Clock;
  logger: Logger;
  retry?: InventorySourcesOptions['retry'];
  /** Longest one source may take before it becomes an estate error (default 5 minutes). */
  sourceTimeoutMs?: number;
  /** Each call the thread made to an estate (metrics). */
  onCall?: CallRecorder;
  /** Told when a scan thread starts (true) and when it has ended (false). */
  onThread?: (running: boolean) => void;
  /** The credential that lends the thread its tokens (default: built from config.azure when the first scan starts). */
  credential?: TokenCredential;
}

export class ScanThreadError extends Error {
  override readonly name = 'ScanThreadError';
  constructor(message: string, readonly code = 'SCAN_THREAD') {
    super(message);
  }
}

interface Pending {
  scanId: string;
  resolve(outcome: StreamScanOutcome): void;
  reject(err: Error): void;
}

/**
 * The scan thread's young generation: with 16 MB, what a scan allocates was promoted and collected again in old space
 * (15% of the thread); 48 MB cost about 25 MB of RSS and cut the 115k scan by a quarter (docs/performance.md).
 */
const YOUNG_GENERATION_MB = 48;

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export function threadScanEngine(options: ThreadScanEngineOptions): ScanEngine {
  const { config, clock, logger } = options;
  const memoryMb = config.scanner.threadMemoryMb;
  let worker: Worker | undefined;
  let pending: Pending | undefined;
  let closed = false;
  let fencedBy: string | undefined;
  /** Threads ended on purpose (idle after a scan): their exit is not an error. */
  const retired = new WeakSet<Worker>();
  let idleTimer: NodeJS.Timeout | undefined;
  /** A thread ending after its scan: shutdown waits for it too. */
  let retiring: Promise<void> | undefined;
  const idleMs = config.scanner.threadIdleSeconds * 1000;
  // One token per audience for the process: the thread asks for them (thread/tokens.ts) instead of loading MSAL.
  let credential = options.credential && shareTokens(options.credential, clock);

  /** A log line of the thread, already redacted there, written through the bot's logger (redacted again). */
  function relayLog(line: string): void {
    try {
      const { level, msg, time: _time, pid: _pid, hostname: _host, ...fields } = JSON.parse(line) as Record<string, unknown>;
      const method = LEVELS[level as number] ?? 'info';
      logger[method]({ ...fields, thread: 'scan' }, typeof msg === 'string' ? msg : '');
    } catch {
      logger.info({ thread: 'scan' }, line.trim());
    }
  }

  function onMessage(message: FromScanThread, w: Worker, setReason: (reason: string) => void): void {
    if (message.type === 'log') relayLog(message.line);
    else if (message.type === 'token') void lendToken(credential!, message, (answer) => w.postMessage(answer));
    else if (message.type === 'broken') setReason(`it could not start: ${message.message}`);
    else if (message.type === 'calls') for (const call of message.calls) options.onCall?.(call);
    else if ((message.type === 'done' || message.type === 'failed') && pending?.scanId === message.scanId) {
      const p = pending;
      pending = undefined;
      if (message.type === 'done') p.resolve(message.outcome);
      else p.reject(new ScanThreadError(message.message, message.code));
      if (idleMs === 0) retire(w);
      else idleTimer = setTimeout(() => retire(w), idleMs).unref();
    }
  }

  /** Ends an idle thread the way close does (its store connection closed first); the next scan starts a new one. */
  function retire(w: Worker): void {
    if (worker !== w || pending) return;
    worker = undefined;
    retired.add(w);
    const ended = windDown(w);
    retiring = ended;
    void ended.then(() => { if (retiring === ended) retiring = undefined; });
  }

  /**
   * Ends a thread: it stops its calls, lets a scan wind down and closes its store connection; after 10 s it is ended.
   * Resolves when it has exited.
   */
  function windDown(w: Worker): Promise<void> {
    const ended = new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.on('message', (m: FromScanThread) => { if (m.type === 'closed') void w.terminate(); });
    });
    w.postMessage({ type: 'close' } satisfies ToScanThread);
    const timer = setTimeout(() => void w.terminate(), 10_000).unref();
    return ended.finally(() => clearTimeout(timer));
  }

  function start(): Worker {
    const data: ScanThreadData = {
      config, address: options.address, secrets: registeredSecrets(), logLevel: logger.level,
      retry: options.retry, sourceTimeoutMs: options.sourceTimeoutMs ?? 5 * 60_000, now: clock.now(),
    };
    const entry = new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
    const w = startWorker(entry, {
      workerData: data as unknown as Record<string, unknown>, stdout: false, stderr: false,
      // A small young generation: the scan's garbage is short-lived (pages, rows), collected before it adds to RSS.
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, ...(memoryMb ? { maxOldGenerationSizeMb: memoryMb } : {}) },
    });
    options.onThread?.(true);
    let reason: string | undefined;
    w.on('message', (m: FromScanThread) => onMessage(m, w, (r) => {
      reason = r;
      void w.terminate();
    }));
    w.on('error', (err) => {
      reason = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? `it ran out of memory (scanner.threadMemoryMb is ${memoryMb} MB) — raise scanner.threadMemoryMb`
        : `it failed: ${err.message}`;
    });
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      if (!worker) options.onThread?.(false);
      if (retired.has(w)) {
        logger.debug({ thread: 'scan' }, 'the scan thread ended after its scan (scanner.threadIdleSeconds); the next scan starts a new one');
        return;
      }
      const p = pending;
      pending = undefined;
      const why = reason ?? `it exited with code ${code}`;
      if (!closed) logger.error({ thread: 'scan', code }, `the scan thread stopped: ${why}; the next scan starts a new one`);
      p?.reject(new ScanThreadError(`the scan thread stopped (${why}); the next scan starts a new thread`));
    });
    // The thread never holds the process open: shutdown closes it, and a scan in flight keeps its own promise.
    w.unref();
    return w;
  }

  const post = (message: ToScanThread) => worker?.postMessage(message);

  return {
    sources: config.databricks.workspaces.length + config.keyVault.vaults.length + (config.entra.enabled ? 1 : 0) + config.dataFactory.factories.length,
    thread: 'scan',
    run(request: ScanRequest, signal?: AbortSignal): Promise<StreamScanOutcome> {
      if (closed) return Promise.reject(new ScanThreadError('Keywarden is shutting down; no new scan starts'));
      if (pending) return Promise.reject(new ScanThreadError('a scan is already running on the scan thread'));
      try {
        credential ??= shareTokens(createAzureCredential(config.azure), clock);
      } catch (err) {
        // An incomplete azure config: said like a thread that could not start (as before the thread borrowed tokens).
        const why = `it could not start: ${redactText((err as Error).message)}`;
        logger.error({ thread: 'scan' }, `the scan thread stopped: ${why}; the next scan starts a new one`);
        return Promise.reject(new ScanThreadError(`the scan thread stopped (${why}); the next scan starts a new thread`));
      }
      clearTimeout(idleTimer);
      if (!worker) {
        worker = start();
        // A thread started after the fence is behind it too.
        if (fencedBy !== undefined) worker.postMessage({ type: 'fence', reason: fencedBy } satisfies ToScanThread);
      }
      const w = worker;
      return new Promise<StreamScanOutcome>((resolve, reject) => {
        const onAbort = () => post({ type: 'abort' });
        signal?.addEventListener('abort', onAbort, { once: true });
        const settle = () => signal?.removeEventListener('abort', onAbort);
        pending = {
          scanId: request.scanId,
          resolve: (o) => { settle(); resolve(o); },
          reject: (e) => { settle(); reject(e); },
        };
        w.postMessage({ type: 'scan', scanId: request.scanId, ordinal: request.ordinal, now: clock.now() } satisfies ToScanThread);
        if (signal?.aborted) onAbort();
      });
    },
    fence(reason) {
      fencedBy = reason;
      post({ type: 'fence', reason });
    },
    async close() {
      closed = true;
      clearTimeout(idleTimer);
      await retiring;
      if (worker) await windDown(worker);
    },
  };
}
