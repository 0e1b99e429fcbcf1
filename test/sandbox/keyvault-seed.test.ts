import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { KeyVaultSecrets } from '../../src/providers/keyvault/client.js';
import type { KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { startKeyVaultEmulator } from '../../src/sandbox/keyvault/emulator.js';
import type { KeyVaultSeedResult } from '../../src/sandbox/keyvault/seed.js';
import { KeyVaultSeedError, SANDBOX_VAULTS, seedKeyVault } from '../../src/sandbox/keyvault/seed.js';
import { crossEstateInputs, fakeCredential, newToken, sandboxTls, TENANT } from './keyvault-fixtures.js';

// The seeded vaults of docs/sandbox-estate.md, read back through the provider (real SecretClient).

const NOW = Date.UTC(2026, 10, 22, 9, 0, 0);
const clock = new AdjustableClock({ frozenAt: NOW });
const inputs = crossEstateInputs(NOW);
let kv: KeyVaultEmulatorHandle;
let seeded: KeyVaultSeedResult;
const token = newToken();
const vault = (name: string) => new KeyVaultSecrets({ vault: { name, url: kv.vault(name).url }, credential: fakeCredential(token), disableChallengeResourceVerification: true });

beforeAll(async () => {
  kv = await startKeyVaultEmulator({ tls: sandboxTls(), tenantId: TENANT, clock, vaults: SANDBOX_VAULTS.map((name) => ({ name })) });
  seeded = seedKeyVault(kv, { clock, databricks: { tokens: inputs.tokens }, entra: { etlSecret: inputs.etlSecret } });
});
afterAll(async () => {
  await kv?.close();
});

const pat = (comment: string) => inputs.tokens.find((t) => t.comment === comment)!;

describe('Key Vault seed', () => {
  it('creates exactly the secrets of the estate doc in kv-prod and kv-dev', async () => {
    expect(seeded.vaults).toEqual({ 'kv-prod': kv.vault('kv-prod').url, 'kv-dev': kv.vault('kv-dev').url });
    expect((await vault('kv-prod').listSecretProperties()).map((s) => s.name).sort()).toEqual([
      'adb-prod-bob-pipeline', 'adb-prod-etl-token', 'adb-prod-reporting-token', 'etl-ingest-client-secret', 'sql-admin-password', 'storage-account-key',
    ]);
    expect((await vault('kv-dev').listSecretProperties()).map((s) => s.name).sort()).toEqual([
      'adb-dev-ci-token', 'api-key-no-expiry', 'old-shared-secret', 'partner-webhook-key',
    ]);
    expect(seeded.secrets).toHaveLength(10);
  });

  it('gives each secret the expiry, tags and dates of the estate doc', async () => {
    const prod = new Map((await vault('kv-prod').listSecretProperties()).map((s) => [s.name, s]));
    const dev = new Map((await vault('kv-dev').listSecretProperties()).map((s) => [s.name, s]));
    const at = (days: number) => NOW + days * DAY_MS;

    expect(prod.get('adb-prod-etl-token')).toMatchObject({
      expiresAt: pat('adf-etl').expiryTime,
      tags: { 'managed-by': 'keywarden', 'credential-kind': 'databricks-pat', 'credential-id': pat('adf-etl').tokenId, workspace: 'ws-prod' },
    });
    expect(prod.get('adb-prod-reporting-token')).toMatchObject({ expiresAt: at(60), tags: { 'credential-id': pat('reporting').tokenId, workspace: 'ws-prod' } });
    expect(prod.get('adb-prod-bob-pipeline')).toMatchObject({ expiresAt: at(14), tags: {} });
    expect(prod.get('etl-ingest-client-secret')).toMatchObject({
      expiresAt: at(14),
      tags: { 'credential-kind': 'entra-password', 'app-id': inputs.etlSecret.appId, 'credential-id': inputs.etlSecret.keyId },
    });
    expect(prod.get('sql-admin-password')).toMatchObject({ expiresAt: at(1), tags: {} });
    expect(prod.get('storage-account-key')).toMatchObject({ expiresAt: at(-3) });
    expect(dev.get('adb-dev-ci-token')).toMatchObject({ expiresAt: pat('dev-ci').expiryTime, tags: { 'credential-id': pat('dev-ci').tokenId, workspace: 'ws-dev' } });
    expect(dev.get('api-key-no-expiry')).toMatchObject({ expiresAt: null });
    expect(dev.get('old-shared-secret')).toMatchObject({ expiresAt: at(120), createdAt: at(-200), updatedAt: at(-200) });
    expect(dev.get('partner-webhook-key')).toMatchObject({ expiresAt: at(30) });
    for (const s of [...prod.values(), ...dev.values()]) {
      expect(s.enabled).toBe(true);
      expect(s.createdAt).toBeLessThanOrEqual(NOW);
    }
  });

  it('stores the real PAT and Entra secret values, readable by the product', async () => {
    expect((await vault('kv-prod').readSecretValue('adb-prod-etl-token')).value).toBe(pat('adf-etl').value);
    expect((await vault('kv-prod').readSecretValue('adb-prod-bob-pipeline')).value).toBe(pat('bob-jdbc').value);
    expect((await vault('kv-dev').readSecretValue('adb-dev-ci-token')).value).toBe(pat('dev-ci').value);
    expect((await vault('kv-prod').readSecretValue('etl-ingest-client-secret')).value).toBe(inputs.etlSecret.value);
    const random = (await vault('kv-prod').readSecretValue('sql-admin-password')).value;
    expect(random.length).toBeGreaterThanOrEqual(24);
  });

  it('explains what is missing when the cross-estate inputs or vaults are not there', async () => {
    const other = await startKeyVaultEmulator({ tls: sandboxTls(), tenantId: TENANT, clock, vaults: SANDBOX_VAULTS.map((name) => ({ name })) });
    try {
      expect(() => seedKeyVault(other, { clock, databricks: { tokens: inputs.tokens.filter((t) => t.comment !== 'dev-ci') }, entra: { etlSecret: inputs.etlSecret } }))
        .toThrow(KeyVaultSeedError);
      expect(() => seedKeyVault(other, { clock, databricks: { tokens: [] }, entra: { etlSecret: inputs.etlSecret } }))
        .toThrow(/seed Databricks before Key Vault/);
    } finally {
      await other.close();
    }
    const lonely = await startKeyVaultEmulator({ tls: sandboxTls(), tenantId: TENANT, clock, vaults: [{ name: 'kv-prod' }] });
    try {
      expect(() => seedKeyVault(lonely, { clock, databricks: { tokens: inputs.tokens }, entra: { etlSecret: inputs.etlSecret } })).toThrow(/no vault "kv-dev"/);
    } finally {
      await lonely.close();
    }
  });
});
