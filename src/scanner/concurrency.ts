/** At most `perHost` tasks run at once against the same host; different hosts run side by side. */
export interface HostLimiter {
  run<T>(host: string, task: () => Promise<T>): Promise<T>;
  /** Tasks running now for a host (for tests and diagnostics). */
  active(host: string): number;
}

export function createHostLimiter(perHost: number): HostLimiter {
  const limit = Math.max(1, Math.floor(perHost));
  const running = new Map<string, number>();
  const waiting = new Map<string, Array<() => void>>();

  const release = (host: string) => {
    const next = waiting.get(host)?.shift();
    if (next) return next(); // hand the slot straight to the next task
    const n = (running.get(host) ?? 1) - 1;
    if (n <= 0) running.delete(host);
    else running.set(host, n);
  };

  const acquire = (host: string): Promise<void> => {
    const n = running.get(host) ?? 0;
    if (n < limit) {
      running.set(host, n + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = waiting.get(host) ?? [];
      queue.push(resolve);
      waiting.set(host, queue);
    });
  };

  return {
    async run(host, task) {
      await acquire(host);
      try {
        return await task();
      } finally {
        release(host);
      }
    },
    active: (host) => running.get(host) ?? 0,
  };
}

/** "https://adb-1.azuredatabricks.net/" → "adb-1.azuredatabricks.net"; anything else is used as given. */
export function hostKey(hostOrScope: string): string {
  try {
    return new URL(hostOrScope).host.toLowerCase();
  } catch {
    return hostOrScope.toLowerCase();
  }
}
