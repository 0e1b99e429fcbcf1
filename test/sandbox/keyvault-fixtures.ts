import { randomBytes } from 'node:crypto';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { DAY_MS } from '../../src/clock.js';
import type { TokenValidator } from '../../src/sandbox/auth.js';
import type { SeededEntraSecret, SeededPat } from '../../src/sandbox/keyvault/seed.js';
import { ensureSandboxTls, TEST_CA_DIR } from '../../src/sandbox/tls.js';

/** Shared test helpers for the Key Vault emulator and provider tests (protocol-edge fakes only). */

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const KEYWARDEN_APP = '11111111-1111-4111-8111-000000000003';
export const OTHER_APP = '11111111-1111-4111-8111-0000000000ff';

export const sandboxTls = () => ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR);

export interface RecordingCredential extends TokenCredential {
  calls: Array<{ scopes: string[]; tenantId?: string }>;
}

/** The plain-object TokenCredential the reference recommends for SDK tests. */
export function fakeCredential(token: string): RecordingCredential {
  const calls: RecordingCredential['calls'] = [];
  return {
    calls,
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
      calls.push({ scopes: Array.isArray(scopes) ? scopes : [scopes], tenantId: options?.tenantId });
      return { token, expiresOnTimestamp: Date.now() + 3_600_000, tokenType: 'Bearer' };
    },
  };
}

/** Accepts the listed tokens for Key Vault only, as issued to the given appIds in TENANT. */
export function simpleValidator(tokens: Record<string, { appId: string; tenantId?: string }>): TokenValidator & { audiences: string[] } {
  const audiences: string[] = [];
  return {
    audiences,
    validate(token, audience) {
      audiences.push(audience);
      const p = tokens[token];
      if (!p) return { ok: false, reason: 'unknown or expired token' };
      if (audience !== 'https://vault.azure.net') return { ok: false, reason: `wrong audience ${audience}` };
      return { ok: true, principal: { tenantId: p.tenantId ?? TENANT, appId: p.appId, audience } };
    },
  };
}

export const newToken = (): string => `kvtest-${randomBytes(12).toString('hex')}`;

export const fakePat = (): string => `dapi${randomBytes(16).toString('hex')}`;

/** Stand-ins for what the Databricks and Entra seeds hand to the Key Vault seed. */
export function crossEstateInputs(now: number): { tokens: SeededPat[]; etlSecret: SeededEntraSecret } {
  const pat = (workspace: string, comment: string, tokenId: string, days: number): SeededPat => ({
    workspace, comment, tokenId, value: fakePat(), expiryTime: now + days * DAY_MS,
  });
  return {
    tokens: [
      pat('ws-prod', 'adf-etl', 'a1f7c3e2b9d04c8e9f1a2b3c4d5e6f70a1f7c3e2b9d04c8e9f1a2b3c4d5e6f7', 7),
      pat('ws-prod', 'reporting', 'b2e8d4f3c0e15d9f0a2b3c4d5e6f7a81b2e8d4f3c0e15d9f0a2b3c4d5e6f7a8', 30),
      pat('ws-prod', 'bob-jdbc', 'c3f9e5a4d1f26e0a1b3c4d5e6f7a8b92c3f9e5a4d1f26e0a1b3c4d5e6f7a8b9', 14),
      pat('ws-prod', 'legacy-never', 'd4a0f6b5e2a37f1b2c4d5e6f7a8b9ca3d4a0f6b5e2a37f1b2c4d5e6f7a8b9ca', 0),
      pat('ws-dev', 'dev-ci', 'e5b1a7c6f3b48a2c3d5e6f7a8b9cadb4e5b1a7c6f3b48a2c3d5e6f7a8b9cadb', 1),
    ],
    etlSecret: {
      keyId: '5f1a9c2e-8b7d-4e3f-a6c5-0d9e8f7a6b5c',
      value: `etl${'8Q~'}${randomBytes(24).toString('base64url').slice(0, 31)}`,
      endDateTime: new Date(now + 14 * DAY_MS).toISOString(),
      appId: '11111111-1111-4111-8111-000000000001',
    },
  };
}
