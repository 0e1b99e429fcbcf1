import type { Clock } from '../../clock.js';
import { redactText } from '../../logging/redact.js';
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

/** An error sent across a thread's port: what the providers' messages read of it, redacted, never a token or a value. */
export interface ThreadFailure {
  name: string;
  message: string;
  code?: string | number;
  statusCode?: number;
  status?: number;
}

export function failureOf(err: unknown): ThreadFailure {
  const e = (err ?? {}) as { name?: unknown; message?: unknown; code?: unknown; statusCode?: unknown; status?: unknown };
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: redactText(typeof e.message === 'string' && e.message ? e.message : String(err)),
    ...(typeof e.code === 'string' || typeof e.code === 'number' ? { code: e.code } : {}),
    ...(typeof e.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
    ...(typeof e.status === 'number' ? { status: e.status } : {}),
  };
}

/** The error as it was thrown on the other side (name, message, code, status), so the messages built on it read the same. */
export function errorOf(f: ThreadFailure): Error {
  const err = new Error(f.message) as Error & Omit<ThreadFailure, 'name' | 'message'>;
  err.name = f.name;
  if (f.code !== undefined) err.code = f.code;
  if (f.statusCode !== undefined) err.statusCode = f.statusCode;
  if (f.status !== undefined) err.status = f.status;
  return err;
}
