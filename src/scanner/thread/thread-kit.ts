import type { Clock } from '../../clock.js';
import type { CloudCall } from '../../observability/calls.js';

/** What the scan thread and the fetch threads share: the bot's clock carried over, and cloud calls sent in batches. */

/** The bot's clock as of `at`, moving with real time until the next `reset` (every scan carries the bot's time over). */
export function carriedClock(at: number): { clock: Clock; reset(at: number): void } {
  let base = { at, perf: performance.now() };
  return {
    clock: { now: () => Math.round(base.at + (performance.now() - base.perf)) },
    reset(next: number) {
      base = { at: next, perf: performance.now() };
    },
  };
}

/** Cloud calls go to the bot's metrics in batches: one message per second at most, and whenever `flush` is called. */
export function callBatches(send: (calls: CloudCall[]) => void): { record(call: CloudCall): void; flush(): void } {
  let calls: CloudCall[] = [];
  const flush = () => {
    if (calls.length) send(calls);
    calls = [];
  };
  return {
    record(call) {
      calls.push(call);
      if (calls.length === 1) setTimeout(flush, 1000).unref();
    },
    flush,
  };
}
