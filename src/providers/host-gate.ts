/**
 * One gate per host, shared by every request Keywarden sends to it: at most `window` requests in flight and at most
 * `perSecond` started per second (token bucket), both derived from the API's published limit. The window adapts
 * (AIMD): a 429/503 halves it and pauses the host for Retry-After; successes grow it back by one per window's worth.
 * Until a host throttles, the window follows its measured round trip (rate × round trip, never below the published
 * window) so a slow service still gets its whole rate; the token bucket keeps the rate itself.
 * Pacing runs on real elapsed time (the services count real seconds), not on the injected product clock.
 */

export type ApiFamily = 'keyvault' | 'databricks' | 'graph' | 'arm';

export interface RequestLimit {
  /** Requests the service allows per second for this host (its published budget). */
  perSecond: number;
  /** Requests in flight at once: enough to use `perSecond` at a 50 ms round trip. */
  inFlight: number;
  /** Set in config: the window never grows past `inFlight` (else slower round trips let it grow, see HostGate). */
  fixed?: boolean;
}

/**
 * A window sized for 50 ms round trips leaves most of the rate unused when a service answers in 150 ms (Graph often
 * does): rate × round trip requests in flight use it (Little's law), up to this many times the published window.
 */
export const MAX_WINDOW_GROWTH = 4;

/** The most requests a limit lets the gate have in flight. */
export const maxWindowOf = (limit: RequestLimit): number => (limit.fixed ? limit.inFlight : limit.inFlight * MAX_WINDOW_GROWTH);

/** Requests in flight that use a rate at a 50 ms round trip (Azure in-region round trips are 5–50 ms); at least 4. */
export const inFlightFor = (perSecond: number): number => Math.max(4, Math.ceil(perSecond * 0.05));

const limit = (perSecond: number, source: string) => ({ perSecond, inFlight: inFlightFor(perSecond), source });

/** The published limits the defaults come from (docs/performance.md lists the sources). */
export const PUBLISHED_LIMITS: Record<ApiFamily, RequestLimit & { source: string }> = {
  // Key Vault: 4,000 secret GET transactions per 10 s per vault per region (service limits page).
  keyvault: limit(400, 'Key Vault: 4,000 transactions per 10 s per vault'),
  // Databricks: the token management API allows 40 requests/s per workspace (Azure Databricks resource limits).
  databricks: limit(40, 'Databricks: 40 requests/s per workspace (token management API)'),
  // Graph identity & access: 8,000 resource units per 10 s per app and (large) tenant; reads cost ~1 unit.
  graph: limit(800, 'Microsoft Graph: 8,000 resource units per 10 s per app and tenant'),
  // ARM: reads per subscription and principal refill at 25 per second (bucket of 250).
  arm: limit(25, 'Azure Resource Manager: 25 reads/s per subscription and principal'),
};

export type RequestLimitOverrides = Partial<Record<ApiFamily, Partial<RequestLimit>>>;

export interface GateStats {
  requests: number;
  throttled: number;
  /** Most requests that were in flight at once. */
  maxInFlight: number;
  /** Current adaptive window. */
  window: number;
}

export class GateAborted extends Error {}

interface Waiter {
  resolve(release: () => void): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
}

/** The waiters of one caller signal: one abort listener for all of them (a scan's signal is shared by thousands). */
interface SignalWatch {
  waiting: number;
  onAbort(): void;
}

export class HostGate {
  readonly stats: GateStats;
  private active = 0;
  private tokens: number;
  private refilledAt = performance.now();
  private pausedUntil = 0;
  private successes = 0;
  private readonly waiting: Waiter[] = [];
  private readonly watches = new Map<AbortSignal, SignalWatch>();
  private timer: NodeJS.Timeout | undefined;
  /** Moving average of how long a slot is held (request sent → answer read). */
  private roundTripMs = 50;

  constructor(readonly host: string, readonly limit: RequestLimit) {
    this.tokens = Math.max(1, limit.perSecond);
    this.stats = { requests: 0, throttled: 0, maxInFlight: 0, window: limit.inFlight };
  }

  /** Waits for a slot; the returned function gives it back (call it exactly once, when the answer has been read). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new GateAborted('aborted'));
    // A free slot is taken at once, with no promise executor, queue entry or abort listener.
    if (this.waiting.length === 0 && this.canStart(performance.now())) return Promise.resolve(this.start());
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, signal });
      if (signal) this.watch(signal);
      this.pump();
    });
  }

  /** Throttled (429/503): halve the window and hold every request to this host for Retry-After. */
  throttled(retryAfterMs?: number): void {
    this.stats.throttled += 1;
    this.stats.window = Math.max(1, Math.floor(this.stats.window / 2));
    this.successes = 0;
    const pause = Math.min(retryAfterMs ?? 1_000, 60_000);
    this.pausedUntil = Math.max(this.pausedUntil, performance.now() + pause);
  }

