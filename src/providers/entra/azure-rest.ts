import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import { redactText } from '../../logging/redact.js';
import { AttemptSignals } from '../attempt-signal.js';
import { isThrottle, type HostGate } from '../host-gate.js';

/**
 * One authenticated JSON call to an Azure REST API (Graph, ARM) over fetch: bearer token per request (the
 * credential caches), timeout + caller AbortSignal, and retries of safe requests on 429/5xx honouring Retry-After.
 * Shared by the Graph and Data Factory clients.
 */

export class AzureRestError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'AzureRestError';
  }
}

export interface AzureRestClientOptions {
  credential: TokenCredential;
  /** e.g. "https://graph.microsoft.com/.default". */
  scope: string;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Per attempt (default 30 s). */
  timeoutMs?: number;
  /** Retries after the first attempt for safe requests (default 4). */
  maxRetries?: number;
  /** Longest Retry-After we wait for; a longer one fails at once (default 60 s). */
  maxRetryAfterMs?: number;
  /** Base of the exponential backoff when no Retry-After is given (default 500 ms). */
  backoffBaseMs?: number;
  /** Names the service in error messages, e.g. "Microsoft Graph". */
  service: string;
  /** The host's shared request gate (in-flight window + rate, adaptive on 429/503). */
  gate?: HostGate;
}

/** What a service client built on AzureRestClient takes (Graph, Data Factory). */
export interface AzureServiceClientOptions {
  /** The service root, e.g. https://graph.microsoft.com or https://management.azure.com. */
  baseUrl: string;
  credential: TokenCredential;
  clock?: Clock;
  fetch?: typeof fetch;
  timeoutMs?: number;
  maxRetries?: number;
  backoffBaseMs?: number;
  maxRetryAfterMs?: number;
  /** Token scope (default: the service's own, whatever host baseUrl names). */
  scope?: string;
  /** The service host's shared request gate (src/providers/host-gate.ts). */
  gate?: HostGate;
}

/** The REST client a service client sends through: its options, with the service's default scope and its name for messages. */
export function restClientFor(options: AzureServiceClientOptions, service: { defaultScope: string; name: string }): AzureRestClient {
  return new AzureRestClient({
    credential: options.credential, scope: options.scope ?? service.defaultScope, clock: options.clock,
    fetch: options.fetch, timeoutMs: options.timeoutMs, maxRetries: options.maxRetries, backoffBaseMs: options.backoffBaseMs,
    maxRetryAfterMs: options.maxRetryAfterMs, service: service.name, gate: options.gate,
  });
}

export interface AzureRestRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  signal?: AbortSignal;
  /** 'safe' = may be retried on throttling/5xx/network errors; 'never' = one attempt (creates). */
  retry: 'safe' | 'never';
}

export interface AzureRestResponse {
  status: number;
  headers: Headers;
  body: unknown;
  requestId?: string;
  /** Retry-After in ms when the server sent one. */
  retryAfterMs?: number;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE.has(status);
}

