import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { DatabricksTokenSource } from './auth.js';
import { DatabricksError, parseErrorBody, remedyFor } from './errors.js';
import { parseJsonLossless } from './json.js';
import { AttemptSignals } from '../attempt-signal.js';
import { isThrottle, type HostGate } from '../host-gate.js';

/** One request pipeline: bearer auth, per-attempt timeout, retries by call class, lossless JSON, typed errors. */

/**
 * read: GETs — retried on 429/500/502/503/504, timeouts and network errors.
 * idempotent: deletes, edits, PUT/PATCH of settings — retried on 429/503/504, timeouts and network errors.
 * create: token create, OBO create, pool create — never retried; an unclear outcome is OUTCOME_UNKNOWN.
 */
export type CallClass = 'read' | 'idempotent' | 'create';

export interface RetryPolicy {
  /** Attempts in all, including the first (default 4). */
  maxAttempts: number;
  /** Base of the exponential backoff (default 500 ms). */
  baseDelayMs: number;
  /** Cap of one backoff step (default 30 s). */
  maxDelayMs: number;
  /** A Retry-After longer than this fails the call instead of waiting (default 60 s). */
  maxRetryAfterMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 };

export interface CallEvent {
  method: string;
  path: string;
  attempt: number;
  status?: number;
  code?: string;
  durationMs: number;
  willRetry: boolean;
}

export interface HttpOptions {
  host: string;
  tokenSource: DatabricksTokenSource;
  timeoutMs: number;
  retry: RetryPolicy;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Called after every attempt (metrics, debug logs). Never receives a secret. */
  onCall?: (event: CallEvent) => void;
  /** The workspace's shared request gate (in-flight window + rate, adaptive on 429/503). */
  gate?: HostGate;
}

