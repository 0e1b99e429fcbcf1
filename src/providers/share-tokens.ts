import type { AccessToken, TokenCredential } from '@azure/core-auth';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';

/**
 * One token per audience for the whole process: concurrent first calls for the same scope share one request to the
 * authority, and the token is reused until two minutes before it expires (or the credential's refresh hint).
 * Calls with claims (a CAE challenge) always go to the credential.
 */
export function shareTokens(credential: TokenCredential, clock: Clock = systemClock): TokenCredential {
  const cached = new Map<string, AccessToken>();
  const pending = new Map<string, Promise<AccessToken | null>>();
  const fresh = (t: AccessToken | undefined) => t && clock.now() < Math.min(t.expiresOnTimestamp - 120_000, t.refreshAfterTimestamp ?? Number.POSITIVE_INFINITY);
  return {
    async getToken(scopes, options) {
      if (options?.claims) return credential.getToken(scopes, options);
      // Every request asks (one string scope, no tenant): keep that key free of array and string building.
      const one = typeof scopes === 'string' ? scopes : scopes.length === 1 ? scopes[0] : undefined;
      const key = one !== undefined && !options?.tenantId ? one : `${[scopes].flat().join(' ')}|${options?.tenantId ?? ''}`;
      const hit = cached.get(key);
      if (fresh(hit)) return hit!;
      let inFlight = pending.get(key);
      if (!inFlight) {
        // Not bound to one caller's signal: another caller may be waiting on the same request.
        const { abortSignal: _ignored, ...rest } = options ?? {};
        inFlight = credential.getToken(scopes, rest).then((t) => {
          if (t) cached.set(key, t);
          return t;
        }).finally(() => pending.delete(key));
        pending.set(key, inFlight);
      }
      return inFlight;
    },
  };
}
