import type { Logger } from '../logging/logger.js';
import type { ScanRows } from './scan-rows.js';
import { StoreError, type Store } from './store.js';

/**
 * The store as a replica that can be fenced sees it: once `fencedBy()` names a reason (a newer release took the store,
 * src/replicas/format-gate.ts), every write is refused with STORE_FENCED, so work already running when the fence came
 * (a job step, a turn, an alert pass) stops at its next write exactly like a process killed there, and the newer
 * release resumes it from what was persisted. Reads, close and everything else pass through unchanged, and an unfenced
 * store behaves exactly as the one it wraps.
 */

/** The Store members that change state (first argument: the collection, where there is one). */
const WRITES = new Set<PropertyKey>(['insert', 'put', 'compareAndSet', 'delete', 'transaction', 'commitTogether', 'appendAudit']);
/** The ScanRows members that change state. */
const ROW_WRITES = new Set<PropertyKey>(['stage', 'clearStaging', 'unstage', 'write', 'delete']);

export const STORE_FENCED = 'STORE_FENCED';

/** What a refused write throws: what happened and the fix. */
export function storeFencedError(reason: string): StoreError {
  return new StoreError(`this replica may no longer write to the store: it was taken over by a newer release (${reason}). `
    + 'Replace this replica with the newer release; it writes nothing until then, and the newer release resumes its unfinished work', STORE_FENCED);
}

export interface FenceAwareStoreOptions {
  /** Why this replica is fenced (operator text naming the formats, versions and fix), or undefined while it is not. */
  fencedBy: () => string | undefined;
  logger: Logger;
}

/** Wraps `store` so writes are refused once fenced; other members (isOpen, address, blocking…) are the store's own. */
export function fenceAwareStore<S extends Store>(store: S, options: FenceAwareStoreOptions): S {
  const log = options.logger.child({ component: 'store-fence' });
  // One line per kind of write (operation and collection), however many writes the running work attempts.
  const told = new Set<string>();
  let refused = 0;

  const check = (op: string, collection: unknown): void => {
    const reason = options.fencedBy();
    if (reason === undefined) return;
    refused += 1;
    const kind = typeof collection === 'string' && op !== 'appendAudit' ? `${op} ${collection}` : op;
    if (!told.has(kind)) {
      told.add(kind);
      log.warn({ op, collection: typeof collection === 'string' ? collection : undefined, refusedSoFar: refused },
        `refused a store write (${kind}): this replica is fenced and writes nothing; the work that tried it stops here and the newer release resumes it. Further ${kind} writes are refused without a log line`);
    }
    throw storeFencedError(reason);
  };

  const guarded = <T extends object>(target: T, writes: Set<PropertyKey>, prefix: string, extra?: (prop: PropertyKey, value: unknown) => unknown): T => {
    const cache = new Map<PropertyKey, unknown>();
    return new Proxy(target, {
      get(t, prop) {
        const value: unknown = Reflect.get(t, prop, t);
        if (extra) {
          const replaced = extra(prop, value);
          if (replaced !== undefined) return replaced;
        }
        if (typeof value !== 'function') return value;
        const hit = cache.get(prop);
        if (hit && (hit as { original?: unknown }).original === value) return hit;
        const fn = value as (...args: unknown[]) => unknown;
        const wrapped = writes.has(prop)
          ? Object.assign((...args: unknown[]) => {
            check(`${prefix}${String(prop)}`, args[0]);
            return fn.apply(t, args);
          }, { original: value })
          : Object.assign((...args: unknown[]) => fn.apply(t, args), { original: value });
        cache.set(prop, wrapped);
        return wrapped;
      },
    });
  };

  let rowsOf: ScanRows | undefined;
  let rows: ScanRows | undefined;
  return guarded(store, WRITES, '', (prop, value) => {
    if (prop !== 'scanRows' || !value) return undefined;
    if (rowsOf !== value) {
      rowsOf = value as ScanRows;
      rows = guarded(rowsOf, ROW_WRITES, 'scanRows.');
    }
    return rows;
  });
}
