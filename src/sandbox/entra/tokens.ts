import { createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { TokenCheck, TokenValidator } from '../auth.js';

/** Signs and checks the emulated Entra access tokens (RS256 JWTs with v1-style app claims). */

export const DATABRICKS_RESOURCE = '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d';
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const ARM_RESOURCE = 'https://management.azure.com';
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
export const STORAGE_RESOURCE = 'https://storage.azure.com';

/** Resources the tenant can issue tokens for, keyed by normalized identifier → the `aud` Entra writes. */
const KNOWN_RESOURCES: Record<string, string> = {
  [DATABRICKS_RESOURCE]: DATABRICKS_RESOURCE,
  [GRAPH_RESOURCE]: GRAPH_RESOURCE,
  '00000003-0000-0000-c000-000000000000': GRAPH_RESOURCE,
  [ARM_RESOURCE]: `${ARM_RESOURCE}/`,
  'https://management.core.windows.net': `${ARM_RESOURCE}/`,
  [KEY_VAULT_RESOURCE]: KEY_VAULT_RESOURCE,
  [STORAGE_RESOURCE]: STORAGE_RESOURCE,
};

/** "https://vault.azure.net/.default" or "https://management.azure.com/" → "https://vault.azure.net" (lower case, no slash). */
export function normalizeResource(resourceOrScope: string): string {
  return resourceOrScope.trim().replace(/\/\.default$/i, '').replace(/\/+$/, '').toLowerCase();
}

/** Aliases of one resource compare equal (ARM answers to both management hosts; Graph to its app id). */
function canonicalAudience(audience: string): string {
  const n = normalizeResource(audience);
  const aud = KNOWN_RESOURCES[n];
  return aud ? normalizeResource(aud) : n;
}

/** The `aud` for a requested scope, or undefined when the tenant knows no such resource. */
export function audienceForScope(scope: string): string | undefined {
  return KNOWN_RESOURCES[normalizeResource(scope)];
}

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  appid: string;
  appidacr: '1' | '2';
  idtyp: 'app';
  oid: string;
  sub: string;
  tid: string;
  roles?: string[];
  ver: '1.0';
  uti: string;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

let signingKey: KeyObject | undefined;

/**
 * One RSA key per process, made on first use: a 2048-bit key costs ~250 ms of CPU, and tests start hundreds of
 * sandboxes. Tenants stay apart by kid (decode refuses another issuer's kid), as Entra's shared keys do.
 */
function processSigningKey(): KeyObject {
  signingKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return signingKey;
}

export class TokenIssuer implements TokenValidator {
  readonly kid = randomUUID().replace(/-/g, '').slice(0, 27);
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;

  /**
   * Access-token lifetimes run on real time, not the shared clock: @azure/identity caches tokens by real time, so a
   * test that moves the sandbox clock days ahead must not see every cached token suddenly expire. Credential validity
   * (secret end dates, propagation delay) stays on the shared clock, in the token endpoint.
   */
  private readonly realClock: Clock = { now: () => Date.now() };

  constructor(readonly tenantId: string, private readonly clock: Clock) {
    this.privateKey = processSigningKey();
    this.publicKey = createPublicKey(this.privateKey);
  }

  get issuer(): string {
    return `https://sts.windows.net/${this.tenantId}/`;
  }

  /** Issues a token for an app (by its service principal) and a resource; lifetime in seconds. */
  issue(input: { appId: string; spObjectId: string; audience: string; roles?: string[]; lifetimeSeconds?: number }): { token: string; expiresIn: number; claims: AccessTokenClaims } {
    const nowSec = Math.floor(this.realClock.now() / 1000);
    const lifetime = input.lifetimeSeconds ?? 3600;
    const claims: AccessTokenClaims = {
      aud: input.audience, iss: this.issuer, iat: nowSec, nbf: nowSec, exp: nowSec + lifetime,
      appid: input.appId, appidacr: '1', idtyp: 'app', oid: input.spObjectId, sub: input.spObjectId, tid: this.tenantId,
      ...(input.roles && input.roles.length > 0 ? { roles: input.roles } : {}), ver: '1.0', uti: randomUUID().replace(/-/g, ''),
    };
    const header = { typ: 'JWT', alg: 'RS256', kid: this.kid, x5t: this.kid };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), this.privateKey);
    return { token: `${signingInput}.${b64url(signature)}`, expiresIn: lifetime, claims };
  }

  /**
   * Signs arbitrary claims with the tenant's key: what Entra would sign for another tenant (Entra's keys are shared
   * across tenants) or an already-expired token, for tests of the checks a resource must make itself.
   */
  signClaims(claims: Record<string, unknown>): string {
    const header = { typ: 'JWT', alg: 'RS256', kid: this.kid, x5t: this.kid };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${signingInput}.${b64url(sign('RSA-SHA256', Buffer.from(signingInput), this.privateKey))}`;
  }

  /** Public signing keys in JWKS form (what /discovery/v2.0/keys serves). */
  jwks(): { keys: Array<Record<string, unknown>> } {
    const jwk = this.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
    return { keys: [{ kty: 'RSA', use: 'sig', kid: this.kid, x5t: this.kid, n: jwk.n, e: jwk.e, issuer: `https://login.microsoftonline.com/${this.tenantId}/v2.0` }] };
  }

  /** Decodes and verifies a token; undefined claims with a reason when it is not one of ours. */
  decode(token: string): { claims?: AccessTokenClaims; reason?: string } {
    const parts = token.split('.');
    if (parts.length !== 3) return { reason: 'the token is not a JWT (expected three dot-separated parts)' };
    const [h, p, s] = parts as [string, string, string];
    let header: { alg?: string; kid?: string };
    let claims: AccessTokenClaims;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string; kid?: string };
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as AccessTokenClaims;
    } catch {
      return { reason: 'the token is not a JWT (header or payload is not base64url JSON)' };
    }
    if (header.alg !== 'RS256' || header.kid !== this.kid) return { reason: 'the token was not signed by this tenant (unknown kid)' };
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), this.publicKey, Buffer.from(s, 'base64url'))) {
      return { reason: 'the token signature is invalid' };
    }
    return { claims };
  }

  validate(token: string, audience: string): TokenCheck {
    const { claims, reason } = this.decode(token);
    if (!claims) return { ok: false, reason: reason ?? 'invalid token' };
    const nowSec = Math.floor(this.realClock.now() / 1000);
    if (claims.tid !== this.tenantId) return { ok: false, reason: `the token is for tenant ${claims.tid}, not ${this.tenantId}` };
    if (claims.exp <= nowSec) return { ok: false, reason: `the token expired at ${new Date(claims.exp * 1000).toISOString()}` };
    if (claims.nbf > nowSec + 300) return { ok: false, reason: 'the token is not valid yet (nbf is in the future)' };
    if (canonicalAudience(claims.aud) !== canonicalAudience(audience)) {
      return { ok: false, reason: `the token audience is ${claims.aud}, expected ${audience}` };
    }
    return { ok: true, principal: { tenantId: claims.tid, appId: claims.appid, objectId: claims.oid, audience: claims.aud } };
  }
}
