import { describe, expect, it } from 'vitest';
import { correlate } from '../../src/domain/correlate.js';
import type { Credential, Finding } from '../../src/domain/credential.js';
import { evaluatePolicy, policyFor } from '../../src/domain/policy.js';
import { cred, days, defaultConfig, NOW } from './fixtures.js';

const policy = defaultConfig().policy;
const run = (credentials: Credential[], extra: Partial<Parameters<typeof evaluatePolicy>[0]> = {}) =>
  evaluatePolicy({ credentials, policy, now: NOW, ...extra });
const codes = (fs: Finding[], id?: string) => fs.filter((f) => !id || f.credentialId === id).map((f) => f.code).sort();

describe('expiry findings', () => {
  it('warns at 30/14/7/1 days with rising severity, and says expired with a remedy', () => {
    const cs = [45, 30, 14, 7, 1, -2].map((d) => cred('databricks-pat', 'ws', `t${d}`, { expiresAt: days(d) - 1000, createdAt: days(-5) }));
    const fs = run(cs);
    const by = (d: number) => fs.find((f) => f.credentialId === cred('databricks-pat', 'ws', `t${d}`).id);
    expect(by(45)).toBeUndefined();
    expect([30, 14, 7, 1].map((d) => [by(d)?.code, by(d)?.severity])).toEqual([
      ['expiring', 'low'], ['expiring', 'medium'], ['expiring', 'high'], ['expiring', 'critical']]);
    expect(by(-2)).toMatchObject({ code: 'expired', severity: 'critical' });
    expect(by(-2)!.message).toMatch(/expired 2 days ago/);
    expect(by(7)!.remedy).toMatch(/^Rotate: create a new token in ws/);
  });

  it('flags a never-expiring PAT as high and a never-expiring secret as medium', () => {
    const fs = run([cred('databricks-pat', 'ws', 'legacy', { expiresAt: null }), cred('keyvault-secret', 'kv', 'api-key', { expiresAt: null })]);
    expect(fs.map((f) => [f.code, f.severity])).toEqual([['no-expiry', 'high'], ['no-expiry', 'medium']]);
    expect(fs[1]!.remedy).toMatch(/Set an expiry date on kv\/api-key/);
  });
});

