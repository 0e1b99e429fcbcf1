import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { GraphClient } from '../../src/providers/entra/graph.js';
import { verifyClientSecret } from '../../src/providers/entra/verify.js';
import { jwtClaims, startSeededEntra, type EntraFixture } from './entra-fixtures.js';

// The emulated token endpoint, driven by the real @azure/identity ClientSecretCredential (MSAL underneath).

let f: EntraFixture;
beforeAll(async () => {
  f = await startSeededEntra();
});
afterAll(async () => {
  await f?.entra.close();
});

const SCOPES: Array<[string, string]> = [
  ['2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default', '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d'],
  ['https://graph.microsoft.com/.default', 'https://graph.microsoft.com'],
  ['https://management.azure.com/.default', 'https://management.azure.com/'],
  ['https://vault.azure.net/.default', 'https://vault.azure.net'],
];

describe('Entra token endpoint', () => {
  it.each(SCOPES)('gives ClientSecretCredential a JWT for %s that the emulators accept', async (scope, aud) => {
    const credential = f.keywardenCredential();
    const token = await credential.getToken(scope);
    expect(token.tokenType).toBe('Bearer');
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 50 * 60_000);
    const claims = jwtClaims(token.token);
    expect(claims).toMatchObject({
      aud, tid: f.seeded.tenantId, appid: f.seeded.keywarden.clientId, oid: f.seeded.apps['keywarden-bot']!.spObjectId, idtyp: 'app',
    });
    // Token lifetimes run on real time (the SDK caches tokens by real time), not on the shared clock.
    expect(Math.abs(Number(claims.exp) - (Math.floor(Date.now() / 1000) + 3599))).toBeLessThanOrEqual(5);
    expect(f.entra.validator.validate(token.token, aud)).toMatchObject({ ok: true, principal: { appId: f.seeded.keywarden.clientId } });
    // A token for one resource is refused by another.
    const other = aud === 'https://vault.azure.net' ? 'https://graph.microsoft.com' : 'https://vault.azure.net';
    expect(f.entra.validator.validate(token.token, other)).toMatchObject({ ok: false });
  });

  it('speaks the discovery protocol MSAL uses: openid-configuration, then the token POST with client-request-id in the query', async () => {
    f.entra.authority.clearRequests();
    await f.credentialFor(f.seeded.keywarden.clientId, f.seeded.keywarden.clientSecret).getToken('https://graph.microsoft.com/.default');
    const seen = f.entra.authority.requests.map((r) => `${r.method} ${r.path}`);
    expect(seen).toEqual([
      `GET /${f.seeded.tenantId}/v2.0/.well-known/openid-configuration`,
      `POST /${f.seeded.tenantId}/oauth2/v2.0/token`,
    ]);
    expect(f.entra.authority.requests[1]!.query).toMatch(/client-request-id=/);
    const doc = await (await fetch(`${f.entra.authorityHost}/${f.seeded.tenantId}/v2.0/.well-known/openid-configuration`)).json() as Record<string, string>;
    expect(doc.token_endpoint).toBe(`${f.entra.authorityHost}/${f.seeded.tenantId}/oauth2/v2.0/token`);
    const keys = await (await fetch(doc.jwks_uri!)).json() as { keys: Array<{ kty: string }> };
    expect(keys.keys[0]!.kty).toBe('RSA');
  });

  it('carries the granted Graph application permissions as roles in Graph tokens', async () => {
    const token = await f.keywardenCredential().getToken('https://graph.microsoft.com/.default');
    expect(jwtClaims(token.token).roles).toEqual(['Application.Read.All', 'Application.ReadWrite.OwnedBy', 'GroupMember.Read.All', 'User.ReadBasic.All', 'AuditLog.Read.All']);
  });

  it('answers a wrong secret with an AADSTS7000215 invalid_client body shaped like Entra\'s', async () => {
    const res = await fetch(`${f.entra.authorityHost}/${f.seeded.tenantId}/oauth2/v2.0/token?client-request-id=abc-123`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: f.seeded.keywarden.clientId, client_secret: 'wrong-secret-value', scope: 'https://graph.microsoft.com/.default' }),
    });
    expect(res.status).toBe(401);
    const body = await res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'invalid_client', error_codes: [7000215], correlation_id: 'abc-123' });
    expect(body.error_description).toMatch(/^AADSTS7000215: Invalid client secret provided\..*Trace ID: .*Correlation ID: abc-123 Timestamp: /);
    expect(body).toHaveProperty('trace_id');
    expect(body).toHaveProperty('timestamp');
    expect(JSON.stringify(body)).not.toContain('wrong-secret-value');
  });

  it('refuses unknown apps, unknown tenants, non-/.default scopes and unknown resources with their AADSTS codes', async () => {
    const post = async (tenant: string, form: Record<string, string>) => {
      const res = await fetch(`${f.entra.authorityHost}/${tenant}/oauth2/v2.0/token`, { method: 'POST', body: new URLSearchParams(form) });
      return { status: res.status, body: await res.json() as { error: string; error_codes: number[] } };
    };
    const base = { grant_type: 'client_credentials', client_id: f.seeded.keywarden.clientId, client_secret: f.seeded.keywarden.clientSecret };
    expect(await post(f.seeded.tenantId, { ...base, client_id: '99999999-9999-4999-8999-999999999999', scope: 'https://graph.microsoft.com/.default' }))
      .toMatchObject({ status: 400, body: { error: 'unauthorized_client', error_codes: [700016] } });
    expect(await post('00000000-0000-0000-0000-00000000dead', { ...base, scope: 'https://graph.microsoft.com/.default' }))
      .toMatchObject({ status: 400, body: { error_codes: [90002] } });
    expect(await post(f.seeded.tenantId, { ...base, scope: 'https://graph.microsoft.com/User.Read' }))
      .toMatchObject({ status: 400, body: { error: 'invalid_scope', error_codes: [1002012] } });
    expect(await post(f.seeded.tenantId, { ...base, scope: 'https://unknown.example.com/.default' }))
      .toMatchObject({ status: 400, body: { error: 'invalid_resource', error_codes: [500011] } });
    expect(await post(f.seeded.tenantId, { ...base, grant_type: 'password', scope: 'https://graph.microsoft.com/.default' }))
      .toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
  });

  it('accepts a service-principal-level password (it authenticates too)', async () => {
    const app = f.seeded.apps['reporting-svc']!;
    const { secretText } = f.entra.directory.addPassword({ kind: 'servicePrincipal', id: app.spObjectId }, { endDateTime: f.clock.now() + DAY_MS, addedAt: -Infinity });
    await expect(f.credentialFor(app.appId, secretText).getToken('https://vault.azure.net/.default')).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  it('refuses a new secret during the propagation delay, then accepts it once the clock has moved past it', async () => {
    f.entra.propagationDelayMs = 30_000;
    try {
      const graph = new GraphClient({ baseUrl: f.entra.graphUrl, credential: f.keywardenCredential(), clock: f.clock });
      const etl = f.seeded.apps['etl-ingest']!;
      const added = await graph.addPassword(etl.objectId, { displayName: 'rotation-propagation', endDateTime: f.clock.now() + 30 * DAY_MS });
      const verify = () => verifyClientSecret({ tenantId: f.seeded.tenantId, clientId: etl.appId, secret: added.secretText, authorityHost: f.entra.authorityHost });
      const early = await verify();
      expect(early).toMatchObject({ ok: false, code: 'AADSTS7000215', transient: true });
      expect(JSON.stringify(early)).not.toContain(added.secretText);
      f.clock.advance(29_000);
      expect((await verify()).ok).toBe(false);
      f.clock.advance(2_000);
      expect(await verify()).toEqual({ ok: true });
    } finally {
      f.entra.propagationDelayMs = 0;
    }
  });

  it('refuses a removed secret and an expired one (AADSTS7000222, not transient)', async () => {
    const graph = new GraphClient({ baseUrl: f.entra.graphUrl, credential: f.keywardenCredential(), clock: f.clock });
    const etl = f.seeded.apps['etl-ingest']!;
    const added = await graph.addPassword(etl.objectId, { displayName: 'rotation-to-remove', endDateTime: f.clock.now() + 30 * DAY_MS });
    const verify = (secret: string) => verifyClientSecret({ tenantId: f.seeded.tenantId, clientId: etl.appId, secret, authorityHost: f.entra.authorityHost });
    expect(await verify(added.secretText)).toEqual({ ok: true });
    expect(await graph.removePassword(etl.objectId, added.keyId)).toBe('removed');
    expect(await verify(added.secretText)).toMatchObject({ ok: false, code: 'AADSTS7000215' });

    // The seeded etl-ingest secret expires in 14 days.
    expect(await verify(f.seeded.etlSecret.value)).toEqual({ ok: true });
    const { secretText } = f.entra.directory.addPassword({ kind: 'application', id: etl.objectId }, {
      displayName: 'short-lived', startDateTime: f.clock.now(), endDateTime: f.clock.now() + 60_000, addedAt: -Infinity,
    });
    f.clock.advance(61_000);
    const expired = await verify(secretText);
    expect(expired).toMatchObject({ ok: false, code: 'AADSTS7000222', transient: false });
    if (!expired.ok) expect(expired.reason).toMatch(/expired/);
  });
});