  /** The window the rate allows at the measured round trip: from the published window up to its maximum. */
  private ceiling(): number {
    if (this.limit.fixed) return this.limit.inFlight;
    const needed = Math.ceil((this.limit.perSecond * this.roundTripMs) / 1000);
    return Math.min(maxWindowOf(this.limit), Math.max(this.limit.inFlight, needed));
  }

  /** An answer that was not throttling: the window follows the round trip, or (after a throttle) grows back by one. */
  succeeded(): void {
    const ceiling = this.ceiling();
    if (this.stats.throttled === 0) {
      if (this.stats.window === ceiling) return;
      const grew = ceiling > this.stats.window;
      this.stats.window = ceiling;
      if (grew) this.pump();
      return;
    }
    if (this.stats.window >= ceiling) return;
    this.successes += 1;
    if (this.successes >= this.stats.window) {
      this.successes = 0;
      this.stats.window += 1;
      this.pump();
    }
  }

  /** Runs `task` inside a slot, feeding the answer's status back (for callers that see the status directly). */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await task();
    } finally {
      release();
    }
  }

  /** Whether a request may start now (window, pause and rate); refills the bucket. */
  private canStart(now: number): boolean {
    const cap = Math.max(1, this.limit.perSecond);
    this.tokens = Math.min(cap, this.tokens + ((now - this.refilledAt) / 1000) * this.limit.perSecond);
    this.refilledAt = now;
    return this.active < this.stats.window && now >= this.pausedUntil && this.tokens >= 1;
  }

  /** Takes a slot; the returned function gives it back once. */
  private start(): () => void {
    this.tokens -= 1;
    this.active += 1;
    this.stats.requests += 1;
    if (this.active > this.stats.maxInFlight) this.stats.maxInFlight = this.active;
    let released = false;
    const startedAt = performance.now();
    return () => {
      if (released) return;
      released = true;
      this.roundTripMs += (performance.now() - startedAt - this.roundTripMs) * 0.1;
      this.active -= 1;
      if (this.waiting.length > 0) this.pump();
    };
  }

  private pump(): void {
    const now = performance.now();
    while (this.waiting.length > 0 && this.canStart(now)) {
      const waiter = this.waiting.shift()!;
      if (waiter.signal) this.unwatch(waiter.signal);
      waiter.resolve(this.start());
    }
    if (this.waiting.length === 0 || this.active >= this.stats.window) return;
    if (now < this.pausedUntil) this.wake(this.pausedUntil - now);
    else this.wake(((1 - this.tokens) / this.limit.perSecond) * 1000);
  }

  private watch(signal: AbortSignal): void {
    const known = this.watches.get(signal);
    if (known) {
      known.waiting += 1;
      return;
    }
    const watch: SignalWatch = {
      waiting: 1,
      onAbort: () => {
        this.watches.delete(signal);
        const reason = signal.reason ?? new GateAborted('aborted');
        const gone = this.waiting.filter((w) => w.signal === signal);
        this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((w) => w.signal !== signal));
        for (const w of gone) w.reject(reason);
      },
    };
    this.watches.set(signal, watch);
    signal.addEventListener('abort', watch.onAbort, { once: true });
  }

  private unwatch(signal: AbortSignal): void {
    const watch = this.watches.get(signal);
    if (!watch || --watch.waiting > 0) return;
    this.watches.delete(signal);
    signal.removeEventListener('abort', watch.onAbort);
  }

  private wake(afterMs: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, Math.ceil(afterMs)));
    this.timer.unref?.();
  }
}

/** The gates of one Keywarden process, by host; each API family's defaults can be overridden in config. */
export class HostGates {
  private readonly gates = new Map<string, HostGate>();

  constructor(private readonly overrides: RequestLimitOverrides = {}) {}

  limitFor(family: ApiFamily): RequestLimit {
    const published = PUBLISHED_LIMITS[family];
    const o = this.overrides[family] ?? {};
    const perSecond = o.perSecond ?? published.perSecond;
    if (o.inFlight !== undefined) return { perSecond, inFlight: o.inFlight, fixed: true };
    return { perSecond, inFlight: o.perSecond !== undefined ? inFlightFor(perSecond) : published.inFlight };
  }

  /** The gate for a URL's host (one per host:port, whatever path or family asks). */
  for(url: string, family: ApiFamily): HostGate {
    const host = hostOf(url);
    let gate = this.gates.get(host);
    if (!gate) {
      gate = new HostGate(host, this.limitFor(family));
      this.gates.set(host, gate);
    }
    return gate;
  }

  all(): HostGate[] {
    return [...this.gates.values()];
  }
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return url.toLowerCase();
  }
}

/** Whether a status says "slow down" (the gate halves its window). */
export const isThrottle = (status: number | undefined): boolean => status === 429 || status === 503;
