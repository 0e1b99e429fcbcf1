/**
 * One call to an estate and the wrappers that record it: no prom-client here, so the scan thread records its calls
 * without loading the metrics registry (the bot's KeywardenMetrics turns them into histograms).
 */

/** One finished call to an estate; `status` is the HTTP status, or "network" when no answer came. */
export interface CloudCall {
  estate: string;
  method: string;
  status: string;
  seconds: number;
}

export type CallRecorder = (call: CloudCall) => void;

// 401 is Key Vault's normal challenge round trip, not an error.
export const isCallError = (call: CloudCall): boolean => call.status === 'network'
  || (Number(call.status) >= 400 && !(call.estate === 'keyvault' && call.status === '401'));

function timed<R>(record: CallRecorder, estate: string, method: string, send: () => Promise<R>, statusOf: (r: R) => number): Promise<R> {
  const started = performance.now();
  const done = (status: string) => record({ estate, method, status, seconds: (performance.now() - started) / 1000 });
  return send().then((res) => {
    done(String(statusOf(res)));
    return res;
  }, (err: unknown) => {
    done('network');
    throw err;
  });
}

/** A fetch that reports every call to `record`. */
export function recordingFetch(record: CallRecorder, estate: string, inner: typeof fetch = fetch): typeof fetch {
  return ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    return timed(record, estate, method, () => inner(input, init), (res) => res.status);
  }) as typeof fetch;
}

export interface KeyVaultCallPolicy {
  name: string;
  sendRequest(request: { method: string }, next: (r: never) => Promise<{ status: number }>): Promise<{ status: number }>;
}

/** A Key Vault SDK pipeline policy (per retry) that reports every call to `record`. */
export function recordingKeyVaultPolicy(record: CallRecorder): KeyVaultCallPolicy {
  return {
    name: 'keywardenMetrics',
    sendRequest: (request, next) => timed(record, 'keyvault', request.method, () => next(request as never), (res) => res.status),
  };
}
