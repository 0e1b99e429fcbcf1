import { setMaxListeners } from 'node:events';
import type { Credential, Estate, EstateError, EstateInventory } from '../domain/credential.js';
import type { Logger } from '../logging/logger.js';
import { redactText } from '../logging/redact.js';
import type { InventoryHeader, StreamInventory } from '../providers/pages.js';
import { createHostLimiter, hostKey } from './concurrency.js';

/**
 * Running inventory sources: each under its timeout and the shutdown signal, at most SOURCES_AT_ONCE at once and the
 * per-host limit, a failure becoming an estate error. Shared by the scanner on the bot's thread and the scan thread.
 */

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
  /** Makes one call at a time and holds one small page (a vault that lists no versions): many can run at once. */
  light?: boolean;
}

/**
 * Sources whose pages are being read at once (each holds up to one page, or its whole inventory without `stream`):
 * with one host per workspace or vault, the host limit alone would start all of them.
 */
export const SOURCES_AT_ONCE = 32;

/**
 * Light sources read at once, beside those: a vault that lists no versions makes one call at a time and holds one list
 * page (25 secrets), and each vault is its own host with its own budget, so more of them at once only shortens the scan
 * (every vault must answer before anything is judged early, pipeline.ts).
 */
export const LIGHT_SOURCES_AT_ONCE = 128;

/** Start order: the longest sources first (a tenant's thousands of owners calls, then vaults' version listings). */
const START_ORDER: Record<Estate, number> = { entra: 0, keyvault: 1, databricks: 2, datafactory: 3 };

export class ScanSourceTimeout extends Error {
  override readonly name = 'ScanSourceTimeout';
  readonly code = 'SCAN_TIMEOUT';
  readonly statusCode = undefined;
}

/** Turns whatever a provider threw into an estate error a person can act on (never a secret). */
export function toEstateError(source: Pick<InventorySource, 'estate' | 'scope' | 'host'>, err: unknown): EstateError {
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

export interface SourceRunnerOptions {
  /** Longest one source may take before it becomes an estate error. */
  timeoutMs: number;
  /** Aborted when Keywarden shuts down: every source's calls stop. */
  stopping: AbortSignal;
  log: Logger;
}

export interface SourceRunner {
  /** One source's whole inventory (the scan without rows). */
  scanSource(source: InventorySource): Promise<EstateInventory | EstateError>;
  /** Every source, pages to `onPage` as they arrive; each ends as its header or an estate error (in `sources`' order). */
  streamAll(
    sources: readonly InventorySource[], concurrencyPerHost: number,
    onPage: (index: number, credentials: Credential[]) => Promise<void>,
    /** Each source's outcome as it ends (after its last page was taken), before the others have. */
    onDone?: (index: number, outcome: InventoryHeader | EstateError) => void,
  ): Promise<Array<InventoryHeader | EstateError>>;
}

export function createSourceRunner(options: SourceRunnerOptions): SourceRunner {
  const { timeoutMs, stopping, log } = options;
  // Every source running at once listens for shutdown.
  setMaxListeners(SOURCES_AT_ONCE + LIGHT_SOURCES_AT_ONCE + 16, stopping);
  /** Runs `work` under the source's timeout and the shutdown signal. */
  function bounded<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([timeout, stopping]);
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

  return {
    scanSource,
    async streamAll(sources, concurrencyPerHost, onPage, onDone) {
      const limiter = createHostLimiter(concurrencyPerHost);
      const slots = createHostLimiter(SOURCES_AT_ONCE);
      const lightSlots = createHostLimiter(LIGHT_SOURCES_AT_ONCE);
      const order = sources.map((s, i) => ({ s, i })).sort((a, b) => START_ORDER[a.s.estate] - START_ORDER[b.s.estate] || a.i - b.i);
      const outcomes = new Array<InventoryHeader | EstateError>(sources.length);
      await Promise.all(order.map(async ({ s, i }) => {
        const slot = s.light ? lightSlots : slots;
        outcomes[i] = await limiter.run(hostKey(s.host ?? s.scope), () => slot.run('sources', () => streamSource(s, (page) => onPage(i, page))));
        onDone?.(i, outcomes[i]!);
      }));
      return outcomes;
    },
  };
}
