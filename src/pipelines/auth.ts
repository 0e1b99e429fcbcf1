/**
 * Who is calling the pipeline API: an Entra access token (a Data Factory's managed identity), verified with `jose`
 * against the tenant's published signing keys — signature, algorithm, audience, expiry, tenant, issuer — and the
 * caller's object id looked up in config.pipelines.callers. Every refusal names the problem; no token is ever echoed.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { KeywardenConfig, PipelineCallerConfig } from '../config/schema.js';

export interface PipelineCaller {
  objectId: string;
  tenantId: string;
  /** Client (application) id of the caller's service principal, when the token names it. */
  appId?: string;
  config: PipelineCallerConfig;
}

export interface AuthRefusal {
  ok: false;
  status: 401 | 403 | 503;
  code: string;
  message: string;
}

export type AuthResult = { ok: true; caller: PipelineCaller } | AuthRefusal;

export interface CallerAuthenticator {
  authenticate(authorization: string | undefined): Promise<AuthResult>;
  /** What the API accepts, for error messages and docs. */
  readonly audiences: readonly string[];
  readonly tenantId: string | undefined;
}

const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com';

const refuse = (status: AuthRefusal['status'], code: string, message: string): AuthRefusal => ({ ok: false, status, code, message });

/** The tenant's accepted issuers: v1 (sts.windows.net) and v2 (authority/{tid}/v2.0) tokens. */
export function issuersFor(tenantId: string, authorityHost: string): string[] {
  return [`https://sts.windows.net/${tenantId}/`, `${authorityHost.replace(/\/+$/, '')}/${tenantId}/v2.0`];
}

export function createCallerAuthenticator(config: KeywardenConfig): CallerAuthenticator {
  const p = config.pipelines;
  const tenantId = p.tenantId ?? config.azure.tenantId;
  const authority = (p.authorityHost ?? config.azure.authorityHost ?? DEFAULT_AUTHORITY).replace(/\/+$/, '');
  const audiences = p.audiences;
  const callers = new Map(p.callers.map((c) => [c.objectId.toLowerCase(), c]));
  // Keys are fetched on first use and cached; an unknown kid refetches at most every 30 s (jose's cooldown).
  const jwks = tenantId ? createRemoteJWKSet(new URL(`${authority}/${tenantId}/discovery/v2.0/keys`), { timeoutDuration: 5000 }) : undefined;

  async function authenticate(authorization: string | undefined): Promise<AuthResult> {
    if (!tenantId || !jwks || audiences.length === 0) {
      return refuse(503, 'api_not_configured', 'the pipeline API is not configured: set pipelines.audiences and pipelines.tenantId (or azure.tenantId)');
    }
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) return refuse(401, 'missing_token', 'send an Entra access token as "Authorization: Bearer <token>" (ADF Web activity: authentication type MSI with resource = Keywarden\'s app ID URI)');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, { audience: audiences, algorithms: ['RS256'], clockTolerance: 300, requiredClaims: ['exp', 'iss', 'tid', 'oid'] }));
    } catch (err) {
      return describeJoseError(err, audiences);
    }
    const tid = String(payload.tid);
    if (tid.toLowerCase() !== tenantId.toLowerCase()) return refuse(401, 'wrong_tenant', `the token was issued by tenant ${tid}; Keywarden accepts tokens of tenant ${tenantId} only`);
    if (!issuersFor(tenantId, authority).includes(String(payload.iss))) {
      return refuse(401, 'wrong_issuer', `the token's issuer ${String(payload.iss)} is not one of ${issuersFor(tenantId, authority).join(', ')}`);
    }
    const oid = String(payload.oid).toLowerCase();
    const caller = callers.get(oid);
    if (!caller) {
      return refuse(403, 'caller_not_allowed', `the caller (object id ${oid}) is not on the pipeline allow-list; register it under pipelines.callers with its limits`);
    }
    const appId = typeof payload.appid === 'string' ? payload.appid : typeof payload.azp === 'string' ? payload.azp : undefined;
    return { ok: true, caller: { objectId: oid, tenantId: tid, ...(appId ? { appId } : {}), config: caller } };
  }

  return { authenticate, audiences, tenantId };
}

function describeJoseError(err: unknown, audiences: readonly string[]): AuthRefusal {
  if (err instanceof errors.JWTExpired) return refuse(401, 'token_expired', 'the token has expired; get a new one from Entra (ADF does this on every activity run)');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return refuse(401, 'wrong_audience', `the token is for another resource; ask Entra for a token with resource ${audiences.join(' or ')}`);
    if (err.claim === 'nbf') return refuse(401, 'token_not_yet_valid', 'the token is not valid yet (nbf is in the future); check the caller\'s clock');
    return refuse(401, 'invalid_claims', `the token's "${err.claim}" claim is missing or invalid (${err.reason})`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return refuse(401, 'unsigned_or_wrong_algorithm', 'the token is unsigned or not signed with RS256; only Entra-signed tokens are accepted');
  }
  if (err instanceof errors.JWKSNoMatchingKey) return refuse(401, 'unknown_signing_key', 'the token was signed by a key the tenant does not publish');
  if (err instanceof errors.JWSSignatureVerificationFailed) return refuse(401, 'invalid_signature', 'the token signature does not verify against the tenant\'s keys');
  if (err instanceof errors.JWKSTimeout || err instanceof TypeError) return refuse(503, 'keys_unavailable', 'Keywarden could not fetch the tenant\'s signing keys right now; retry shortly');
  if (err instanceof errors.JOSEError) return refuse(401, 'malformed_token', `the bearer value is not a valid signed JWT (${err.code})`);
  return refuse(503, 'keys_unavailable', `token validation failed: ${(err as Error).message.slice(0, 200)}`);
}