export interface CallSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  kind: CallClass;
  signal?: AbortSignal;
}

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function isRetryableStatus(status: number, kind: CallClass): boolean {
  if (kind === 'create') return false;
  if (status === 429 || status === 503 || status === 504) return true;
  return kind === 'read' && (status === 500 || status === 502);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal?.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class DatabricksHttp {
  readonly host: string;
  private readonly clock: Clock;
  private readonly fetchImpl: typeof fetch;
  private readonly attempts = new AttemptSignals();

  constructor(readonly options: HttpOptions) {
    this.host = options.host.replace(/\/+$/, '');
    this.clock = options.clock ?? systemClock;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** Retry-After in seconds or as an HTTP date. */
  private retryAfterMs(header: string | null): number | undefined {
    if (!header) return undefined;
    if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
    const at = Date.parse(header);
    return Number.isNaN(at) ? undefined : Math.max(0, at - this.clock.now());
  }

  private backoffMs(attempt: number): number {
    const { baseDelayMs, maxDelayMs } = this.options.retry;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    return Math.random() * ceiling; // full jitter
  }

  private url(spec: CallSpec): string {
    const u = new URL(this.host + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  private describe(spec: CallSpec): string {
    return `${spec.method} ${spec.path} on ${this.host}`;
  }

  async call<T = Record<string, unknown>>(spec: CallSpec): Promise<T> {
    const { maxAttempts } = this.options.retry;
    const maxRetryAfterMs = this.options.retry.maxRetryAfterMs ?? DEFAULT_RETRY.maxRetryAfterMs!;
    const seconds = Math.round(this.options.timeoutMs / 100) / 10;
    let lastError: DatabricksError | undefined;
    let reauthed = false;

    for (let attempt = 1; attempt <= Math.max(1, maxAttempts); attempt++) {
      if (spec.signal?.aborted) throw this.aborted(spec);
      // Waiting for the host's gate does not count against the per-attempt timeout.
      let release: (() => void) | undefined;
      try {
        release = await this.options.gate?.acquire(spec.signal);
      } catch (err) {
        throw this.aborted(spec, err);
      }
      const timeout = this.attempts.open(spec.signal, this.options.timeoutMs);
      const signal = timeout.signal;
      const started = performance.now();
      let bearer: Awaited<ReturnType<DatabricksTokenSource['getToken']>>;
      try {
        bearer = await this.options.tokenSource.getToken(signal);
      } catch (err) {
        timeout.done();
        release?.();
        throw err;
      }
      let status: number | undefined;
      let error: DatabricksError | undefined;
      let reply: { text: string; contentType: string; requestId?: string; retryAfterHeader: string | null } | undefined;
      try {
        const res = await this.fetchImpl(this.url(spec), {
          method: spec.method,
          headers: {
            Authorization: `Bearer ${bearer.token}`,
            Accept: 'application/json',
            'User-Agent': 'keywarden',
            ...(spec.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
            ...bearer.headers,
          },
          body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
          signal,
          redirect: 'manual',
        });
        status = res.status;
        reply = {
          text: await res.text(),
          contentType: res.headers.get('content-type') ?? '',
          requestId: res.headers.get('x-request-id') ?? undefined,
          retryAfterHeader: res.headers.get('retry-after'),
        };
        if (isThrottle(status)) this.options.gate?.throttled(this.retryAfterMs(reply.retryAfterHeader));
        else this.options.gate?.succeeded();
      } catch (err) {
        if (spec.signal?.aborted) {
          // A create cancelled in flight may still have happened on the server.
          if (spec.kind === 'create') throw this.outcomeUnknown(spec, 'the caller cancelled it while it was in flight', err);
          throw this.aborted(spec, err);
        }
        const timedOut = timeout.timedOut;
        const netCode = networkCode(err);
        if (spec.kind === 'create' && (timedOut || !netCode || !NOT_SENT_CODES.has(netCode))) {
          this.report(spec, attempt, started, status, 'OUTCOME_UNKNOWN', false);
          throw this.outcomeUnknown(spec, timedOut ? `it did not answer within ${seconds} s` : `the connection failed (${netCode ?? (err as Error).message})`, err);
        }
        status = undefined; // a body that broke off mid-way is a transport failure, whatever the status line said
        error = timedOut
          ? new DatabricksError({ code: 'TIMEOUT', message: `Databricks did not answer ${this.describe(spec)} within ${seconds} s (attempt ${attempt} of ${maxAttempts}). Check the workspace's health, or raise databricks.timeoutSeconds.`, method: spec.method, path: spec.path, cause: err })
          : new DatabricksError({ code: 'NETWORK_ERROR', message: `Could not reach ${this.describe(spec)}: ${netCode ?? (err as Error).message}. Check the workspace host and the network path to it.`, method: spec.method, path: spec.path, cause: err });
      } finally {
        timeout.done();
        release?.();
      }

      let retryAfter: number | undefined;
      if (reply && status !== undefined) {
        if (status >= 200 && status < 300) {
          this.report(spec, attempt, started, status, undefined, false);
          try {
            return this.parseSuccess<T>(spec, status, reply.contentType, reply.text, reply.requestId);
          } catch (err) {
            // A create that succeeded with an unreadable answer made something we cannot see: reconcile by marker.
            if (spec.kind === 'create') throw this.outcomeUnknown(spec, `it answered ${status} but the body was unreadable`, err);
            throw err;
          }
        }
        error = this.httpError(spec, status, reply.contentType, reply.text, reply.requestId, reply.retryAfterHeader);
        retryAfter = error.retryAfterMs;
        if (spec.kind === 'create' && (status === 500 || status === 502 || status === 504)) {
          error = this.outcomeUnknown(spec, `it answered ${status} ${error.code}`, error);
        }
      }
      if (!error) throw new Error('unreachable: no reply and no error');

      // A rotated PAT: re-read it once and try again with the new one (does not count as an attempt).
      if ((status === 401 || status === 403) && !reauthed && this.options.tokenSource.rejected && await this.options.tokenSource.rejected(bearer.token, spec.signal)) {
        reauthed = true;
        attempt -= 1;
        continue;
      }
      const retryable = status === undefined ? spec.kind !== 'create' : isRetryableStatus(status, spec.kind);
      const tooLong = retryAfter !== undefined && retryAfter > maxRetryAfterMs;
      const willRetry = retryable && !tooLong && attempt < maxAttempts;
      this.report(spec, attempt, started, status, error.code, willRetry);
      lastError = error;
      if (!willRetry) throw error;
      try {
        await sleep(Math.max(retryAfter ?? 0, this.backoffMs(attempt)), spec.signal);
      } catch (err) {
        throw this.aborted(spec, err);
      }
    }
    throw lastError!;
  }

  private report(spec: CallSpec, attempt: number, started: number, status: number | undefined, code: string | undefined, willRetry: boolean): void {
    try {
      this.options.onCall?.({ method: spec.method, path: spec.path, attempt, status, code, durationMs: performance.now() - started, willRetry });
    } catch {
      /* an observer must never break a call */
    }
  }

  private parseSuccess<T>(spec: CallSpec, status: number, contentType: string, text: string, requestId?: string): T {
    if (text.trim() === '') return {} as T;
    if (!/json/i.test(contentType) && !/^\s*[{[]/.test(text)) {
      throw new DatabricksError({
        code: 'UNEXPECTED_RESPONSE', statusCode: status, requestId, method: spec.method, path: spec.path,
        message: `${this.describe(spec)} answered ${status} with ${contentType || 'a non-JSON body'}, not JSON. Check that the host is the workspace URL (https://adb-<id>.<n>.azuredatabricks.net), not the accounts console or a login page.`,
      });
    }
    let parsed: unknown;
    try {
      parsed = parseJsonLossless(text);
    } catch (err) {
      throw new DatabricksError({ code: 'UNEXPECTED_RESPONSE', statusCode: status, requestId, method: spec.method, path: spec.path, message: `${this.describe(spec)} answered ${status} with malformed JSON (cut short or not JSON). Check the workspace's health and any proxy between Keywarden and the workspace; the next scan tries again.`, cause: err });
    }
    // Every Databricks REST answer is a JSON object; null or an array would make the callers read nonsense.
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new DatabricksError({ code: 'UNEXPECTED_RESPONSE', statusCode: status, requestId, method: spec.method, path: spec.path, message: `${this.describe(spec)} answered ${status} with ${parsed === null ? 'JSON null' : Array.isArray(parsed) ? 'a JSON array' : `a JSON ${typeof parsed}`}, not a JSON object. Check that the host is the workspace URL (https://adb-<id>.<n>.azuredatabricks.net) and not a proxy that rewrites answers.` });
    }
    return parsed as T;
  }

  private httpError(spec: CallSpec, status: number, contentType: string, text: string, requestId: string | undefined, retryAfterHeader: string | null): DatabricksError {
    if (status >= 300 && status < 400) {
      return new DatabricksError({
        code: `HTTP_${status}`, statusCode: status, requestId, method: spec.method, path: spec.path,
        message: `${this.describe(spec)} was redirected (${status}), probably to a login page. Use the workspace URL (https://adb-<id>.<n>.azuredatabricks.net), not the accounts host.`,
      });
    }
    const parsed = parseErrorBody(status, contentType, text);
    const remedy = remedyFor(parsed.code, status, parsed.message);
    return new DatabricksError({
      code: parsed.code, statusCode: status, requestId: requestId ?? parsed.requestId, method: spec.method, path: spec.path,
      serverMessage: parsed.message,
      retryAfterMs: this.retryAfterMs(retryAfterHeader) ?? parsed.retryAfterMs,
      message: `${this.describe(spec)} failed: ${status} ${parsed.code}: ${parsed.message}${remedy ? ` — ${remedy}` : ''}`,
    });
  }

  private outcomeUnknown(spec: CallSpec, why: string, cause: unknown): DatabricksError {
    return new DatabricksError({
      code: 'OUTCOME_UNKNOWN', statusCode: cause instanceof DatabricksError ? cause.statusCode : undefined, method: spec.method, path: spec.path, cause,
      message: `${this.describe(spec)} may or may not have created something: ${why}. It was not retried; list and match the marker in the comment / custom_tags to adopt or remove the result before trying again.`,
    });
  }

  private aborted(spec: CallSpec, cause?: unknown): DatabricksError {
    return new DatabricksError({ code: 'ABORTED', method: spec.method, path: spec.path, cause, message: `${this.describe(spec)} was cancelled by the caller.` });
  }
}
