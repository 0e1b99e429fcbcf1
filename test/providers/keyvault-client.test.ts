import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { redactText } from '../../src/logging/redact.js';
import { createKeyVaultSecrets, KeyVaultSecrets } from '../../src/providers/keyvault/client.js';
import { KeyVaultError } from '../../src/providers/keyvault/errors.js';
import type { KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { startKeyVaultEmulator } from '../../src/sandbox/keyvault/emulator.js';
import { fakeCredential, KEYWARDEN_APP, newToken, sandboxTls, simpleValidator, TENANT } from '../sandbox/keyvault-fixtures.js';

// The KeyVaultSecrets provider over the real SecretClient against the emulator.

const START = Date.UTC(2026, 10, 22, 9, 0, 0);
const clock = new AdjustableClock({ frozenAt: START });
const token = newToken();
let kv: KeyVaultEmulatorHandle;
let secrets: KeyVaultSecrets;

const make = (opts: { token?: string; verify?: boolean } = {}) => new KeyVaultSecrets({
  vault: { name: 'kv-test', url: `${kv.vault('kv-test').url}/` },
  credential: fakeCredential(opts.token ?? token),
  disableChallengeResourceVerification: opts.verify === false ? false : true,
  retryOptions: { maxRetries: 0 },
});

beforeAll(async () => {
  kv = await startKeyVaultEmulator({
    tls: sandboxTls(), tenantId: TENANT, clock, tokenValidator: simpleValidator({ [token]: { appId: KEYWARDEN_APP } }),
    vaults: [{ name: 'kv-test' }, { name: 'kv-other' }], pageSize: 2,
  });
  secrets = make();
});
afterAll(async () => {
  await kv?.close();
});
beforeEach(() => {
  kv.clearOperations();
  for (const v of kv.vaults.values()) v.clearAccessList();
});

describe('KeyVaultSecrets', () => {
  it('sets a secret with tags, expiry and content type and returns its properties (epoch ms), not its value', async () => {
    const expiresOn = START + 7 * DAY_MS;
    const info = await secrets.setSecret('adb-token', 'dapi0123456789abcdef0123456789abcdef', {
      tags: { 'managed-by': 'keywarden' }, expiresOn, contentType: 'application/x-databricks-pat',
    });
    expect(info).toMatchObject({
      vault: 'kv-test', name: 'adb-token', enabled: true, expiresAt: expiresOn, createdAt: START, updatedAt: START,
      contentType: 'application/x-databricks-pat', tags: { 'managed-by': 'keywarden' }, managed: false,
    });
    expect(info.version).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(info)).not.toContain('dapi0123');
    // Registered before the write: the value can no longer reach a log line.
    expect(redactText('leak dapi0123456789abcdef0123456789abcdef')).not.toContain('0123456789abcdef');
    expect(kv.vault('kv-test').readStoredValue('adb-token')).toBe('dapi0123456789abcdef0123456789abcdef');
  });

  it('lists properties and versions (paged) and gets properties of the current or a given version without reading a value', async () => {
    const first = await secrets.setSecret('rotating', 'first-value-123');
    clock.advance(60_000);
    const second = await secrets.setSecret('rotating', 'second-value-456', { tags: { 'rotation-id': 'job-1' } });
    clock.advance(60_000);
    const third = await secrets.setSecret('rotating', 'third-value-789');
    kv.clearOperations();

    const versions = await secrets.listVersions('rotating');
    expect(versions.map((v) => v.version)).toEqual([first.version, second.version, third.version]);
    expect(await secrets.getSecretProperties('rotating')).toMatchObject({ version: third.version, createdAt: START + 120_000 });
    expect(await secrets.getSecretProperties('rotating', second.version)).toMatchObject({ version: second.version, tags: { 'rotation-id': 'job-1' } });
    const all = await secrets.listSecretProperties();
    expect(all.map((s) => s.name).sort()).toEqual(['adb-token', 'rotating']);
    expect(all.find((s) => s.name === 'rotating')).toMatchObject({ version: undefined, createdAt: START + 120_000 });

    expect(kv.valueReads()).toEqual([]);
    expect(kv.operations().every((o) => !o.valueRead && !o.mutating)).toBe(true);
    expect(kv.vault('kv-test').server.requests.some((r) => r.query.includes('$skiptoken'))).toBe(true);
  });

  it('reads a value (latest or by version) for workflows and registers it for redaction', async () => {
    const v1 = await secrets.setSecret('pat-for-auth', 'dapiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    await secrets.setSecret('pat-for-auth', 'plain-looking-secret-value');
    const latest = await secrets.readSecretValue('pat-for-auth');
    expect(latest.value).toBe('plain-looking-secret-value');
    expect(latest.properties.name).toBe('pat-for-auth');
    expect((await secrets.readSecretValue('pat-for-auth', v1.version)).value).toBe('dapiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    expect(redactText('x plain-looking-secret-value y')).toBe('x [REDACTED] y');
    expect(kv.valueReads().map((o) => o.secret)).toEqual(['pat-for-auth', 'pat-for-auth']);
  });

  it('updates properties of a version (disable, new expiry, tags replace the set)', async () => {
    const v = await secrets.setSecret('to-update', 'some-value-abc', { tags: { a: '1', b: '2' } });
    const expiresOn = new Date(START + 30 * DAY_MS);
    const updated = await secrets.updateSecretProperties('to-update', v.version!, { enabled: false, expiresOn, tags: { c: '3' } });
    expect(updated).toMatchObject({ version: v.version, enabled: false, expiresAt: expiresOn.getTime(), tags: { c: '3' } });
    expect(kv.vault('kv-test').versions('to-update')[0]).toMatchObject({ enabled: false, tags: { c: '3' } });
  });

  it('one SecretClient per vault: the 401 challenge and getToken happen once for many calls', async () => {
    const credential = fakeCredential(token);
    const clients = createKeyVaultSecrets({
      vaults: [{ name: 'kv-test', url: kv.vault('kv-test').url }, { name: 'kv-other', url: kv.vault('kv-other').url }],
      credential, disableChallengeResourceVerification: true,
    });
    const c = clients.get('kv-other')!;
    await c.setSecret('one', 'value-one-xyz');
    await c.listSecretProperties();
    await c.listVersions('one');
    expect(kv.vault('kv-other').server.requests.filter((r) => r.status === 401)).toHaveLength(1);
    expect(credential.calls).toHaveLength(1);
  });
});

describe('KeyVaultSecrets errors', () => {
  it('403 without permission → Forbidden naming the vault, the permission and the role to grant', async () => {
    kv.vault('kv-test').allow(KEYWARDEN_APP, ['get']);
    const err = await secrets.listSecretProperties().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyVaultError);
    expect(err).toMatchObject({ code: 'Forbidden', statusCode: 403, vault: 'kv-test' });
    expect((err as Error).message).toMatch(/lacks 'List secrets' on vault kv-test: grant it the Key Vault Reader role/);

    const write = await secrets.setSecret('blocked', 'blocked-value-123').catch((e: unknown) => e);
    expect(write).toMatchObject({ code: 'Forbidden', serviceCode: 'ForbiddenByPolicy', secret: 'blocked' });
    expect((write as Error).message).toMatch(/lacks 'Set secrets'.*Key Vault Secrets Officer/);
    expect((write as Error).message).not.toContain('blocked-value-123');
  });

  it('a disabled version → SecretDisabled; a missing secret → SecretNotFound; a deleted name → Conflict', async () => {
    const v = await secrets.setSecret('disabled-one', 'disabled-value-123');
    await secrets.updateSecretProperties('disabled-one', v.version!, { enabled: false });
    await expect(secrets.readSecretValue('disabled-one')).rejects.toMatchObject({ code: 'SecretDisabled', statusCode: 403, secret: 'disabled-one' });
    await expect(secrets.readSecretValue('no-such-secret')).rejects.toMatchObject({ code: 'SecretNotFound', statusCode: 404 });
    await expect(secrets.getSecretProperties('no-such-secret')).rejects.toMatchObject({ code: 'SecretNotFound' });
    await expect(secrets.getSecretProperties('disabled-one', 'f'.repeat(32))).rejects.toMatchObject({ code: 'SecretNotFound' });

    await secrets.setSecret('deleted-one', 'deleted-value-123');
    await fetch(`${kv.vault('kv-test').url}/secrets/deleted-one?api-version=7.4`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const conflict = await secrets.setSecret('deleted-one', 'new-value-after-delete').catch((e: unknown) => e) as KeyVaultError;
    expect(conflict).toMatchObject({ code: 'Conflict', statusCode: 409 });
    expect(conflict.message).toMatch(/recover it .* or purge it/);
    expect(conflict.message).not.toContain('new-value-after-delete');
  });

  it('a rejected token → Unauthorized; a challenge from a non-vault host without the sandbox switch → ChallengeMismatch', async () => {
    await expect(make({ token: 'unknown-token-123' }).listSecretProperties()).rejects.toMatchObject({ code: 'Unauthorized', statusCode: 401 });
    const err = await make({ verify: false }).listSecretProperties().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ChallengeMismatch' });
    expect((err as Error).message).toMatch(/disableChallengeResourceVerification/);
  });

  it('an unreachable vault → Unreachable with the URL to check', async () => {
    const dead = new KeyVaultSecrets({ vault: { name: 'kv-gone', url: 'https://127.0.0.1:1' }, credential: fakeCredential(token), disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } });
    const err = await dead.listSecretProperties().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'KeyVaultError', code: 'Unreachable', vault: 'kv-gone' });
    expect((err as Error).message).toMatch(/keyVault\.vaults\[\]\.url/);
  });

  it('a stalled vault fails each attempt in its timeout, is retried, and names the vault and what to check', async () => {
    const server = kv.vault('kv-test').server;
    const stalling = new KeyVaultSecrets({
      vault: { name: 'kv-test', url: kv.vault('kv-test').url }, credential: fakeCredential(token), disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 1, retryDelayInMs: 10 }, timeoutMs: 300,
    });
    server.clearRequests();
    server.injectFault({ status: 0, network: 'stall', path: '/versions', times: Infinity });
    try {
      const err = await stalling.listVersions('rotating').catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'KeyVaultError', code: 'Unreachable', serviceCode: 'ETIMEDOUT', vault: 'kv-test', secret: 'rotating' });
      expect((err as Error).message).toContain(`Vault kv-test at ${kv.vault('kv-test').url} did not answer about secret 'rotating' within 0.3 s`);
      expect((err as Error).message).toMatch(/firewall, private endpoint/);
      // The first attempt and the SDK's one retry, each given up on.
      expect(server.requests.filter((r) => r.injected && r.path.endsWith('/versions'))).toHaveLength(2);
    } finally {
      server.clearFaults();
    }
    // The same client answers again once the vault does (the stalled connections were dropped, not reused).
    await expect(stalling.listSecretProperties()).resolves.toEqual(expect.any(Array));
  });

  it('a caller that cancels a stalled call gets Aborted at once, not a timeout', async () => {
    const server = kv.vault('kv-test').server;
    const slow = new KeyVaultSecrets({
      vault: { name: 'kv-test', url: kv.vault('kv-test').url }, credential: fakeCredential(token), disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 3, retryDelayInMs: 10 }, timeoutMs: 60_000,
    });
    server.injectFault({ status: 0, network: 'stall', path: '/secrets', times: Infinity });
    try {
      const cancel = new AbortController();
      const pending = slow.listSecretProperties({ signal: cancel.signal }).catch((e: unknown) => e);
      setTimeout(() => cancel.abort(), 100);
      expect(await pending).toMatchObject({ name: 'KeyVaultError', code: 'Aborted', vault: 'kv-test' });
    } finally {
      server.clearFaults();
    }
  });
});
