import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import type { Credential, Finding, FindingCode } from '../../src/domain/credential.js';
import type { ScanResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

/**
 * docs/sandbox-estate.md, case by case: the real providers and SDK clients scan the seeded emulators over HTTP(S),
 * and each seeded case comes out with its finding.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let config: KeywardenConfig;
let scan: ScanResult;
// The scan's credentials are rows in this store: it stays open while the tests read them.
let store: Store;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  config = configSchema.parse(withSandboxConfig({ store: { path: ':memory:' } }, clouds.config));
  store = openSqliteStore({ path: ':memory:', clock });
  const { sources } = createInventorySources(config, { clock });
  const scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
  scan = await scanner.runScan('command');
});
afterAll(async () => {
  store?.close();
  await clouds?.close();
});

const pat = (ws: string, comment: string): Credential => {
  const c = scan.credentials.find((x) => x.kind === 'databricks-pat' && x.where.scope === ws && x.name === comment);
  if (!c) throw new Error(`no PAT ${ws}/${comment} in the scan`);
  return c;
};
const secret = (vault: string, name: string): Credential => {
  const c = scan.credentials.find((x) => x.kind === 'keyvault-secret' && x.where.scope === vault && x.name === name);
  if (!c) throw new Error(`no secret ${vault}/${name} in the scan`);
  return c;
};
const entra = (app: string, display: string): Credential => {
  const c = scan.credentials.find((x) => x.kind.startsWith('entra-') && x.name === `${app} / ${display}`);
  if (!c) throw new Error(`no Entra credential ${app} / ${display}; have ${scan.credentials.filter((x) => x.kind.startsWith('entra')).map((x) => x.name).join(', ')}`);
  return c;
};
const findingsOf = (c: Credential): Finding[] => scan.findings.filter((f) => f.credentialId === c.id);
const codesOf = (c: Credential): FindingCode[] => findingsOf(c).map((f) => f.code).sort();
const expiring = (c: Credential) => findingsOf(c).find((f) => f.code === 'expiring');

describe('the scan of the sandbox estate', () => {
  it('covers every workspace, vault, the tenant and the factory without errors', () => {
    expect(scan.errors).toEqual([]);
    const scopes = new Set(scan.credentials.map((c) => `${c.where.estate}:${c.where.scope}`));
    for (const s of ['databricks:ws-prod', 'databricks:ws-dev', 'databricks:ws-analytics', 'keyvault:kv-prod', 'keyvault:kv-dev']) expect(scopes).toContain(s);
    expect(scan.credentials.some((c) => c.where.estate === 'entra')).toBe(true);
  });
});

describe('Databricks seeded cases', () => {
  it('ws-prod adf-etl: expiring at 7 days, held in kv-prod/adb-prod-etl-token (tags), used by LS_Databricks_ETL', () => {
    const c = pat('ws-prod', 'adf-etl');
    expect(expiring(c)).toMatchObject({ severity: 'high' });
    expect(codesOf(c)).toEqual(['expiring']);
    expect(c.owner).toMatchObject({ name: 'sp-etl', kind: 'service-principal' });
    expect(c.heldIn).toEqual([{ vault: 'kv-prod', name: 'adb-prod-etl-token' }]);
    expect(c.consumers.map((x) => x.name)).toEqual(['LS_Databricks_ETL']);
    expect(c.consumers[0]!.pipelines).toEqual(['nightly-etl']);
  });

  it('ws-prod reporting: its secret says +60d while the token expires in 30 → kv-expiry-mismatch', () => {
    const c = pat('ws-prod', 'reporting');
    const s = secret('kv-prod', 'adb-prod-reporting-token');
    expect(s.holds).toBe(c.id);
    const f = findingsOf(s).find((x) => x.code === 'kv-expiry-mismatch');
    expect(f?.message).toContain('reporting in ws-prod');
  });

  it('ws-prod bob-jdbc: human-owned PAT behind the pipeline secret (linked by config mapping)', () => {
    const c = pat('ws-prod', 'bob-jdbc');
    expect(c.heldIn).toEqual([{ vault: 'kv-prod', name: 'adb-prod-bob-pipeline' }]);
    expect(c.consumers.map((x) => x.name)).toEqual(['LS_Databricks_Prod']);
    expect(codesOf(c)).toEqual(['expiring', 'human-owned-pipeline']);
    expect(findingsOf(c).find((f) => f.code === 'human-owned-pipeline')!.remedy).toMatch(/service principal/);
  });

  it('ws-prod legacy-never: no-expiry', () => {
    expect(codesOf(pat('ws-prod', 'legacy-never'))).toEqual(['no-expiry']);
  });

  it('ws-prod carol-notebook: owner-deactivated', () => {
    expect(codesOf(pat('ws-prod', 'carol-notebook'))).toEqual(['owner-deactivated']);
  });

  it('ws-prod stale-unused: unused and not-rotated', () => {
    const c = pat('ws-prod', 'stale-unused');
    expect(codesOf(c)).toEqual(expect.arrayContaining(['not-rotated', 'unused']));
    expect(findingsOf(c).find((f) => f.code === 'unused')!.message).toMatch(/revokes it automatically at 90 days/);
  });

  it('ws-prod expired-etl: expired', () => {
    expect(findingsOf(pat('ws-prod', 'expired-etl'))).toMatchObject([{ code: 'expired', severity: 'critical' }]);
  });

  it('ws-dev dev-ci: expiring at 1 day, held in kv-dev/adb-dev-ci-token', () => {
    const c = pat('ws-dev', 'dev-ci');
    expect(expiring(c)).toMatchObject({ severity: 'critical' });
    expect(c.heldIn).toEqual([{ vault: 'kv-dev', name: 'adb-dev-ci-token' }]);
    expect(c.consumers.map((x) => x.name)).toEqual(['LS_Databricks_DevCI']);
  });

  it('ws-dev long-lived: lifetime over the workspace maxTokenLifetimeDays', () => {
    const f = findingsOf(pat('ws-dev', 'long-lived'));
    expect(f.map((x) => x.code)).toEqual(['lifetime-too-long']);
    expect(f[0]!.message).toMatch(/maxTokenLifetimeDays 90/);
  });

  it('ws-dev: PAT creation open to the users group', () => {
    const f = scan.findings.filter((x) => x.code === 'pat-creation-open');
    expect(f).toMatchObject([{ scope: 'ws-dev', severity: 'high', estate: 'databricks' }]);
  });

  it('ws-analytics analytics-sp: no finding', () => {
    expect(codesOf(pat('ws-analytics', 'analytics-sp'))).toEqual([]);
  });
});

describe('Key Vault seeded cases', () => {
  it('kv-prod/adb-prod-etl-token: linked to adf-etl by tags, warns through the token', () => {
    const s = secret('kv-prod', 'adb-prod-etl-token');
    expect(s.holds).toBe(pat('ws-prod', 'adf-etl').id);
    expect(codesOf(s)).toEqual([]);
  });

  it('kv-prod/adb-prod-bob-pipeline: linked to bob-jdbc by the configured mapping', () => {
    expect(secret('kv-prod', 'adb-prod-bob-pipeline').holds).toBe(pat('ws-prod', 'bob-jdbc').id);
  });

  it('kv-prod/etl-ingest-client-secret: linked to the etl-ingest client secret by tags', () => {
    const s = secret('kv-prod', 'etl-ingest-client-secret');
    const held = entra('etl-ingest', 'etl-ingest-2026');
    expect(s.holds).toBe(held.id);
    expect(held.heldIn).toEqual([{ vault: 'kv-prod', name: 'etl-ingest-client-secret' }]);
  });

  it('kv-prod/sql-admin-password: expiring at 1 day', () => {
    expect(findingsOf(secret('kv-prod', 'sql-admin-password'))).toMatchObject([{ code: 'expiring', severity: 'critical' }]);
  });

  it('kv-prod/storage-account-key: expired', () => {
    expect(codesOf(secret('kv-prod', 'storage-account-key'))).toEqual(['expired']);
  });

  it('kv-dev/api-key-no-expiry: no-expiry', () => {
    expect(codesOf(secret('kv-dev', 'api-key-no-expiry'))).toEqual(['no-expiry']);
  });

  it('kv-dev/old-shared-secret: not-rotated', () => {
    expect(codesOf(secret('kv-dev', 'old-shared-secret'))).toEqual(['not-rotated']);
  });

  it('kv-dev/partner-webhook-key: expiring at 30 days', () => {
    expect(findingsOf(secret('kv-dev', 'partner-webhook-key'))).toMatchObject([{ code: 'expiring', severity: 'low' }]);
  });
});

describe('Entra seeded cases', () => {
  it('etl-ingest: expiring at 14 days', () => {
    expect(expiring(entra('etl-ingest', 'etl-ingest-2026'))).toMatchObject({ severity: 'medium' });
  });

  it('reporting-svc: app password at 30 days, SP-level password at 60 (no warning yet)', () => {
    expect(expiring(entra('reporting-svc', 'reporting-svc-secret'))).toMatchObject({ severity: 'low' });
    expect(codesOf(entra('reporting-svc', 'reporting-svc-sp-secret'))).toEqual([]);
  });

  it("keywarden-bot: Keywarden's own secret is watched like any other (90 days: no warning yet)", () => {
    const c = entra('keywarden-bot', 'keywarden-bot-secret');
    expect(c.expiresAt).not.toBeNull();
    expect(codesOf(c)).toEqual([]);
  });

  it('legacy-crm: expired', () => {
    expect(codesOf(entra('legacy-crm', 'legacy-crm-secret'))).toEqual(['expired']);
  });

  it('partner-sftp: certificate expiring at 7 days', () => {
    const c = entra('partner-sftp', 'CN=partner-sftp.contoso.com');
    expect(c.kind).toBe('entra-certificate');
    expect(expiring(c)).toMatchObject({ severity: 'high' });
  });

  it('hr-sync: one password at 1 day, one created 10 days ago for 720 days (too long)', () => {
    expect(expiring(entra('hr-sync', 'hr-sync-secret'))).toMatchObject({ severity: 'critical' });
    expect(codesOf(entra('hr-sync', 'hr-sync-long-lived'))).toEqual(['lifetime-too-long']);
  });
});
