import { StoreError } from '../store.js';
import { BlockingWorker, type BlockingStats } from './blocking-call.js';
import { AUDIT_HEAD_ROW, type CommitResult, type RowOp, type ServerRow } from './rows.js';
import type { TablesConnection } from './worker.js';

/**
 * The Tables store's side of the worker: one connection on the process's shared worker thread, the blocking calls
 * (timed), and what this replica remembers of rows it read or wrote (ETags, the audit head) to save round trips.
 * store.ts builds the Store port's meaning on top; scan-rows.ts in this folder uses `call` directly.
 */

const WORKER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

/** One worker thread per process, shared by every open Tables store, stopped when the last one closes. */
let shared: { worker: BlockingWorker; users: number } | undefined;

/** Opens a connection on the shared worker (creating the table and container if needed). */
export function connectWorker(connection: TablesConnection): { worker: BlockingWorker; conn: number } {
  shared ??= { worker: new BlockingWorker(WORKER_ENTRY, 120_000), users: 0 };
  shared.users += 1;
  try {
    return { worker: shared.worker, conn: shared.worker.call<number>('init', { conn: 0, data: connection }) };
  } catch (err) {
    releaseWorker();
    throw err;
  }
}

function releaseWorker(): void {
  if (!shared) return;
  shared.users -= 1;
  if (shared.users > 0) return;
  void shared.worker.close();
  shared = undefined;
}

export const present = (row: ServerRow | undefined): row is ServerRow => row !== undefined && !row.tombstone;
export const slotKey = (pk: string, rk: string) => `${pk}\u0000${rk}`;

export abstract class TablesIo {
  protected open = true;
  /** Version and ETag of rows this replica last read or wrote: lets compareAndSet skip its read. */
  protected readonly known = new Map<string, { version: number; etag: string; createdAt: number; blob?: string }>();
  /** The audit head as this replica last wrote or read it: an append then needs one round trip, not two. */
  protected headCache: ServerRow | undefined;

  readonly blocking: BlockingStats = { calls: 0, totalMs: 0, maxMs: 0 };

  constructor(private readonly worker: BlockingWorker, private readonly conn: number) {}

  get isOpen(): boolean {
    return this.open;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      this.worker.call('disconnect', { conn: this.conn });
    } catch { /* closing anyway */ }
    releaseWorker();
  }

  protected live(): void {
    if (!this.open) throw new StoreError('the Azure Tables store is closed — open a new store; this one was shut down', 'STORE_CLOSED');
  }

  /** One blocking round trip to the worker, timed (the figures behind `blocking`). */
  protected call<T>(op: string, args: Record<string, unknown>): T {
    const started = performance.now();
    try {
      return this.worker.call<T>(op, { conn: this.conn, ...args });
    } finally {
      const spent = performance.now() - started;
      this.blocking.calls += 1;
      this.blocking.totalMs += spent;
      this.blocking.maxMs = Math.max(this.blocking.maxMs, spent);
    }
  }

  protected read(pk: string, rk: string): ServerRow | undefined {
    const row = this.call<ServerRow | undefined>('read', { pk, rk });
    this.remember(pk, row);
    return row;
  }

  protected query(pk: string, range: { from: string; to: string }, values: boolean, limit?: number): ServerRow[] {
    return this.call<ServerRow[]>('query', { pk, ...range, values, ...(limit !== undefined ? { limit } : {}) });
  }

  protected commit(pk: string, ops: RowOp[]): CommitResult {
    const result = this.call<CommitResult>('commit', { pk, ops });
    const head = ops.find((op) => op.rk === AUDIT_HEAD_ROW);
    if (!result.ok) this.headCache = undefined;
    else if (head?.meta && result.etags[AUDIT_HEAD_ROW]) this.headCache = { rk: AUDIT_HEAD_ROW, etag: result.etags[AUDIT_HEAD_ROW], id: 'head', meta: head.meta, valueText: head.valueText ?? 'null' };
    for (const op of ops) {
      const key = slotKey(pk, op.rk);
      const etag = result.ok ? result.etags[op.rk] : undefined;
      if (etag && op.kind !== 'delete' && op.meta) this.known.set(key, { version: op.meta.v, etag, createdAt: op.meta.c });
      else this.known.delete(key);
    }
    return result;
  }

  private remember(pk: string, row: ServerRow | undefined): void {
    if (!row) return;
    const key = slotKey(pk, row.rk);
    if (present(row)) this.known.set(key, { version: row.meta.v, etag: row.etag, createdAt: row.meta.c, ...(row.blob ? { blob: row.blob } : {}) });
    else this.known.delete(key);
    if (this.known.size > 10_000) this.known.clear();
  }
}
