import type { Credential, EstateInventory } from '../domain/credential.js';

/**
 * Inventories in pages (issue 14): a source hands each page of credentials over as it arrives and waits until it is
 * taken, so a scan holds one page per source instead of the whole estate.
 */

/** An inventory without its credentials: what a source knows once every page was handed over. */
export type InventoryHeader = Omit<EstateInventory, 'credentials'>;

/** Takes one page; the source reads on only when it resolves (back-pressure). */
export type OnPage = (credentials: Credential[]) => Promise<void>;

export type StreamInventory = (options: { signal?: AbortSignal }, onPage: OnPage) => Promise<InventoryHeader>;

/** The whole inventory from its pages, for callers that want it in one piece. */
export async function collectPages(stream: StreamInventory, options: { signal?: AbortSignal }): Promise<EstateInventory> {
  const credentials: Credential[] = [];
  const header = await stream(options, async (page) => {
    for (const c of page) credentials.push(c);
  });
  return { ...header, credentials };
}

/**
 * Runs tasks at most `limit` at a time and hands their results over in adding order, `pageSize` at a time.
 * `add` waits while too much is held (queued, running or finished but not handed over), so a listing cannot run ahead
 * of the tasks; the first failure (of a task or of `onPage`) stops new tasks and is thrown by `add` and `done`.
 */
export function createPagedPool<R>(limit: number, pageSize: number, onPage: (items: R[]) => Promise<void>): {
  add(task: () => Promise<R>): Promise<void>;
  done(): Promise<void>;
} {
  const width = Math.max(1, limit);
  const cap = width * 2 + pageSize;
  const queue: Array<{ index: number; task: () => Promise<R> }> = [];
  const finished = new Map<number, R>();
  let buffer: R[] = [];
  let added = 0;
  let nextOut = 0;
  let running = 0;
  let handing: Promise<void> = Promise.resolve();
  let inHand = 0;
  let failure: { error: unknown } | undefined;
  const waiters: Array<() => void> = [];
  const held = () => queue.length + running + finished.size + buffer.length + inHand;
  const wakeAll = () => {
    for (const w of waiters.splice(0)) w();
  };
  const fail = (error: unknown) => {
    failure ??= { error };
    queue.length = 0;
    wakeAll();
  };
  const handOver = (items: R[]) => {
    inHand += items.length;
    handing = handing.then(() => (failure ? undefined : onPage(items))).catch(fail).finally(() => {
      inHand -= items.length;
      wakeAll();
    });
  };
  const start = () => {
    while (running < width && queue.length > 0 && !failure) {
      const { index, task } = queue.shift()!;
      running += 1;
      task().then((r) => {
        finished.set(index, r);
        // Results leave in adding order; a slow head holds the ones behind it (bounded by `cap`).
        while (finished.has(nextOut)) {
          buffer.push(finished.get(nextOut)!);
          finished.delete(nextOut++);
        }
        if (buffer.length >= pageSize) {
          handOver(buffer);
          buffer = [];
        }
      }, fail).finally(() => {
        running -= 1;
        start();
        wakeAll();
      });
    }
  };
  const wait = () => new Promise<void>((resolve) => { waiters.push(resolve); });
  return {
    async add(task) {
      while (!failure && held() >= cap) await wait();
      if (failure) throw failure.error;
      queue.push({ index: added++, task });
      start();
    },
    async done() {
      while (!failure && (running > 0 || queue.length > 0)) await wait();
      if (!failure && buffer.length > 0) {
        handOver(buffer);
        buffer = [];
      }
      await handing;
      if (failure) throw failure.error;
    },
  };
}
