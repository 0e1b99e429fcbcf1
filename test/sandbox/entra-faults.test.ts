import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { GraphClient } from '../../src/providers/entra/graph.js';
import { verifyClientSecret } from '../../src/providers/entra/verify.js';
import { startSeededEntra, type EntraFixture } from './entra-fixtures.js';

// Injected throttling, server errors and latency on Graph and the token endpoint, as the clients see them.

let f: EntraFixture;
const client = (opts: { timeoutMs?: number; maxRetries?: number; backoffBaseMs?: number } = {}) =>
  new GraphClient({ baseUrl: f.entra.graphUrl, credential: f.keywardenCredential(), clock: f.clock, backoffBaseMs: 10, ...opts });

beforeAll(async () => {
  f = await startSeededEntra();
});
afterAll(async () => {
  await f?.entra.close();
});
beforeEach(() => {
  f.entra.graph.clearFaults();
  f.entra.graph.setLatency(0);
  f.entra.graph.clearRequests();
  f.entra.authority.clearFaults();
  f.entra.authority.setLatency(0);
});

describe('Graph faults through GraphClient', () => {
  it('waits out a 429 with Retry-After and then succeeds', async () => {
    f.entra.graph.injectFault({ method: 'GET', path: '/v1.0/applications', status: 429, retryAfter: 1, times: 1 });
    const started = Date.now();
    const apps = await client().listApplications();
    expect(apps).toHaveLength(6);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(f.entra.graph.requests.map((r) => [r.status, r.injected])).toEqual([[429, 'fault'], [200, undefined]]);
  });

  it('backs off on 429 without Retry-After and on 503, then succeeds', async () => {
    f.entra.graph.injectFault({ path: '/v1.0/servicePrincipals', status: 429, times: 2 });
    f.entra.graph.injectFault({ path: '/v1.0/servicePrincipals', status: 503, times: 1 });
    expect(await client().listServicePrincipals()).toHaveLength(6);
    expect(f.entra.graph.requests.map((r) => r.status)).toEqual([429, 429, 503, 200]);
  });

  it('gives up after the retry budget with a typed GraphError carrying Graph\'s code', async () => {
    f.entra.graph.injectFault({ path: '/v1.0/applications', status: 500, times: Infinity });
    const err = await client({ maxRetries: 2 }).listApplications().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'GraphError', statusCode: 500, code: 'generalException' });
    expect(f.entra.graph.requests).toHaveLength(3);
  });

  it('times out a slow Graph with code Timeout, and tolerates latency within the timeout', async () => {
    f.entra.graph.setLatency(400);
    await expect(client({ timeoutMs: 100, maxRetries: 0 }).listApplications()).rejects.toMatchObject({ code: 'Timeout', statusCode: 0 });
    f.entra.graph.setLatency(50);
    expect(await client({ timeoutMs: 10_000 }).listApplications()).toHaveLength(6);
  });

  it('honours the caller\'s AbortSignal', async () => {
    f.entra.graph.setLatency(500);
    const controller = new AbortController();
    const pending = client().listApplications({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('scan cancelled')), 50);
    await expect(pending).rejects.toThrow('scan cancelled');
  });

  it('never retries addPassword blindly: a timed-out add that landed anyway is removed before the one retry', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    // The first add answers after the client gave up, but Graph still creates the secret.
    f.entra.graph.injectFault({ method: 'POST', path: '/addPassword', status: 0, latencyMs: 250, times: 1 });
    const added = await client({ timeoutMs: 150, backoffBaseMs: 100 }).addPassword(etl.objectId, { displayName: 'rotation-timeout', endDateTime: f.clock.now() + 30 * DAY_MS });
    const app = f.entra.directory.applications.get(etl.objectId)!;
    const mine = app.passwordCredentials.filter((p) => p.displayName === 'rotation-timeout');
    expect(mine.map((p) => p.keyId)).toEqual([added.keyId]);
    const calls = f.entra.graph.requests.filter((r) => r.method === 'POST').map((r) => r.path.split('/').pop());
    // Logged as answered: the late add, the orphan's removal, then the retry.
    expect(calls).toEqual(['addPassword', 'removePassword', 'addPassword']);
  });

  it('does not retry addPassword on a 4xx and leaves nothing behind', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    f.entra.graph.injectFault({ method: 'POST', path: '/addPassword', status: 400, times: 1, body: { error: { code: 'CredentialInvalidLifetimeAsPerAppPolicy', message: 'Credential lifetime exceeds the max value allowed as per assigned policy.' } } });
    await expect(client().addPassword(etl.objectId, { displayName: 'rotation-policy', endDateTime: f.clock.now() + 900 * DAY_MS }))
      .rejects.toMatchObject({ statusCode: 400, code: 'CredentialInvalidLifetimeAsPerAppPolicy' });
    expect(f.entra.graph.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});

describe('Token endpoint faults through @azure/identity', () => {
  it('MSAL retries one 503 (with Retry-After) and gets the token', async () => {
    f.entra.authority.injectFault({ method: 'POST', path: '/oauth2/v2.0/token', status: 503, retryAfter: 1, times: 1 });
    f.entra.authority.clearRequests();
    const token = await f.keywardenCredential().getToken('https://vault.azure.net/.default');
    expect(token.token).toMatch(/^eyJ/);
    expect(f.entra.authority.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([503, 200]);
  });

  it('reports persistent 500s as a transient verification failure, not as a bad secret', async () => {
    f.entra.authority.injectFault({ method: 'POST', path: '/oauth2/v2.0/token', status: 500, times: Infinity });
    const result = await verifyClientSecret({ tenantId: f.seeded.tenantId, clientId: f.seeded.keywarden.clientId, secret: f.seeded.keywarden.clientSecret, authorityHost: f.entra.authorityHost });
    expect(result).toMatchObject({ ok: false, transient: true });
    expect(JSON.stringify(result)).not.toContain(f.seeded.keywarden.clientSecret);
  });

  it('still issues tokens behind injected latency', async () => {
    f.entra.authority.setLatency(200);
    const started = Date.now();
    const result = await verifyClientSecret({ tenantId: f.seeded.tenantId, clientId: f.seeded.keywarden.clientId, secret: f.seeded.keywarden.clientSecret, authorityHost: f.entra.authorityHost });
    expect(result).toEqual({ ok: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
  });
});
