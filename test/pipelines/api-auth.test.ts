import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JIT_FACTORY_PRINCIPAL_ID, KEYWARDEN_API_URI } from '../../src/sandbox/datafactory/jit-pipeline.js';
import { startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { callApi, claimsOf, factoryToken, jitBody, signWithTenantKey } from './fixture.js';

/** Must show: tokens from another tenant, for another audience, expired, unsigned or signed by an unknown key, and callers
 *  not on the allow-list get 401/403 with a JSON error naming the problem — and nothing is created. */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
}, 60_000);
afterAll(async () => h?.close());

const OTHER_TENANT = '0c0c0c0c-0000-4000-8000-00000000bad0';

function nothingCreated(): void {
  expect(h.store.list('approvals', { prefix: 'pipeline' })).toHaveLength(0);
  expect(h.jobs()).toHaveLength(0);
  expect(h.clouds.handles.databricks.workspace('ws-prod').pools().filter((p) => p.custom_tags['keywarden-request'])).toHaveLength(0);
  expect(h.connector.activities.filter((a) => /Pipeline JIT/.test(a.text ?? ''))).toHaveLength(0);
}

describe('POST /api/jit authentication', () => {
  const cases: Array<{ name: string; token: () => Promise<string | undefined> | string | undefined; status: number; code: string }> = [
    { name: 'no Authorization header', token: () => undefined, status: 401, code: 'missing_token' },
    {
      name: 'a token from another tenant (signed with the shared Entra key)',
      token: () => {
        const good = claimsOf(factoryToken(h));
        return signWithTenantKey(h, { ...good, tid: OTHER_TENANT, iss: `https://sts.windows.net/${OTHER_TENANT}/` });
      },
      status: 401, code: 'wrong_tenant',
    },
    { name: 'a token for another audience (ARM)', token: () => factoryToken(h, 'https://management.azure.com/'), status: 401, code: 'wrong_audience' },
    {
      name: 'an expired token',
      token: () => {
        const now = Math.floor(Date.now() / 1000);
        return signWithTenantKey(h, { ...claimsOf(factoryToken(h)), iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
      },
      status: 401, code: 'token_expired',
    },
    {
      name: 'an unsigned token (alg none)',
      token: () => {
        const [, payload] = factoryToken(h).split('.');
        return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
      },
      status: 401, code: 'unsigned_or_wrong_algorithm',
    },
    {
      name: 'a token signed by a key the tenant does not publish',
      token: async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return new SignJWT(claimsOf(factoryToken(h))).setProtectedHeader({ alg: 'RS256', kid: 'not-a-tenant-key', typ: 'JWT' }).sign(privateKey);
      },
      status: 401, code: 'unknown_signing_key',
    },
    {
      name: 'a tampered token (claims changed after signing)',
      token: () => {
        const [header, , signature] = factoryToken(h).split('.');
        const forged = Buffer.from(JSON.stringify({ ...claimsOf(factoryToken(h)), oid: JIT_FACTORY_PRINCIPAL_ID, roles: ['admin'] })).toString('base64url');
        return `${header}.${forged}.${signature}`;
      },
      status: 401, code: 'invalid_signature',
    },
    {
      name: 'a valid token of a caller not on the allow-list (etl-ingest)',
      token: () => h.clouds.handles.entra.issueToken(h.clouds.seeds.entra.apps['etl-ingest']!.appId, KEYWARDEN_API_URI),
      status: 403, code: 'caller_not_allowed',
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.name} with ${c.status} ${c.code}, and creates nothing`, async () => {
      const token = await c.token();
      const res = await callApi(h, 'POST', '/api/jit', token, jitBody(`run-auth-${c.code}`));
      expect(res.status).toBe(c.status);
      expect(res.body).toMatchObject({ error: { code: c.code } });
      expect(String((res.body.error as { message: string }).message).length).toBeGreaterThan(20);
      if (c.status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
      if (token) {
        expect(res.text).not.toContain(token);
        expect(res.text).not.toContain(token.split('.')[1]!);
      }
      nothingCreated();
    });
  }

  it('audits every refusal without the token', async () => {
    const refused = h.store.listAudit().filter((e) => e.action === 'pipeline.api.refused');
    expect(refused.length).toBeGreaterThanOrEqual(cases.length);
    expect(JSON.stringify(refused)).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);
  });

  it('refuses secret names outside the caller\'s prefix or vaults with 403, and bad input with 400', async () => {
    const token = factoryToken(h);
    const foreign = await callApi(h, 'POST', '/api/jit', token, jitBody('run-prefix', { tokenSecretName: 'adb-prod-etl-token' }));
    expect(foreign.status).toBe(403);
    expect(foreign.body).toMatchObject({ error: { code: 'secret_not_allowed' } });
    expect((foreign.body.error as { message: string }).message).toContain('prefix "adf-jit-"');
    const vault = await callApi(h, 'POST', '/api/jit', token, jitBody('run-vault', { vault: 'kv-dev' }));
    expect(vault.status).toBe(403);
    const bad = await callApi(h, 'POST', '/api/jit', token, jitBody('run-bad', { tokenSecretName: 'adf-jit-no_underscores', pool: { minIdleInstances: 2 } }));
    expect(bad.status).toBe(400);
    expect((bad.body.error as { problems: string[] }).problems.join('\n')).toMatch(/Key Vault secret name[\s\S]*minIdleInstances: must be 0/);
    nothingCreated();
  });
});
