import { createPublicKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { Clock } from '../../src/clock.js';
import type { Logger } from '../../src/logging/logger.js';

/**
 * The Bot Framework's token signing keys, fetched from the OpenID metadata's `jwks_uri` with a bounded wait,
 * refreshed in the background, and kept when a refresh fails (botbuilder's own fetch has no timeout and drops the
 * cache on a failed refresh, which turned a slow metadata endpoint into hung requests and 500s).
 */

export interface SigningKey {
  kid: string;
  /** A KeyObject, not a CryptoKey: one key verifies RS256, RS384 and RS512 alike. */
  key: KeyObject;
  /** Channels the key may sign for (Bot Framework's `endorsements`); undefined when the key lists none. */
  endorsements?: string[];
}

export type KeyLookup =
  | { ok: true; key: SigningKey }
  /** The keys are loaded and fresh, and this kid is not among them. */
  | { ok: false; reason: 'unknown-key' }
  /** Keys could not be loaded in time: our side (or the metadata endpoint) is at fault, not the token. */
  | { ok: false; reason: 'keys-unavailable'; detail: string };

export interface SigningKeysOptions {
  metadataUrl: string;
  fetchTimeoutMs: number;
  refreshMs: number;
  /** Least time between two refreshes caused by an unknown kid (botbuilder: an hour; we: a minute). */
  cooldownMs?: number;
  clock: Clock;
  logger: Logger;
}

class KeyFetchError extends Error {
  override readonly name = 'KeyFetchError';
  readonly code = 'signing-keys-unavailable';
}

async function getJson(url: string, timeoutMs: number, what: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError';
    throw new KeyFetchError(timedOut ? `${what} did not answer within ${timeoutMs} ms (${url})` : `${what} could not be reached (${url}): ${(err as Error).message}`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new KeyFetchError(`${what} answered HTTP ${res.status} (${url})`);
  }
  try {
    return await res.json();
  } catch {
    throw new KeyFetchError(`${what} did not answer JSON (${url})`);
  }
}

export class SigningKeys {
  private keys = new Map<string, SigningKey>();
  private loadedAt: number | undefined;
  private lastAttemptAt: number | undefined;
  private lastError: string | undefined;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly options: SigningKeysOptions) {
    this.log = options.logger.child({ component: 'bot-signing-keys' });
  }

  /** Loads the keys in the background now and every refresh interval. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => { void this.refresh(); }, this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get status(): { loaded: boolean; keys: number; loadedAt?: number; lastError?: string } {
    return { loaded: this.loadedAt !== undefined, keys: this.keys.size, loadedAt: this.loadedAt, lastError: this.lastError };
  }

  /** One refresh at a time; every caller shares it. Never throws: a failure keeps the previous keys. */
  refresh(): Promise<void> {
    this.inFlight ??= this.load().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  /** The key with this id; refetches (bounded, shared, rate-limited) when the id is unknown. */
  async lookup(kid: string): Promise<KeyLookup> {
    const known = this.keys.get(kid);
    if (known) return { ok: true, key: known };
    const now = this.options.clock.now();
    // After a failed load, try again sooner: the endpoint may be back, and the shared fetch is bounded anyway.
    const failing = this.loadedAt === undefined || this.lastError !== undefined;
    const cooldown = failing ? Math.min(this.options.cooldownMs ?? 60_000, 5_000) : this.options.cooldownMs ?? 60_000;
    const recentlyTried = this.lastAttemptAt !== undefined && now - this.lastAttemptAt < cooldown;
    if (this.inFlight || !recentlyTried) await this.refresh();
    const after = this.keys.get(kid);
    if (after) return { ok: true, key: after };
    if (this.loadedAt === undefined || (this.lastError && (this.lastAttemptAt ?? 0) > (this.loadedAt ?? 0))) {
      return { ok: false, reason: 'keys-unavailable', detail: this.lastError ?? 'signing keys are not loaded yet' };
    }
    return { ok: false, reason: 'unknown-key' };
  }

  private async load(): Promise<void> {
    const { metadataUrl, fetchTimeoutMs, clock } = this.options;
    this.lastAttemptAt = clock.now();
    try {
      const metadata = await getJson(metadataUrl, fetchTimeoutMs, 'the Bot Framework OpenID metadata');
      const jwksUri = (metadata as { jwks_uri?: unknown })?.jwks_uri;
      if (typeof jwksUri !== 'string' || !/^https?:\/\//.test(jwksUri)) throw new KeyFetchError(`the OpenID metadata at ${metadataUrl} has no jwks_uri`);
      const jwks = await getJson(jwksUri, fetchTimeoutMs, 'the Bot Framework signing keys');
      const list = (jwks as { keys?: unknown })?.keys;
      if (!Array.isArray(list)) throw new KeyFetchError(`the signing keys at ${jwksUri} are not a JWKS (no "keys" array)`);
      const next = new Map<string, SigningKey>();
      for (const jwk of list as Array<JWK & { endorsements?: unknown }>) {
        if (typeof jwk?.kid !== 'string' || jwk.kty !== 'RSA') continue;
        try {
          const key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e } as never, format: 'jwk' });
          const endorsements = Array.isArray(jwk.endorsements) ? jwk.endorsements.filter((e): e is string => typeof e === 'string') : undefined;
          next.set(jwk.kid, { kid: jwk.kid, key, endorsements });
        } catch {
          this.log.warn({ kid: jwk.kid }, 'skipped a signing key that is not a valid RSA key');
        }
      }
      if (next.size === 0) throw new KeyFetchError(`the signing keys at ${jwksUri} contain no usable RSA key`);
      this.keys = next;
      this.loadedAt = clock.now();
      this.lastError = undefined;
      this.log.debug({ keys: next.size }, 'Bot Framework signing keys loaded');
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ reason: this.lastError, keptKeys: this.keys.size }, 'could not refresh the Bot Framework signing keys; keeping the ones we have');
    }
  }
}
