import type { Keywarden, KeywardenModule, ReadinessCheckResult } from '../app.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logging/logger.js';
import {
  STORE_FORMAT, claimStoreFormat, keywardenVersion, newerFormatText, readStoreFormat, type FormatClaim, type StoreFormatRecord,
} from '../store/format.js';
import type { Store } from '../store/store.js';

/**
 * The store-format gate of one replica: at start it claims the format (refusing a store ahead of it) and, when it
 * raised the format on a store shared by replicas, waits until gated older replicas have seen it before the modules
 * start their one-time index backfills; then it re-reads the record every period and fences this replica when a newer
 * release raised it (no lease, no timers, /readyz fails, clicks and API calls refused). SQLite is one instance: no wait,
 * nothing to watch.
 */

/** After a check period an older replica has read the new format; this much more lets it stop its loops. */
export const FENCE_MARGIN_MS = 5_000;

export interface FormatGateOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Whether other replicas may share the store (azure-tables): only then is there anything to wait for or watch. */
  replicas: boolean;
  /** How often a running replica re-reads the record (azure-tables: a third of store.azure.leaseSeconds). */
  checkEveryMs: number;
  /** This release's format (default STORE_FORMAT; tests pretend to be a newer release). */
  format?: number;
}

export interface FormatGate {
  readonly claim: FormatClaim;
  /**
   * When this start (or another replica just now) raised the format on a store shared by replicas: waits one check
   * period plus a margin, so gated older replicas have fenced before anything of this one is built or indexes the store.
   */
  settle(): Promise<void>;
  /** The module to register first: watches while running and fences the core when the store moves past it. */
  module(keywarden: Keywarden): KeywardenModule;
}

/** Claims the format right after the store opens, before any module is built; throws STORE_FORMAT_NEWER. */
export function openFormatGate(options: FormatGateOptions): FormatGate {
  const { store, clock, replicas, checkEveryMs } = options;
  const ours = options.format ?? STORE_FORMAT;
  const log = options.logger.child({ component: 'store-format' });
  const claim = claimStoreFormat(store, { now: clock.now(), format: ours });
  if (claim.raisedFrom !== undefined) log.info({ from: claim.raisedFrom, to: ours }, `raised the store format from ${claim.raisedFrom} to ${ours}`);
  else if (claim.wrote) log.info({ format: ours }, `wrote store format ${ours} (the store had none)`);
  const settleMs = checkEveryMs + FENCE_MARGIN_MS;

  return {
    claim,
    async settle() {
      const elapsed = claim.raisedAt !== undefined ? clock.now() - claim.raisedAt : Infinity;
      if (!replicas || elapsed >= settleMs) return;
      const waitMs = settleMs - Math.max(0, elapsed);
      log.warn({ from: claim.raisedFrom, to: ours, waitMs },
        `the store format was just raised to ${ours}: waiting ${Math.ceil(waitMs / 1000)} s (one format check period plus a margin) for replicas of older releases to see it and fence themselves before the modules index the store`);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      log.info({ format: ours }, 'done waiting for older replicas; starting the modules');
    },
    module(keywarden) {
      let newer: StoreFormatRecord | undefined;
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;

      const fence = (record: StoreFormatRecord): void => {
        newer = record;
        const text = newerFormatText(record, ours);
        log.error({ storeFormat: record.format, ourFormat: ours, writtenBy: record.version, host: record.host },
          `a newer release took over this store: ${text}. This replica has stopped leading and running its schedules, and its store refuses every write (STORE_FENCED); /readyz fails (store-format) and clicks, commands and the pipeline API are refused until it is replaced`);
        void keywarden.fence({
          reason: text, retryAfterSeconds: 30,
          summary: `a newer release took the store (format ${record.format}, Keywarden ${record.version}; this replica writes format ${ours})`,
          userMessage: `This Keywarden replica is out of date (the store was upgraded to Keywarden ${record.version}), so it did nothing with this. Try again in a minute; if you see this again, ask an admin to finish the Keywarden upgrade.`,
        });
      };

      const check = (): void => {
        if (stopped || newer || !store.isOpen) return;
        try {
          const record = readStoreFormat(store)?.value;
          if (record && record.format > ours) fence(record);
        } catch (err) {
          // Storage unreachable: the lease steps down by itself if it lasts; the next check tries again.
          log.warn({ err }, 'could not read the store format; checking again at the next period');
        }
      };

      const loop = (): void => {
        if (stopped || newer) return;
        timer = setTimeout(() => {
          check();
          loop();
        }, checkEveryMs);
        timer.unref();
      };

      const readiness = (): ReadinessCheckResult => (newer
        ? { ok: false, detail: `store format ${newer.format} is newer than this replica's ${ours} (Keywarden ${keywardenVersion()}): upgrade this replica to Keywarden ${newer.version} or newer; do not run an older release against this store` }
        : { ok: true, detail: `format ${ours} (Keywarden ${keywardenVersion()})${replicas ? `; re-read every ${Math.round(checkEveryMs / 1000)} s` : ''}` });

      return {
        name: 'store-format',
        readiness: [{ name: 'store-format', check: readiness }],
        start() {
          stopped = false;
          if (replicas) loop();
        },
        stop() {
          stopped = true;
          if (timer) clearTimeout(timer);
          timer = undefined;
        },
      };
    },
  };
}
