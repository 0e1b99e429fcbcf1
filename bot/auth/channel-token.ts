import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { SigningKeys } from './signing-keys.js';

/**
 * Checks the Bot Connector's JWT on an inbound activity, per Bot Framework's channel rules (botbuilder's
 * ChannelValidation): RS256/384/512 signature by a key from the metadata's JWKS, issuer api.botframework.com,
 * audience = our app id, 5 minutes of clock skew, the key endorsed for the activity's channel, and the token's
 * `serviceurl` equal to the activity's. We add: the tenant must be ours unless the bot is MultiTenant. Emulator
 * (Entra-issued) tokens are refused: Teams never sends them.
 */

export type AuthRefusalReason =
  | 'missing-token' | 'malformed-token' | 'unsupported-algorithm' | 'unknown-key' | 'bad-signature'
  | 'wrong-issuer' | 'wrong-audience' | 'expired' | 'not-yet-valid' | 'not-endorsed' | 'wrong-service-url' | 'wrong-tenant';

export type ChannelTokenCheck =
  | { ok: true; claims: JWTPayload }
  | { ok: false; status: 401; reason: AuthRefusalReason; message: string; kid?: string }
  /** We could not check (signing keys unavailable): the caller answers 503, not 401. */
  | { ok: false; status: 503; reason: 'keys-unavailable'; message: string };

export interface ChannelTokenRules {
  appId: string;
  issuer: string;
  /** Required tenant of the activity (and of a `tid` claim), or undefined for MultiTenant. */
  tenantId?: string;
  clockToleranceSeconds?: number;
}

export interface InboundActivityFacts {
  channelId?: string;
  serviceUrl?: string;
  /** channelData.tenant.id ?? conversation.tenantId */
  tenantId?: string;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512'];

function refuse(reason: AuthRefusalReason, message: string, kid?: string): ChannelTokenCheck {
  return { ok: false, status: 401, reason, message, ...(kid ? { kid } : {}) };
}

const sameUrl = (a: string, b: string): boolean => a.replace(/\/+$/, '').toLowerCase() === b.replace(/\/+$/, '').toLowerCase();

export async function checkChannelToken(authorization: string | undefined, activity: InboundActivityFacts, rules: ChannelTokenRules, keys: SigningKeys): Promise<ChannelTokenCheck> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!m) return refuse('missing-token', 'send the Bot Connector token as "Authorization: Bearer <jwt>"');
  const token = m[1]!;

  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    return refuse('malformed-token', 'the bearer token is not a JWT');
  }
  // Cheap refusals first, before any key lookup can cost a network call.
  if (!header.alg || !ALGORITHMS.includes(header.alg)) return refuse('unsupported-algorithm', `tokens signed with ${String(header.alg ?? 'no algorithm')} are not accepted; expected RS256`);
  if (!header.kid) return refuse('malformed-token', 'the token names no signing key (kid)');
  if (unverified.iss !== rules.issuer) return refuse('wrong-issuer', `the token was not issued by ${rules.issuer}`, header.kid);

  const found = await keys.lookup(header.kid);
  if (!found.ok) {
    if (found.reason === 'keys-unavailable') return { ok: false, status: 503, reason: 'keys-unavailable', message: 'the Bot Framework signing keys cannot be fetched right now; retry shortly' };
    return refuse('unknown-key', 'the token was signed by a key the Bot Framework does not publish', header.kid);
  }

  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(token, found.key.key, {
      algorithms: ALGORITHMS, issuer: rules.issuer, audience: rules.appId,
      clockTolerance: rules.clockToleranceSeconds ?? 300, requiredClaims: ['exp'],
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return refuse('expired', 'the token has expired', header.kid);
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      if (err.claim === 'aud') return refuse('wrong-audience', 'the token is for another bot (audience is not our app id)', header.kid);
      if (err.claim === 'iss') return refuse('wrong-issuer', `the token was not issued by ${rules.issuer}`, header.kid);
      if (err.claim === 'nbf' || err.claim === 'iat') return refuse('not-yet-valid', 'the token is not valid yet', header.kid);
      return refuse('malformed-token', `the token's ${err.claim} claim is missing or invalid`, header.kid);
    }
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) return refuse('bad-signature', 'the token signature does not verify', header.kid);
    return refuse('malformed-token', 'the token could not be verified', header.kid);
  }

  const endorsements = found.key.endorsements;
  if (endorsements && activity.channelId && !endorsements.includes(activity.channelId)) {
    return refuse('not-endorsed', `the signing key is not endorsed for channel ${activity.channelId}`, header.kid);
  }
  const serviceUrlClaim = claims.serviceurl;
  if (typeof serviceUrlClaim !== 'string' || !activity.serviceUrl || !sameUrl(serviceUrlClaim, activity.serviceUrl)) {
    return refuse('wrong-service-url', "the token's serviceurl claim does not match the activity's serviceUrl", header.kid);
  }
  if (rules.tenantId) {
    const tid = claims.tid;
    if ((typeof tid === 'string' && tid !== rules.tenantId) || (activity.tenantId && activity.tenantId !== rules.tenantId)) {
      return refuse('wrong-tenant', 'the activity comes from another tenant than this single-tenant bot serves', header.kid);
    }
  }
  return { ok: true, claims };
}
