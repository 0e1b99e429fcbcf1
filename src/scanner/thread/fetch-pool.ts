import type { Worker } from 'node:worker_threads';
import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential } from '../../domain/credential.js';
import type { Logger } from '../../logging/logger.js';
import type { CloudCall } from '../../observability/calls.js';
import { collectPages, type InventoryHeader, type OnPage } from '../../providers/pages.js';
import { startWorker } from '../../worker-boot.js';
import type { InventorySource } from '../run-sources.js';
import type { InventorySourcesOptions } from '../sources.js';
import { fetchThreadOf, type FetchThreadData, type FromFetchThread, type ToFetchThread } from './fetch-protocol.js';
import { errorOf } from './thread-kit.js';
import { lendToken } from './token-lender.js';

/**
 * The scan thread's side of its fetch threads (fetch-worker.ts): each source becomes a proxy whose stream asks its
 * fetch thread for the pages, takes them one by one (the thread keeps a window of PAGE_WINDOW in flight) and ends with
 * the header or an error carrying what the source threw. A thread starts with its first source and lives on between
 * scans; if it dies, its sources in flight fail naming why, and the next source it serves starts a new one.
 */

export interface FetchPoolOptions {
  config: KeywardenConfig;
  threads: number;
  secrets: string[];
  retry?: InventorySourcesOptions['retry'];
  clock: Clock;
  /** The scan thread's borrowed credential: answers the fetch threads' token requests. */
  credential: TokenCredential;
  onCalls(calls: CloudCall[]): void;
  log: Logger;
}

interface StreamHandler {
  page(credentials: Credential[]): void;
  end(header: InventoryHeader): void;
  failed(error: Error): void;
}

interface Slot {
  worker?: Worker;
  streams: Map<number, StreamHandler>;
}

const YOUNG_GENERATION_MB = 16;

export function createFetchPool(options: FetchPoolOptions) {
  const { config, threads, log } = options;
  const memoryMb = config.scanner.threadMemoryMb;
  const slots: Slot[] = Array.from({ length: threads }, () => ({ streams: new Map() }));
  let next = 0;
  let closed = false;

  function start(index: number): Worker {
    const slot = slots[index]!;
    const data: FetchThreadData = { config, secrets: options.secrets, retry: options.retry, now: options.clock.now(), index };
    const entry = new URL(`./fetch-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
    const w = startWorker(entry, {
      workerData: data as unknown as Record<string, unknown>, stdout: false, stderr: false,
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, ...(memoryMb ? { maxOldGenerationSizeMb: memoryMb } : {}) },
    });
    let reason: string | undefined;
    w.on('message', (m: FromFetchThread) => {
      if (m.type === 'token') void lendToken(options.credential, m, (answer) => w.postMessage(answer));
      else if (m.type === 'calls') options.onCalls(m.calls);
      else if (m.type === 'broken') {
        reason = `it could not start: ${m.message}`;
        void w.terminate();
      } else {
        const handler = slot.streams.get(m.id);
        if (!handler) return;
        if (m.type === 'page') handler.page(m.credentials);
        else if (m.type === 'end') handler.end(m.header);
        else handler.failed(errorOf(m.error));
      }
    });
    w.on('error', (err) => {
      reason = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? `it ran out of memory (scanner.threadMemoryMb is ${memoryMb} MB) — raise scanner.threadMemoryMb`
        : `it failed: ${err.message}`;
    });
    w.on('exit', (code) => {
      if (slot.worker === w) slot.worker = undefined;
      const why = `fetch thread ${index} stopped (${reason ?? `it exited with code ${code}`}); the next scan starts a new one`;
      if (!closed) log.error({ fetchThread: index, code }, why);
      const failing = [...slot.streams.values()];
      slot.streams.clear();
      for (const handler of failing) handler.failed(new Error(why));
    });
    // The fetch threads never hold the scan thread open: close() ends them.
    w.unref();
    log.info({ fetchThread: index, of: threads }, 'fetch thread started');
    return w;
  }

  function proxy(local: InventorySource, sourceIndex: number, threadIndex: number): InventorySource {
    const stream = (opts: { signal?: AbortSignal }, onPage: OnPage): Promise<InventoryHeader> => new Promise((resolve, reject) => {
      if (closed) {
        reject(new Error('scan stopped because Keywarden is shutting down'));
        return;
      }
      const slot = slots[threadIndex]!;
      const w = slot.worker ??= start(threadIndex);
      const id = ++next;
      const post = (message: ToFetchThread) => w.postMessage(message);
      const { signal } = opts;
      let settled = false;
      let taking = Promise.resolve();
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        slot.streams.delete(id);
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      // The runner gave the source up (its timeout, shutdown): the fetch thread stops its calls.
      const onAbort = () => {
        post({ type: 'abort', id });
        finish(() => reject(signal!.reason instanceof Error ? signal!.reason : new Error('the scan gave this source up')));
      };
      slot.streams.set(id, {
        page(credentials) {
          taking = taking.then(async () => {
            if (settled) return;
            await onPage(credentials);
            post({ type: 'ack', id });
          }).catch((err: unknown) => {
            // A page the scan could not take (the store) ends the source here and its calls there.
            post({ type: 'abort', id });
            finish(() => reject(err));
          });
        },
        end(header) {
          void taking.then(() => finish(() => resolve(header)));
        },
        failed(error) {
          finish(() => reject(error));
        },
      });
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      post({ type: 'stream', id, source: sourceIndex, now: options.clock.now() });
    });
    return {
      estate: local.estate, scope: local.scope, ...(local.host !== undefined ? { host: local.host } : {}),
      ...(local.light ? { light: true } : {}), stream, scan: ({ signal }) => collectPages(stream, { signal }),
    };
  }

  return {
    /** The sources as the scan thread built them (buildInventorySources' order), each streamed by its fetch thread. */
    sources(local: readonly InventorySource[]): InventorySource[] {
      const threadOf = fetchThreadOf(config, threads);
      return local.map((s, i) => proxy(s, i, threadOf[i] ?? 0));
    },
    async close(): Promise<void> {
      closed = true;
      await Promise.all(slots.map(async (slot) => {
        const w = slot.worker;
        slot.worker = undefined;
        if (w) await w.terminate();
      }));
    },
  };
}
