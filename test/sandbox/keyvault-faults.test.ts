import { SecretClient } from '@azure/keyvault-secrets';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeyVaultError } from '../../src/providers/keyvault/errors.js';
import { KeyVaultSecrets } from '../../src/providers/keyvault/client.js';
import type { KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { startKeyVaultEmulator } from '../../src/sandbox/keyvault/emulator.js';
import { fakeCredential, KEYWARDEN_APP, newToken, sandboxTls, simpleValidator, TENANT } from './keyvault-fixtures.js';

// Faults and latency injected at the emulator, observed through the real SDK client (and its retry policy).

const token = newToken();
let kv: KeyVaultEmulatorHandle;

beforeAll(async () => {
  kv = await startKeyVaultEmulator({ tls: sandboxTls(), tenantId: TENANT, tokenValidator: simpleValidator({ [token]: { appId: KEYWARDEN_APP } }), vaults: [{ name: 'kv-faulty' }] });
  kv.vault('kv-faulty').seedSecret('steady', { value: 'steady-value' });
});
afterAll(async () => {
  await kv?.close();
});
beforeEach(() => {
  kv.clearFaults();
  kv.setLatency(0);
  kv.clearOperations();
});

const sdk = (retryDelayInMs = 20) => new SecretClient(kv.vault('kv-faulty').url, fakeCredential(token), {
  disableChallengeResourceVerification: true, retryOptions: { retryDelayInMs, maxRetryDelayInMs: 200 },
});
const provider = (maxRetries = 3) => new KeyVaultSecrets({
  vault: { name: 'kv-faulty', url: kv.vault('kv-faulty').url }, credential: fakeCredential(token),
  disableChallengeResourceVerification: true, retryOptions: { maxRetries, retryDelayInMs: 20, maxRetryDelayInMs: 200 },
});

describe('Key Vault emulator faults through the SDK', () => {
  it('a 429 with Retry-After is waited out and retried by the SDK', async () => {
    const c = sdk();
    await c.getSecret('steady'); // challenge done
    kv.clearOperations();
    kv.injectFault({ method: 'GET', path: '/secrets/steady', status: 429, retryAfter: 1, times: 1 });
    const started = Date.now();
    expect((await c.getSecret('steady')).value).toBe('steady-value');
    const seen = kv.vault('kv-faulty').server.requests.map((r) => [r.status, r.injected]);
    expect(seen).toEqual([[429, 'fault'], [200, undefined]]);
    // The SDK honoured the header (about 1 s); a generous lower bound only.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('the throttling body matches the service', async () => {
    kv.injectFault({ status: 429, retryAfter: 3 });
    const res = await fetch(`${kv.vault('kv-faulty').url}/secrets?api-version=7.4`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await res.json()).toMatchObject({ error: { code: 'Throttled' } });
  });

  it('a 500 is retried by the SDK and the call succeeds', async () => {
    const c = sdk();
    await c.getSecret('steady');
    kv.clearOperations();
    kv.injectFault({ path: '/secrets', status: 500, times: 2 });
    const names: string[] = [];
    for await (const p of c.listPropertiesOfSecrets()) names.push(p.name);
    expect(names).toEqual(['steady']);
    expect(kv.vault('kv-faulty').server.requests.map((r) => r.status)).toEqual([500, 500, 200]);
  });

  it('a vault that keeps failing surfaces as a typed KeyVaultError after the retries', async () => {
    kv.injectFault({ path: '/secrets', status: 503, times: Infinity });
    const err = await provider(2).listSecretProperties().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyVaultError);
    expect(err).toMatchObject({ code: 'ServiceError', statusCode: 503, vault: 'kv-faulty' });
    expect((err as Error).message).toMatch(/kv-faulty answered HTTP 503/);
  });

  it('a 429 storm without Retry-After ends as a Throttled KeyVaultError with a fix', async () => {
    kv.injectFault({ path: '/secrets', status: 429, times: Infinity });
    const err = await provider(1).listSecretProperties().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'KeyVaultError', code: 'Throttled', statusCode: 429 });
    expect((err as Error).message).toMatch(/concurrencyPerHost/);
  });

  it('latency slows answers but they still arrive; an AbortSignal cancels a slow call', async () => {
    const p = provider();
    await p.listSecretProperties();
    kv.setLatency(300);
    const started = Date.now();
    expect((await p.listSecretProperties()).map((s) => s.name)).toEqual(['steady']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);

    kv.setLatency(5_000);
    const err = await p.listSecretProperties({ signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'KeyVaultError', code: 'Aborted', vault: 'kv-faulty' });
    kv.setLatency(0);
  });

  it('latency injected per fault delays only matching requests', async () => {
    const c = sdk();
    await c.getSecret('steady');
    kv.injectFault({ path: '/secrets/steady', status: 0, latencyMs: 200 });
    const started = Date.now();
    expect((await c.getSecret('steady')).value).toBe('steady-value');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });
});
