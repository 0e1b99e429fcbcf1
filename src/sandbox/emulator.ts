import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { SandboxTls } from './tls.js';

/** What every emulator shares: an HTTP(S) server with a request log, fault and latency injection, and a control API. */

export interface EmulatorRequest {
  method: string;
  /** Decoded path without query, e.g. "/api/2.0/token/create". */
  path: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  bodyText: string;
  /** Parses the body as JSON; throws EmulatorBadJson (answered 400) when it is not. */
  json<T = unknown>(): T;
}

export interface EmulatorResponse {
  status: number;
  headers?: Record<string, string>;
  /** Objects are sent as JSON (use `rawJson` for bodies with big-number ids); strings as text. */
  body?: unknown;
  /** Pre-serialized JSON text (lets an emulator write 16-digit ids as bare numbers). */
  rawJson?: string;
}

export type EmulatorHandler = (req: EmulatorRequest) => EmulatorResponse | Promise<EmulatorResponse>;

export interface RecordedRequest {
  at: number;
  method: string;
  path: string;
  query: string;
  status: number;
  /** The bearer credential's first 8 chars (never the whole token), for "who called" assertions. */
  authPrefix?: string;
  /** Whether a body was sent (the body itself is not kept: it may hold secret values). */
  hasBody: boolean;
  injected?: 'fault' | undefined;
}

export interface Fault {
  /** Matches when both are satisfied; omitted = any. `path` is a substring or a RegExp. */
  method?: string;
  path?: string | RegExp;
  status: number;
  /** Seconds for a Retry-After header (omit for none). */
  retryAfter?: number;
  body?: unknown;
  /** Response headers, e.g. { 'content-type': 'text/html' } for a login page, or application/json for a truncated body. */
  headers?: Record<string, string>;
  /** How many matching requests get the fault (default 1; Infinity = until cleared). */
  times?: number;
  /** Extra delay for matching requests (with status 0: delay only, then handle normally). */
  latencyMs?: number;
  /**
   * A broken connection instead of an answer: 'stall' accepts the request and never answers, 'reset' drops the
   * connection, 'truncate' sends the headers and half the body, then drops it. `status` is ignored (use 0).
   */
  network?: 'stall' | 'reset' | 'truncate';
  /** Apply the fault after the request was handled: the change happened, the caller never learns it (outcome unknown). */
  afterHandling?: boolean;
}

/**
 * A service's request budget, enforced like Azure does: a token bucket of `burst` requests refilled at `perSecond`;
 * a request past it is answered 429 with Retry-After and does not count (Key Vault's documented behaviour).
 */
export interface RateLimit {
  perSecond: number;
  /** Bucket size (default: one second's worth). */
  burst?: number;
  /** Retry-After seconds on a 429 (default: the time until the next token, rounded up to a second). */
  retryAfterSeconds?: number;
}

/** What the server saw since the last reset: for "never more than N in flight" and "connections were reused". */
export interface EmulatorLoad {
  inFlight: number;
  maxInFlight: number;
  /** Requests answered 429 by the rate limit. */
  throttled: number;
  /** TCP/TLS connections accepted. */
  connections: number;
}

export class EmulatorBadJson extends Error {}

export interface EmulatorOptions {
  name: string;
  handler: EmulatorHandler;
  tls?: SandboxTls;
  clock?: Clock;
  /** Error body for injected faults when a fault has no body. */
  faultBody?: (status: number) => unknown;
}

export class EmulatorServer {
  readonly name: string;
  readonly requests: RecordedRequest[] = [];
  private readonly server: http.Server | https.Server;
  private faults: Array<Fault & { remaining: number }> = [];
  private latencyMs = 0;
  private baseUrl = '';
  private readonly clock: Clock;
  private readonly sockets = new Set<import('node:net').Socket>();
  private rateLimit: (RateLimit & { tokens: number; refilledAt: number }) | undefined;
  readonly load: EmulatorLoad = { inFlight: 0, maxInFlight: 0, throttled: 0, connections: 0 };