describe('governance findings', () => {
  it('lifetime: over the workspace maxTokenLifetimeDays', () => {
    const c = cred('databricks-pat', 'ws-dev', 'long', { createdAt: days(-10), expiresAt: days(355) });
    const fs = run([c], { scopes: [{ estate: 'databricks', scope: 'ws-dev', facts: { maxTokenLifetimeDays: 60 } }], policy: { ...policy, maxLifetimeDays: { ...policy.maxLifetimeDays, 'databricks-pat': 400 } } });
    expect(codes(fs)).toEqual(['lifetime-too-long']);
    expect(fs[0]!.message).toMatch(/maxTokenLifetimeDays 60/);
  });

  it('lifetime: the maximum and half a second is not over it; the maximum and two hours is, and says the hours', () => {
    const at = (extraMs: number, id: string) => cred('entra-password', 'app', id, { createdAt: days(-10), expiresAt: days(-10) + 180 * 86_400_000 + extraMs });
    const fs = run([at(500, 'half-second'), at(2 * 3_600_000, 'two-hours')]);
    expect(fs.filter((f) => f.code === 'lifetime-too-long').map((f) => f.credentialId)).toEqual([at(0, 'two-hours').id]);
    expect(fs.find((f) => f.code === 'lifetime-too-long')!.message).toMatch(/lives 180 days 2 hours, over the policy maximum of 180 days/);
  });

  it('workspace-conf: no maxTokenLifetimeDays is a finding; PATs disabled says so instead, naming the stored tokens', () => {
    const stored = cred('databricks-pat', 'ws-off', 'etl', { enabled: false, heldIn: [{ vault: 'kv', name: 'etl-token' }] });
    const fs = run([stored], { scopes: [
      { estate: 'databricks', scope: 'ws-open', facts: { maxTokenLifetimeDays: null } },
      { estate: 'databricks', scope: 'ws-limited', facts: { maxTokenLifetimeDays: 90 } },
      { estate: 'databricks', scope: 'ws-off', facts: { maxTokenLifetimeDays: null, tokensEnabled: false } },
    ] });
    expect(fs.map((f) => [f.code, f.scope, f.severity])).toEqual([['no-max-token-lifetime', 'ws-open', 'medium'], ['tokens-disabled', 'ws-off', 'high']]);
    expect(fs[1]!.message).toMatch(/its 1 token cannot authenticate.* Pipelines use one of them through Key Vault \(etl\)/);
  });

  it('lifetime: over the configured maximum per kind', () => {
    const fs = run([cred('entra-password', 'app', 'k', { createdAt: days(-10), expiresAt: days(720) })]);
    expect(codes(fs)).toEqual(['lifetime-too-long']);
    expect(run([cred('entra-password', 'app', 'k', { createdAt: days(-10), expiresAt: days(170) })])).toEqual([]);
  });

  it('not rotated in 90 days and unused for 60 (with the Databricks auto-revoke date)', () => {
    const c = cred('databricks-pat', 'ws', 'stale', { createdAt: days(-200), expiresAt: days(60), lastUsedAt: days(-75) });
    const fs = run([c], { policy: { ...policy, maxLifetimeDays: { ...policy.maxLifetimeDays, 'databricks-pat': 730 } } });
    expect(codes(fs)).toEqual(['not-rotated', 'unused']);
    const unused = fs.find((f) => f.code === 'unused')!;
    expect(unused.severity).toBe('medium');
    expect(unused.message).toMatch(/revokes it automatically at 90 days \(in 15 days\)/);
    expect(run([cred('databricks-pat', 'ws', 'fresh', { createdAt: days(-89), lastUsedAt: days(-59) })], { policy: { ...policy, maxLifetimeDays: { ...policy.maxLifetimeDays, 'databricks-pat': 730 } } })).toEqual([]);
  });

  it('a never-used credential counts from its creation', () => {
    expect(codes(run([cred('databricks-pat', 'ws', 'n', { createdAt: days(-61), expiresAt: days(20), lastUsedAt: null })]))).toEqual(['expiring', 'unused']);
    expect(run([cred('databricks-pat', 'ws', 'n', { createdAt: days(-20), lastUsedAt: null })])).toEqual([]);
  });

  it('owner deactivated', () => {
    const fs = run([cred('databricks-pat', 'ws', 'c', { owner: { name: 'carol.former@contoso.com', kind: 'user', active: false } })]);
    expect(fs).toMatchObject([{ code: 'owner-deactivated', severity: 'high' }]);
    expect(fs[0]!.message).toMatch(/carol.former@contoso.com, who is deactivated/);
  });

  it('human-owned PAT behind a pipeline secret recommends a service-principal token', () => {
    const inv = correlate([
      { estate: 'databricks', scope: 'ws-prod', facts: {}, credentials: [cred('databricks-pat', 'ws-prod', '9', { name: 'bob-jdbc', expiresAt: days(45), owner: { name: 'bob.dev', kind: 'user', active: true } })] },
      { estate: 'keyvault', scope: 'kv-prod', facts: {}, credentials: [cred('keyvault-secret', 'kv-prod', 'adb-prod-bob-pipeline', { expiresAt: days(45) })] },
      { estate: 'datafactory', scope: 'adf', facts: {}, credentials: [], consumers: [{ kind: 'adf-linked-service', factory: 'adf', name: 'LS_Databricks_Prod', secret: { vault: 'kv-prod', name: 'adb-prod-bob-pipeline' } }] },
    ], { mappings: [{ secret: 'kv-prod/adb-prod-bob-pipeline', holds: { kind: 'databricks-pat', scope: 'ws-prod', comment: 'bob-jdbc' } }] });
    const fs = run(inv.credentials);
    const f = fs.find((x) => x.code === 'human-owned-pipeline')!;
    expect(f.credentialId).toBe('databricks-pat:ws-prod:9');
    expect(f.remedy).toMatch(/owned by a service principal/);
    // The secret mirrors the token's expiry: no double warning and no mismatch.
    expect(codes(fs)).toEqual(['human-owned-pipeline']);
  });

  it('an SP-owned PAT behind a pipeline is fine', () => {
    const c = cred('databricks-pat', 'ws', 'x', { owner: { name: 'sp-etl', kind: 'service-principal', active: true }, heldIn: [{ vault: 'kv', name: 's' }], consumers: [{ kind: 'adf-linked-service', factory: 'f', name: 'LS' }] });
    expect(run([c])).toEqual([]);
  });

  it('KV exp that disagrees with the held credential by more than a day', () => {
    const pat = cred('databricks-pat', 'ws-prod', '5', { name: 'reporting', expiresAt: days(30) - 1000 });
    const secret = cred('keyvault-secret', 'kv-prod', 'adb-prod-reporting-token', { expiresAt: days(60), holds: pat.id });
    const fs = run([pat, secret]);
    const f = fs.find((x) => x.code === 'kv-expiry-mismatch')!;
    expect(f).toMatchObject({ credentialId: secret.id, severity: 'medium' });
    expect(f.message).toMatch(/reporting/);
    expect(f.remedy).toMatch(/Set the secret's expiry to 2026-05-01/);
    // Less than a day apart is not a mismatch.
    expect(codes(run([pat, { ...secret, expiresAt: days(30) + 3_600_000 }]))).toEqual(['expiring']);
  });

  it('PAT creation granted beyond the allow-list is a scope finding', () => {
    const fs = run([], { scopes: [
      { estate: 'databricks', scope: 'ws-dev', facts: { tokenUsers: [{ principal: 'admins', type: 'group' }, { principal: 'users', type: 'group' }] } },
      { estate: 'databricks', scope: 'ws-prod', facts: { tokenUsers: [{ principal: 'admins', type: 'group' }] } },
    ] });
    expect(fs).toMatchObject([{ code: 'pat-creation-open', scope: 'ws-dev', severity: 'high' }]);
    expect(fs[0]!.credentialId).toBeUndefined();
    expect(fs[0]!.remedy).toMatch(/Remove CAN_USE for users in ws-dev/);
  });

  it('every finding has a severity, a message and a one-line remedy', () => {
    const fs = run([
      cred('databricks-pat', 'ws', 'a', { expiresAt: null, createdAt: days(-300), lastUsedAt: null, owner: { name: 'x', kind: 'user', active: false } }),
      cred('entra-certificate', 'app', 'c', { expiresAt: days(3) }),
    ]);
    expect(fs.length).toBeGreaterThan(3);
    for (const f of fs) {
      expect(f.message.length).toBeGreaterThan(10);
      expect(f.remedy).not.toMatch(/\n/);
      expect(f.remedy.length).toBeGreaterThan(10);
    }
  });
});

describe('policy overrides', () => {
  it('apply per kind and per scope, the most specific last', () => {
    const p = { ...policy, overrides: [
      { scope: 'ws-prod', notRotatedDays: 30 },
      { kind: 'databricks-pat' as const, notRotatedDays: 60, thresholdsDays: [10, 2] as [number, ...number[]] },
      { kind: 'databricks-pat' as const, scope: 'ws-prod', unusedDays: 10 },
    ] };
    expect(policyFor(p, 'databricks-pat', 'ws-prod')).toMatchObject({ notRotatedDays: 30, unusedDays: 10, thresholdsDays: [10, 2] });
    expect(policyFor(p, 'databricks-pat', 'ws-dev')).toMatchObject({ notRotatedDays: 60, unusedDays: 60 });
    expect(policyFor(p, 'keyvault-secret', 'kv')).toMatchObject({ notRotatedDays: 90, thresholdsDays: [30, 14, 7, 1], maxLifetimeDays: 365 });
    const fs = evaluatePolicy({ credentials: [cred('databricks-pat', 'ws-dev', 'x', { expiresAt: days(20) })], policy: p, now: NOW });
    expect(fs).toEqual([]);
  });
});
