/** Runs fn over items with at most `limit` calls in flight, keeping the order of the results. */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Starts tasks as they are added, at most `limit` at a time; `done()` resolves with every result in adding order. */
export function createTaskPool<R>(limit: number): { add(task: () => Promise<R>): void; done(): Promise<R[]> } {
  const results: R[] = [];
  const queue: Array<{ index: number; task: () => Promise<R> }> = [];
  let running = 0;
  let added = 0;
  let failure: { error: unknown } | undefined;
  let idle: (() => void) | undefined;
  const next = () => {
    while (running < Math.max(1, limit) && queue.length > 0 && !failure) {
      const { index, task } = queue.shift()!;
      running += 1;
      task().then((r) => { results[index] = r; }, (error: unknown) => { failure ??= { error }; }).finally(() => {
        running -= 1;
        next();
        if (running === 0 && (queue.length === 0 || failure)) idle?.();
      });
    }
  };
  return {
    add(task) {
      queue.push({ index: added++, task });
      next();
    },
    async done() {
      if (running > 0 || (queue.length > 0 && !failure)) await new Promise<void>((resolve) => { idle = resolve; });
      if (failure) throw failure.error;
      return results;
    },
  };
}