  constructor(private readonly options: EmulatorOptions) {
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    const listener = (req: http.IncomingMessage, res: http.ServerResponse) => void this.dispatch(req, res);
    this.server = options.tls
      ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener)
      : http.createServer(listener);
    this.server.on(options.tls ? 'secureConnection' : 'connection', () => { this.load.connections += 1; });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.baseUrl = `${this.options.tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
    return this.baseUrl;
  }

  get url(): string {
    return this.baseUrl;
  }

  injectFault(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  setLatency(ms: number): void {
    this.latencyMs = Math.max(0, ms);
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Enforces a request budget (429 + Retry-After past it); undefined removes it. Control requests are never limited. */
  setRateLimit(limit: RateLimit | undefined): void {
    this.rateLimit = limit ? { ...limit, tokens: limit.burst ?? limit.perSecond, refilledAt: performance.now() } : undefined;
  }

  /** Starts a new load window (in-flight peak, 429s, connections). */
  resetLoad(): void {
    Object.assign(this.load, { maxInFlight: this.load.inFlight, throttled: 0, connections: 0 });
  }

  /** Takes a token, or says how many ms until one is free. Real time: budgets are per real second. */
  private overBudget(): number | undefined {
    const limit = this.rateLimit;
    if (!limit) return undefined;
    const now = performance.now();
    const cap = limit.burst ?? limit.perSecond;
    limit.tokens = Math.min(cap, limit.tokens + ((now - limit.refilledAt) / 1000) * limit.perSecond);
    limit.refilledAt = now;
    if (limit.tokens >= 1) {
      limit.tokens -= 1;
      return undefined;
    }
    return ((1 - limit.tokens) / limit.perSecond) * 1000;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private takeFault(method: string, path: string): (Fault & { remaining: number }) | undefined {
    const f = this.faults.find((x) =>
      x.remaining > 0 &&
      (!x.method || x.method.toUpperCase() === method) &&
      (!x.path || (typeof x.path === 'string' ? path.includes(x.path) : x.path.test(path))));
    if (f) f.remaining -= 1;
    this.faults = this.faults.filter((x) => x.remaining > 0);
    return f;
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bodyText = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://emulator.local');
    const method = (req.method ?? 'GET').toUpperCase();
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const auth = req.headers.authorization;
    const record: RecordedRequest = {
      at: this.clock.now(), method, path, query: url.search, status: 0, hasBody: bodyText.length > 0,
      authPrefix: auth ? auth.replace(/^Bearer\s+/i, '').slice(0, 8) : undefined,
    };

    let response: EmulatorResponse;
    let broken: Fault['network'];
    let inFlight = false;
    // Counted until the answer is handed to the socket.
    const done = () => {
      if (inFlight) this.load.inFlight -= 1;
      inFlight = false;
    };
    try {
      if (path.startsWith('/_emulator/')) {
        response = this.control(method, path, bodyText);
      } else {
        this.load.inFlight += 1;
        this.load.maxInFlight = Math.max(this.load.maxInFlight, this.load.inFlight);
        inFlight = true;
        const waitMs = this.overBudget();
        if (this.latencyMs > 0) await sleep(this.latencyMs);
        const fault = waitMs === undefined ? this.takeFault(method, path) : undefined;
        if (fault?.latencyMs) await sleep(fault.latencyMs);
        const injected = (): EmulatorResponse => {
          record.injected = 'fault';
          broken = fault!.network;
          const headers: Record<string, string> = { ...fault!.headers };
          if (fault!.retryAfter !== undefined) headers['retry-after'] = String(fault!.retryAfter);
          return { status: fault!.status, headers, body: fault!.body ?? this.options.faultBody?.(fault!.status) ?? { error: `injected ${fault!.status}` } };
        };
        if (waitMs !== undefined) {
          this.load.throttled += 1;
          const retryAfter = this.rateLimit?.retryAfterSeconds ?? Math.max(1, Math.ceil(waitMs / 1000));
          response = { status: 429, headers: { 'retry-after': String(retryAfter) }, body: this.options.faultBody?.(429) ?? { error: { code: 'Throttled', message: 'Rate limit is exceeded. Try again later.' } } };
        } else if (fault && !fault.afterHandling && (fault.status > 0 || fault.network)) {
          response = injected();
        } else {
          const request: EmulatorRequest = {
            method, path, url, headers: req.headers, bodyText,
            json<T>() {
              try {
                return JSON.parse(bodyText || 'null') as T;
              } catch {
                throw new EmulatorBadJson('request body is not valid JSON');
              }
            },
          };
          response = await this.options.handler(request);
          if (fault?.afterHandling && fault.network) broken = (injected(), fault.network);
          else if (fault?.afterHandling && fault.status > 0) response = injected();
        }
      }
    } catch (err) {
      response = err instanceof EmulatorBadJson
        ? { status: 400, body: { error: { code: 'BadRequest', message: err.message } } }
        : { status: 500, body: { error: { code: 'InternalError', message: `emulator ${this.name} failed: ${(err as Error).message}` } } };
    }

    done();
    record.status = response.status;
    if (!path.startsWith('/_emulator/')) this.requests.push(record);
    const headers: Record<string, string> = { ...(response.headers ?? {}) };
    let payload = '';
    if (response.rawJson !== undefined) {
      payload = response.rawJson;
      headers['content-type'] ??= 'application/json; charset=utf-8';
    } else if (typeof response.body === 'string') {
      payload = response.body;
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else if (response.body !== undefined) {
      payload = JSON.stringify(response.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    headers['content-length'] = String(Buffer.byteLength(payload));
    if (broken === 'stall') return; // the socket stays open until the caller gives up or the server closes
    if (broken === 'reset') {
      req.socket.destroy();
      return;
    }
    res.writeHead(response.status, headers);
    if (broken === 'truncate') {
      res.write(payload.slice(0, Math.floor(payload.length / 2)));
      setImmediate(() => req.socket.destroy());
      return;
    }
    res.end(payload);
  }

  /** Control API: GET requests, POST faults / latency, DELETE faults. */
  private control(method: string, path: string, bodyText: string): EmulatorResponse {
    if (path === '/_emulator/requests' && method === 'GET') return { status: 200, body: { requests: this.requests } };
    if (path === '/_emulator/requests' && method === 'DELETE') {
      this.clearRequests();
      return { status: 204 };
    }
    if (path === '/_emulator/faults' && method === 'POST') {
      const f = JSON.parse(bodyText || '{}') as Fault & { pathRegex?: string };
      if (typeof f.status !== 'number') return { status: 400, body: { error: 'fault needs a numeric "status"' } };
      this.injectFault({ ...f, path: f.pathRegex ? new RegExp(f.pathRegex) : f.path, times: f.times ?? 1 });
      return { status: 201, body: { ok: true } };
    }
    if (path === '/_emulator/faults' && method === 'DELETE') {
      this.clearFaults();
      return { status: 204 };
    }
    if (path === '/_emulator/rate-limit' && method === 'POST') {
      const limit = JSON.parse(bodyText || '{}') as Partial<RateLimit>;
      if (limit.perSecond === undefined) {
        this.setRateLimit(undefined);
        return { status: 200, body: { rateLimit: null } };
      }
      if (!(Number(limit.perSecond) > 0)) return { status: 400, body: { error: 'rate limit needs a positive "perSecond"' } };
      this.setRateLimit({ perSecond: Number(limit.perSecond), burst: limit.burst, retryAfterSeconds: limit.retryAfterSeconds });
      return { status: 200, body: { rateLimit: limit } };
    }
    if (path === '/_emulator/latency' && method === 'POST') {
      const { ms } = JSON.parse(bodyText || '{}') as { ms?: number };
      this.setLatency(Number(ms ?? 0));
      return { status: 200, body: { latencyMs: this.latencyMs } };
    }
    return { status: 404, body: { error: `unknown control path ${path}` } };
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** JSON.stringify that writes bigint values as bare JSON numbers (Databricks' 16-digit ids). */
export function jsonWithBigInts(value: unknown): string {
  const marker = '__bigint__';
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${marker}${v.toString()}${marker}` : v));
  return text.replace(new RegExp(`"${marker}(-?\\d+)${marker}"`, 'g'), '$1');
}
