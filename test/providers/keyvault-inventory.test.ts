import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import type { Credential } from '../../src/domain/credential.js';
import { credentialId } from '../../src/domain/credential.js';
import { KeyVaultSecrets } from '../../src/providers/keyvault/client.js';
import { KeyVaultError } from '../../src/providers/keyvault/errors.js';
import { createKeyVaultInventory } from '../../src/providers/keyvault/inventory.js';
import type { KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { startKeyVaultEmulator } from '../../src/sandbox/keyvault/emulator.js';
import { SANDBOX_VAULTS, seedKeyVault } from '../../src/sandbox/keyvault/seed.js';
import { crossEstateInputs, fakeCredential, KEYWARDEN_APP, newToken, sandboxTls, simpleValidator, TENANT } from '../sandbox/keyvault-fixtures.js';

// The Key Vault inventory over the seeded estate: credentials from properties only, never a value read.

const NOW = Date.UTC(2026, 10, 22, 9, 0, 0);
const clock = new AdjustableClock({ frozenAt: NOW });
const inputs = crossEstateInputs(NOW);
const token = newToken();
let kv: KeyVaultEmulatorHandle;

const inventory = (name: string, versionHistory = true) => {
  const vault = { name, url: kv.vault(name).url, environment: 'default' };
  const secrets = new KeyVaultSecrets({ vault, credential: fakeCredential(token), disableChallengeResourceVerification: true, retryOptions: { maxRetries: 1, retryDelayInMs: 10 } });
  return createKeyVaultInventory({ vault, secrets, versionHistory });
};
const byName = (creds: Credential[]) => new Map(creds.map((c) => [c.name, c]));

beforeAll(async () => {
  kv = await startKeyVaultEmulator({
    tls: sandboxTls(), tenantId: TENANT, clock, tokenValidator: simpleValidator({ [token]: { appId: KEYWARDEN_APP } }),
    vaults: [...SANDBOX_VAULTS.map((name) => ({ name })), { name: 'kv-extra' }], pageSize: 4,
  });
  seedKeyVault(kv, { clock, databricks: { tokens: inputs.tokens }, entra: { etlSecret: inputs.etlSecret } });
});
afterAll(async () => {
  await kv?.close();
});
beforeEach(() => {
  kv.clearOperations();
  kv.clearFaults();
  for (const v of kv.vaults.values()) v.clearAccessList();
});

describe('Key Vault inventory', () => {
  it('maps every kv-prod secret to a keyvault-secret credential with expiry, dates, tags and what it holds', async () => {
    const source = inventory('kv-prod');
    expect(source).toMatchObject({ estate: 'keyvault', scope: 'kv-prod', host: kv.vault('kv-prod').url });
    const inv = await source.scan({ signal: AbortSignal.timeout(10_000) });
    expect(inv).toMatchObject({ estate: 'keyvault', scope: 'kv-prod', host: kv.vault('kv-prod').url, facts: {} });
    const creds = byName(inv.credentials);
    expect([...creds.keys()].sort()).toEqual([
      'adb-prod-bob-pipeline', 'adb-prod-etl-token', 'adb-prod-reporting-token', 'etl-ingest-client-secret', 'sql-admin-password', 'storage-account-key',
    ]);

    const etl = creds.get('adb-prod-etl-token')!;
    const etlPat = inputs.tokens.find((t) => t.comment === 'adf-etl')!;
    const current = kv.vault('kv-prod').versions('adb-prod-etl-token')[0]!;
    expect(etl).toEqual({
      id: credentialId('keyvault-secret', 'kv-prod', 'adb-prod-etl-token'),
      kind: 'keyvault-secret', nativeId: 'adb-prod-etl-token', name: 'adb-prod-etl-token',
      where: { estate: 'keyvault', scope: 'kv-prod', host: kv.vault('kv-prod').url, label: 'kv-prod' },
      createdAt: current.created, expiresAt: etlPat.expiryTime, enabled: true,
      heldIn: [], consumers: [],
      holds: credentialId('databricks-pat', 'ws-prod', etlPat.tokenId),
      attributes: {
        version: current.version, contentType: null, updatedAt: current.updated, notBefore: null, managed: false,
        versionCount: 1, disabledVersions: 0,
        'tag:managed-by': 'keywarden', 'tag:credential-kind': 'databricks-pat', 'tag:credential-id': etlPat.tokenId, 'tag:workspace': 'ws-prod',
      },
    });
    // Entra credential ids are scoped by the application's appId.
    expect(creds.get('etl-ingest-client-secret')!.holds).toBe(credentialId('entra-password', inputs.etlSecret.appId, inputs.etlSecret.keyId));
    expect(creds.get('adb-prod-bob-pipeline')!.holds).toBeUndefined();
    expect(creds.get('storage-account-key')!.expiresAt).toBe(NOW - 3 * DAY_MS);
  });

  it('by default reads only the secret list (one call per page of 25, none per secret) and still has what policy uses', async () => {
    const inv = await inventory('kv-prod', false).scan();
    const requests = kv.vault('kv-prod').server.requests;
    expect(requests.filter((r) => r.path.endsWith('/versions'))).toEqual([]);
    expect(requests.every((r) => r.method === 'GET' && r.path === '/secrets')).toBe(true);
    const etl = byName(inv.credentials).get('adb-prod-etl-token')!;
    const current = kv.vault('kv-prod').versions('adb-prod-etl-token')[0]!;
    // The current version's dates, state, expiry and tags come with the list; its id, count and history do not.
    expect(etl).toMatchObject({ createdAt: current.created, enabled: true, holds: expect.any(String) });
    expect(etl.attributes).toMatchObject({ version: null, updatedAt: current.updated, 'tag:managed-by': 'keywarden' });
    expect(etl.attributes.versionCount).toBeUndefined();
  });

  it('reports a secret without expiry as expiresAt null and keeps an old creation date', async () => {
    const creds = byName((await inventory('kv-dev').scan()).credentials);
    expect(creds.get('api-key-no-expiry')!.expiresAt).toBeNull();
    expect(creds.get('old-shared-secret')!.createdAt).toBe(NOW - 200 * DAY_MS);
    expect(creds.get('adb-dev-ci-token')!.holds).toBe(credentialId('databricks-pat', 'ws-dev', inputs.tokens.find((t) => t.comment === 'dev-ci')!.tokenId));
  });

  it('never reads a secret value and never calls a mutating API (request log)', async () => {
    await inventory('kv-prod').scan();
    await inventory('kv-dev').scan();
    const ops = kv.operations();
    expect(ops.length).toBeGreaterThan(0);
    expect(kv.valueReads()).toEqual([]);
    expect(ops.filter((o) => o.valueRead || o.mutating)).toEqual([]);
    expect(new Set(ops.map((o) => o.operation))).toEqual(new Set(['list', 'list-versions']));
    // At the HTTP level too: only GETs on list paths.
    for (const v of SANDBOX_VAULTS) {
      for (const r of kv.vault(v).server.requests) {
        expect(r.method).toBe('GET');
        expect(r.path).toMatch(/^\/secrets(\/[^/]+\/versions)?$/);
      }
    }
  });

  it('skips certificate-backed secrets and shows a disabled current version as disabled state, not as a live credential', async () => {
    const extra = kv.vault('kv-extra');
    extra.seedSecret('tls-cert', { value: 'pfx-bytes-base64', managed: true, contentType: 'application/x-pkcs12', exp: NOW + 10 * DAY_MS });
    const old = extra.seedSecret('retired-key', { value: 'old-retired-value', exp: NOW + 5 * DAY_MS, created: NOW - 3 * DAY_MS });
    const latest = extra.seedSecret('retired-key', { value: 'new-retired-value', exp: NOW + 40 * DAY_MS, enabled: false });
    extra.seedSecret('plain', { value: 'plain-value-123' });

    const creds = byName((await inventory('kv-extra').scan()).credentials);
    expect([...creds.keys()].sort()).toEqual(['plain', 'retired-key']);
    expect(creds.get('retired-key')).toMatchObject({
      enabled: false, expiresAt: NOW + 40 * DAY_MS,
      attributes: { version: latest.version, currentVersionDisabled: true, versionCount: 2, disabledVersions: 1 },
    });
    expect(old.version).not.toBe(latest.version);
    expect(kv.valueReads()).toEqual([]);
  });

  it('fails the whole vault with a typed, actionable error when the vault is failing or forbids listing', async () => {
    kv.injectFault({ path: '/secrets', status: 500, times: Infinity }, 'kv-dev');
    const failing = await inventory('kv-dev').scan().catch((e: unknown) => e);
    expect(failing).toBeInstanceOf(KeyVaultError);
    expect(failing).toMatchObject({ code: 'ServiceError', statusCode: 500, vault: 'kv-dev' });
    kv.clearFaults();

    kv.vault('kv-prod').allow(KEYWARDEN_APP, ['get']);
    const forbidden = await inventory('kv-prod').scan().catch((e: unknown) => e);
    expect(forbidden).toMatchObject({ name: 'KeyVaultError', code: 'Forbidden', vault: 'kv-prod' });
    expect((forbidden as Error).message).toMatch(/lacks 'List secrets' on vault kv-prod/);
  });
});