/** Retry-After as seconds or an HTTP date; also Azure's retry-after-ms / x-ms-retry-after-ms. */
export function parseRetryAfter(headers: Headers, nowMs: number): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const v = headers.get(name);
    if (v !== null && Number.isFinite(Number(v))) return Math.max(0, Number(v));
  }
  const raw = headers.get('retry-after');
  if (raw === null) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw.trim())) return Math.max(0, Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

export function sleepWithSignal(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A transport failure (no HTTP answer): timeout, connection refused, TLS… */
export class TransportFailure extends Error {
  constructor(readonly kind: 'timeout' | 'network', message: string) {
    super(message);
  }
}

export class AzureRestClient {
  readonly clock: Clock;
  private readonly fetchImpl: typeof fetch;
  private readonly attempts = new AttemptSignals();

  constructor(readonly options: AzureRestClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  get timeoutMs(): number {
    return this.options.timeoutMs ?? 30_000;
  }

  get maxRetries(): number {
    return this.options.maxRetries ?? 4;
  }

  /** Delay before retry number `attempt` (0-based): Retry-After when given, else exponential backoff with jitter. */
  retryDelay(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return retryAfterMs;
    const base = this.options.backoffBaseMs ?? 500;
    const exp = Math.min(base * 2 ** attempt, 8_000);
    return exp / 2 + Math.random() * (exp / 2);
  }

  /** Whether a Retry-After is short enough to wait for. */
  willWait(retryAfterMs: number | undefined): boolean {
    return retryAfterMs === undefined || retryAfterMs <= (this.options.maxRetryAfterMs ?? 60_000);
  }

  /** Sends with retries (when `retry: 'safe'`); returns the final response whatever its status. */
  async send(req: AzureRestRequest): Promise<AzureRestResponse> {
    for (let attempt = 0; ; attempt += 1) {
      const last = attempt >= this.maxRetries || req.retry === 'never';
      let res: AzureRestResponse;
      try {
        res = await this.once(req);
      } catch (err) {
        if (!(err instanceof TransportFailure) || last) throw this.transportError(err, req);
        await sleepWithSignal(this.retryDelay(attempt, undefined), req.signal);
        continue;
      }
      if (!isRetryableStatus(res.status) || last || !this.willWait(res.retryAfterMs)) return res;
      await sleepWithSignal(this.retryDelay(attempt, res.retryAfterMs), req.signal);
    }
  }

  /** One attempt: token, fetch with timeout, JSON body. Throws TransportFailure when no answer came back. */
  async once(req: AzureRestRequest): Promise<AzureRestResponse> {
    const gate = this.options.gate;
    if (!gate) return this.attempt(req);
    // Waiting for the host's gate does not count against the per-attempt timeout.
    const release = await gate.acquire(req.signal);
    try {
      const res = await this.attempt(req);
      if (isThrottle(res.status)) gate.throttled(res.retryAfterMs);
      else gate.succeeded();
      return res;
    } finally {
      release();
    }
  }

  private async attempt(req: AzureRestRequest): Promise<AzureRestResponse> {
    const token = await this.token(req.signal);
    const timeoutMs = this.timeoutMs;
    const attempt = this.attempts.open(req.signal, timeoutMs);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json', 'client-request-id': randomUUID() };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(req.url, { method: req.method, headers, body: req.body === undefined ? undefined : JSON.stringify(req.body), signal: attempt.signal });
      text = await response.text();
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason ?? err;
      if (attempt.timedOut) throw new TransportFailure('timeout', `no answer within ${timeoutMs} ms`);
      throw new TransportFailure('network', (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
    } finally {
      attempt.done();
    }
    let body: unknown;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    return {
      status: response.status,
      headers: response.headers,
      body,
      requestId: response.headers.get('request-id') ?? response.headers.get('x-ms-request-id') ?? undefined,
      retryAfterMs: parseRetryAfter(response.headers, this.clock.now()),
    };
  }

  private async token(signal?: AbortSignal): Promise<string> {
    try {
      const token = await this.options.credential.getToken(this.options.scope, { abortSignal: signal });
      if (!token) throw new Error('the credential returned no token');
      return token.token;
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new AzureRestError('AuthenticationFailed', 401,
        `Could not get a token for ${this.options.service} (scope ${this.options.scope}): ${redactText((err as Error).message)} — check azure.tenantId, azure.authorityHost and azure.credential in the config (and that the app secret is still valid).`);
    }
  }

  private transportError(err: unknown, req: AzureRestRequest): Error {
    if (err instanceof TransportFailure) {
      const code = err.kind === 'timeout' ? 'Timeout' : 'NetworkError';
      return new AzureRestError(code, 0, `${this.options.service} ${req.method} ${new URL(req.url).pathname} failed: ${redactText(err.message)} — check the URL in the config and that the service is reachable.`);
    }
    return err as Error;
  }
}

/** `{"error":{"code","message"}}` (Graph, ARM, Key Vault) → code and message, with fallbacks. */
export function errorFromBody(body: unknown, status: number): { code: string; message: string } {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : `Http${status}`;
  const message = typeof error?.message === 'string' ? error.message : typeof body === 'string' && body ? body.slice(0, 300) : `HTTP ${status}`;
  return { code, message: redactText(message) };
}

/**
 * One page of an OData/ARM collection, or why the answer is not one. A 200 of the wrong shape (a proxy's HTML page,
 * `{"value":"x"}`) must fail the scan of that estate, never read as "no items" (which would resolve every alert).
 */
export function collectionPage<T>(body: unknown, nextKey: '@odata.nextLink' | 'nextLink'): { items: T[]; next?: string } | { problem: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    const what = typeof body === 'string' ? (/^\s*</.test(body) ? 'an HTML page' : 'text') : body === undefined ? 'an empty body' : Array.isArray(body) ? 'a JSON array' : `JSON ${typeof body}`;
    return { problem: `${what}, not a JSON collection` };
  }
  const { value } = body as { value?: unknown };
  if (!Array.isArray(value)) return { problem: `"value" ${value === undefined ? 'missing' : `as ${typeof value}`}, not a JSON collection` };
  const next = (body as Record<string, unknown>)[nextKey];
  if (next !== undefined && next !== null && typeof next !== 'string') return { problem: `"${nextKey}" that is not a URL` };
  // Items that are not objects cannot be resources; skip them rather than fail a whole tenant.
  return { items: value.filter((v): v is T => Boolean(v) && typeof v === 'object' && !Array.isArray(v)), next: typeof next === 'string' && next ? next : undefined };
}

/**
 * Every item of an OData/ARM collection, following its next links. The errors are worded by the caller (its service
 * and the fix): an answer other than 200, a 200 of the wrong shape, and a service that never stops paging.
 */
export async function listAllPages<T>(rest: AzureRestClient, firstUrl: string, input: PagingInput): Promise<T[]> {
  const out: T[] = [];
  await eachPage<T>(rest, firstUrl, input, async (items) => {
    for (const item of items) out.push(item);
  });
  return out;
}

export type PagingInput = {
  nextKey: '@odata.nextLink' | 'nextLink';
  signal?: AbortSignal;
  failed(res: AzureRestResponse): Error;
  wrongShape(res: AzureRestResponse, problem: string): Error;
  looping(): Error;
};

/** The same collection page by page: the next page is asked for once `onPage` resolves (one page held at a time). */
export async function eachPage<T>(rest: AzureRestClient, firstUrl: string, input: PagingInput, onPage: (items: T[]) => Promise<void>): Promise<void> {
  let next: string | undefined = firstUrl;
  for (let pages = 0; next; pages += 1) {
    if (pages > 10_000) throw input.looping();
    const res: AzureRestResponse = await rest.send({ method: 'GET', url: next, signal: input.signal, retry: 'safe' });
    if (res.status !== 200) throw input.failed(res);
    const page = collectionPage<T>(res.body, input.nextKey);
    if ('problem' in page) throw input.wrongShape(res, page.problem);
    next = page.next;
    await onPage(page.items);
  }
}
