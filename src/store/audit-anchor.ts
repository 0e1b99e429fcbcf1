import type { Clock } from '../clock.js';
import type { Logger } from '../logging/logger.js';
import type { AuditAnchor } from './audit-chain.js';
import type { Store } from './store.js';

/**
 * Copies the audit chain head {seq, hash} outside the database at intervals, so `audit --verify` can tell when
 * records were deleted from the end (which a hash chain alone cannot). Writes run in the background: an append
 * only nudges, a failed write is logged and retried on the next tick, and nothing here ever blocks a click.
 */

/** Where anchors live (a Key Vault secret's versions in production; see src/providers/keyvault/audit-key-vault.ts). */
export interface AuditAnchorSink {
  /** For messages, e.g. "kv-ops/keywarden-audit-anchor". */
  readonly where: string;
  write(anchor: AuditAnchor): Promise<void>;
  list(): Promise<AuditAnchor[]>;
}

export interface AuditAnchorerOptions {
  store: Pick<Store, 'auditHead' | 'isOpen'>;
  sink: AuditAnchorSink;
  clock: Clock;
  logger: Logger;
  everyEntries: number;
  everyMs: number;
  /** How often (real time) to look whether an anchor is due or a failed one should be retried (default min(everyMs, 30 s)). */
  tickMs?: number;
  /** First retry delay after a failed write; doubles up to everyMs (default 5 s). */
  retryMs?: number;
  /** How long stop() waits for the final anchor (default 5 s). */
  stopTimeoutMs?: number;
}

export interface AuditAnchorer {
  /** Called after each append (cheap): schedules a write when everyEntries have accumulated. */
  nudge(seq: number): void;
  /** Anchors the current head now (unless it is already anchored). */
  flush(): Promise<void>;
  /** Resolves when no anchor write is scheduled or running (tests, shutdown). */
  idle(): Promise<void>;
  start(): void;
  /** Stops the timer and anchors the head one last time (bounded wait). */
  stop(): Promise<void>;
}

export function createAuditAnchorer(options: AuditAnchorerOptions): AuditAnchorer {
  const { store, sink, clock, everyEntries, everyMs } = options;
  const log = options.logger.child({ component: 'audit-anchor' });
  const retryMs = options.retryMs ?? 5_000;
  let anchoredSeq = 0;
  let anchoredAt = clock.now();
  let failures = 0;
  let retryAt = 0;
  let writing: Promise<void> | undefined;
  let scheduled = false;
  let timer: NodeJS.Timeout | undefined;

  const due = (seq: number) => seq - anchoredSeq >= everyEntries || clock.now() - anchoredAt >= everyMs;

  function anchor(force: boolean): Promise<void> {
    if (writing) return writing;
    if (!store.isOpen) return Promise.resolve();
    const head = store.auditHead();
    if (!head || head.seq <= anchoredSeq) return Promise.resolve();
    if (!force && (!due(head.seq) || clock.now() < retryAt)) return Promise.resolve();
    const at = clock.now();
    writing = sink.write({ seq: head.seq, hash: head.hash, at }).then(
      () => {
        anchoredSeq = Math.max(anchoredSeq, head.seq);
        anchoredAt = at;
        if (failures > 0) log.info({ seq: head.seq, where: sink.where, after: failures }, 'audit anchor written again after failures');
        failures = 0;
        retryAt = 0;
      },
      (err: unknown) => {
        failures += 1;
        const delay = Math.min(retryMs * 2 ** (failures - 1), everyMs);
        retryAt = clock.now() + delay;
        log.warn({ err, seq: head.seq, where: sink.where, failures, retryInMs: delay },
          'could not write the audit anchor to Key Vault; the bot keeps working and retries (check secrets Set permission on that vault)');
      },
    ).finally(() => { writing = undefined; });
    return writing;
  }

  return {
    nudge(seq) {
      if (scheduled || writing || seq - anchoredSeq < everyEntries) return;
      scheduled = true;
      setImmediate(() => { scheduled = false; void anchor(false); });
    },
    flush: () => anchor(true),
    async idle() {
      while (scheduled || writing) {
        if (writing) await writing;
        else await new Promise((r) => setImmediate(r));
      }
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void anchor(false), options.tickMs ?? Math.min(everyMs, 30_000));
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      let timeout: NodeJS.Timeout | undefined;
      const final = (async () => {
        await writing;
        await anchor(true);
      })();
      await Promise.race([final, new Promise<void>((r) => { timeout = setTimeout(r, options.stopTimeoutMs ?? 5_000); })]);
      clearTimeout(timeout);
    },
  };
}
