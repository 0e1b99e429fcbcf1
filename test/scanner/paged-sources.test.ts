import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { credentialId } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

/**
 * Sources hand their inventories over page by page (issue 14). A vault that fails after some of its pages were taken
 * is unknown as a whole: what those pages said is not reported, nothing of it is removed, and the next scan that
 * reads it through reports the change once.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let config: KeywardenConfig;
let store: Store;
let scanner: Scanner;

const EXTRA = 30;
const name = (i: number) => `zz-page-${String(i).padStart(2, '0')}`;
const id = (i: number) => credentialId('keyvault-secret', 'kv-prod', name(i));
/** Key Vault keeps expiry in whole seconds. */
const inDays = (days: number) => Math.floor((clock.now() + days * DAY_MS) / 1000) * 1000;
const IN_90_DAYS = inDays(90);

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  const vault = clouds.handles.keyVault.vaults.get('kv-prod')!;
  // More than one page of the scan (25 secrets), behind the emulator's own pages of 5.
  for (let i = 0; i < EXTRA; i++) vault.seedSecret(name(i), { value: `v-${i}`, exp: IN_90_DAYS });
  // Version listings on: the last secret's listing is where the vault fails part-way.
  config = configSchema.parse(withSandboxConfig({ keyVault: { versionHistory: true } }, clouds.config));
  store = openSqliteStore({ path: ':memory:', clock });
  const { sources } = createInventorySources(config, { clock, retry: { maxRetries: 1, baseDelayMs: 10 } });
  scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
});
afterAll(async () => {
  await scanner?.shutdown();
  store?.close();
  await clouds?.close();
});

describe('a vault that fails part-way through its pages', () => {
  it('reports nothing from the pages it did hand over, removes nothing, and the next full read reports the change once', async () => {
    const first = await scanner.runScan('command');
    expect(first.errors).toEqual([]);
    expect(first.view!.get(id(1))?.credential.expiresAt).toBe(IN_90_DAYS);
    const vaultRows = [...first.view!.query({ kind: 'keyvault-secret', scope: 'kv-prod' })].flat().length;
    expect(vaultRows).toBeGreaterThanOrEqual(EXTRA);

    // A new version early in the list (first page) now expires in 5 days; the last secret has a new version too, and
    // its version listing fails slowly, so the first page is read and handed over before the vault gives up.
    const vault = clouds.handles.keyVault.vaults.get('kv-prod')!;
    // A new version must change the secret's `updated` (whole seconds), or the rescan keeps its cached version list.
    clock.advance(2_000);
    const in5Days = inDays(5);
    vault.seedSecret(name(1), { value: 'rotated', exp: in5Days });
    vault.seedSecret(name(EXTRA - 1), { value: 'rotated', exp: IN_90_DAYS });
    clouds.handles.keyVault.injectFault({ path: `/secrets/${name(EXTRA - 1)}/versions`, status: 403, latencyMs: 300, times: Infinity }, 'kv-prod');

    const failed = await scanner.runScan('command');
    expect(failed.errors.map((e) => `${e.estate}:${e.scope}`)).toEqual(['keyvault:kv-prod']);
    expect(failed.changes.changed.filter((c) => c.startsWith('keyvault-secret:kv-prod:'))).toEqual([]);
    expect(failed.changes.removed).toEqual([]);
    expect(failed.changes.added).toEqual([]);
    // What the vault had is kept as it was (unknown, not empty): the stored row still expires in 90 days.
    expect(store.scanRows!.get(id(1))?.credential.expiresAt).toBe(IN_90_DAYS);

    clouds.handles.keyVault.clearFaults();
    const recovered = await scanner.runScan('command');
    expect(recovered.errors).toEqual([]);
    // (The PATs kv-prod holds change too: unknown while it failed, they lost their holder for that scan.)
    expect(recovered.changes.changed.filter((c) => c.startsWith('keyvault-secret:kv-prod:'))).toEqual([id(1), id(EXTRA - 1)].sort());
    expect(recovered.changes.removed).toEqual([]);
    expect(recovered.changes.added).toEqual([]);
    expect(recovered.view!.get(id(1))?.credential.expiresAt).toBe(in5Days);
    expect([...recovered.view!.query({ kind: 'keyvault-secret', scope: 'kv-prod' })].flat()).toHaveLength(vaultRows);
  });
});
