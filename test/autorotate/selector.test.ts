import { describe, expect, it } from 'vitest';
import { credentialsSelected, isRuleActive, selectorText } from '../../src/approvals/auto-rotation.js';
import type { Credential } from '../../src/domain/credential.js';
import { parseAutorotateArgs } from '../../src/workflows/autorotate/autorotate-command.js';

/** `/autorotate` arguments and rule selectors, as pure functions (the protocol walk is in rules.test.ts). */

const base = { heldIn: [], consumers: [], expiresAt: 1, attributes: {} };
const pat: Credential = { ...base, id: 'databricks-pat:ws-prod:1', kind: 'databricks-pat', nativeId: '1', name: 'adf-etl', where: { estate: 'databricks', scope: 'ws-prod', label: 'ws-prod' }, heldIn: [{ vault: 'kv-prod', name: 'adb-prod-etl-token' }] };
const holder: Credential = {
  ...base, id: 'keyvault-secret:kv-prod:adb-prod-etl-token', kind: 'keyvault-secret', nativeId: 'adb-prod-etl-token', name: 'adb-prod-etl-token',
  where: { estate: 'keyvault', scope: 'kv-prod', label: 'kv-prod' }, holds: pat.id, attributes: { 'tag:pipeline': 'adf' },
};
const other: Credential = { ...base, id: 'databricks-pat:ws-dev:2', kind: 'databricks-pat', nativeId: '2', name: 'ci', where: { estate: 'databricks', scope: 'ws-dev', label: 'ws-dev' } };

describe('/autorotate arguments', () => {
  it('reads a selector, days and grace; a credential name may have spaces', () => {
    expect(parseAutorotateArgs('kind:pat scope:ws-prod tag:pipeline=adf 14 24h')).toEqual({ ok: true, value: { selector: { kind: 'databricks-pat', scope: 'ws-prod', tag: { name: 'pipeline', value: 'adf' } }, days: 14, graceHours: 24 } });
    expect(parseAutorotateArgs('etl-ingest / prod secret 30d')).toEqual({ ok: true, value: { credential: 'etl-ingest / prod secret', selector: {}, days: 30 } });
    expect(parseAutorotateArgs('rule:R1 scope:ws-prod 7')).toMatchObject({ ok: true, value: { rule: 'R1', days: 7 } });
  });

  it('says what is wrong', () => {
    expect(parseAutorotateArgs('14')).toMatchObject({ ok: false, problem: /say which credentials/ });
    expect(parseAutorotateArgs('kind:token 14')).toMatchObject({ ok: false, problem: /not a kind/ });
    expect(parseAutorotateArgs('adf-etl scope:ws-prod 14')).toMatchObject({ ok: false, problem: /not both/ });
    expect(parseAutorotateArgs('scope:ws-prod')).toMatchObject({ ok: false, problem: /how many days/ });
    expect(parseAutorotateArgs('scope:ws-prod 0')).toMatchObject({ ok: false, problem: /1 to 365/ });
    expect(parseAutorotateArgs('scope:ws-prod 14 9999')).toMatchObject({ ok: false, problem: /grace window/ });
  });
});

describe('rule selectors', () => {
  it('a tag selects the credential whose Key Vault secret carries it, never the secret as a second credential', () => {
    const all = [pat, holder, other];
    expect(credentialsSelected({ tag: { name: 'pipeline', value: 'adf' } }, all).map((c) => c.id)).toEqual([pat.id]);
    expect(credentialsSelected({ kind: 'databricks-pat' }, all).map((c) => c.id)).toEqual([pat.id, other.id]);
    expect(credentialsSelected({ credentialIds: [other.id] }, all).map((c) => c.id)).toEqual([other.id]);
    expect(selectorText({ kind: 'databricks-pat', scope: 'ws-prod', tag: { name: 'pipeline', value: 'adf' } })).toBe('kind:databricks-pat scope:ws-prod tag:pipeline=adf');
  });

  it('a rule is in force only while active and before its review date', () => {
    expect(isRuleActive({ state: 'active', reviewBy: 100 }, 99)).toBe(true);
    expect(isRuleActive({ state: 'active', reviewBy: 100 }, 100)).toBe(false);
    expect(isRuleActive({ state: 'paused', reviewBy: 100 }, 1)).toBe(false);
    expect(isRuleActive({ state: 'pending' }, 1)).toBe(false);
  });
});
