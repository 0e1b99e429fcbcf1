import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE_MS } from '../../src/clock.js';
import type { AlertRecord } from '../../src/alerts/types.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Must show: a non-approver, a clicker from another tenant, a stale nonce and a replayed click each get a refusal,
 * change nothing, and are audited; 50 concurrent clicks on one card rotate exactly once.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  // Cards for everything within 31 days, so ws-prod/reporting (30 d) has its own card too.
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

function world() {
  const prod = h.clouds.handles.databricks.workspace('ws-prod');
  const dev = h.clouds.handles.databricks.workspace('ws-dev');
  return JSON.stringify({
    tokens: [...prod.tokens({ includeRevoked: true }), ...dev.tokens({ includeRevoked: true })].map((t) => [t.tokenId, t.revoked]),
    kv: ['kv-prod', 'kv-dev'].map((v) => h.clouds.handles.keyVault.vault(v).secretNames().map((n) => h.clouds.handles.keyVault.vault(v).versions(n).length)),
    jobs: h.jobs().length,
  });
}

function devCi(): { alert: AlertRecord; cardId: string; credentialId: string } {
  const t = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
  const credentialId = `databricks-pat:ws-dev:${t.tokenId}`;
  return { alert: h.alertFor(credentialId)!, cardId: h.cardActivityId(credentialId), credentialId };
}

function lastRefusal(credentialId: string) {
  return h.store.listAudit({ subject: credentialId }).filter((a) => a.action === 'approval.refused').pop();
}

describe('refused clicks change nothing and are audited', () => {
  it('a non-approver (Lee Gu) is refused', async () => {
    const { alert, cardId, credentialId } = devCi();
    const before = world();
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, LEE);
    expect(answer.text).toMatch(/Lee Gu is not an approver/);
    expect(world()).toBe(before);
    expect(lastRefusal(credentialId)).toMatchObject({ actor: { aadObjectId: LEE.aadObjectId, name: 'Lee Gu' }, result: 'refused', details: { code: 'not-approver', verb: 'rotate' } });
  });

  it('an approver clicking from another tenant is refused', async () => {
    const { alert, cardId, credentialId } = devCi();
    const before = world();
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX, { tenantId: '99999999-9999-4999-8999-999999999999' });
    expect(answer.text).toMatch(/another tenant/);
    expect(world()).toBe(before);
    expect(lastRefusal(credentialId)?.details).toMatchObject({ code: 'wrong-tenant', tenantId: '99999999-9999-4999-8999-999999999999' });
  });

  it('a stale card (nonce older than 30 minutes) gets "out of date" and a refreshed card', async () => {
    const { alert, cardId, credentialId } = devCi();
    const before = world();
    h.clock.advance(31 * MINUTE_MS);
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(allText(answer.card)).toMatch(/out of date/);
    const fresh = h.alertFor(credentialId)!;
    expect(fresh.nonce).not.toBe(alert.nonce);
    expect(allText(answer.card)).toContain(fresh.nonce);
    expect(world()).toBe(before);
    expect(lastRefusal(credentialId)?.details).toMatchObject({ code: 'stale-card' });
  });

  it('a replayed click (same nonce, after the action started) is refused and starts nothing', async () => {
    const { alert, cardId, credentialId } = devCi();
    const first = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(allText(first.card)).toContain('in progress — approved by Alex Wilber');
    const job = await h.waitForJob((j) => j.subject === credentialId && j.state !== 'queued' && j.state !== 'running');
    const before = world();
    const replay = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, MEGAN);
    expect(replay.text ?? allText(replay.card)).toMatch(/out of date|already/);
    expect(world()).toBe(before);
    expect(h.jobs().filter((j) => j.subject === credentialId)).toHaveLength(1);
    expect(lastRefusal(credentialId)?.actor).toMatchObject({ aadObjectId: MEGAN.aadObjectId });
    expect(job.kind).toBe('rotate-pat');
  });
});

describe('exactly once', () => {
  it('50 concurrent clicks on one card make exactly one rotation', async () => {
    const t = h.clouds.seeds.databricks.tokens['ws-prod/reporting']!;
    const credentialId = `databricks-pat:ws-prod:${t.tokenId}`;
    const cardId = h.cardActivityId(credentialId);
    // The clock moved past the nonce's freshness above: the first click gets the refreshed card, as in Teams.
    const refreshed = await h.click('rotate', { alertId: h.alertFor(credentialId)!.id, nonce: 'old' }, cardId, ALEX);
    expect(allText(refreshed.card)).toMatch(/out of date/);
    const alert = h.alertFor(credentialId)!;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const tokensBefore = new Set(ws.tokens({ includeRevoked: true }).map((x) => x.tokenId));
    const versionsBefore = kv.versions('adb-prod-reporting-token').length;

    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, i % 2 ? MEGAN : ALEX)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const started = answers.filter((a) => allText(a.card).includes('Rotation in progress'));
    expect(started).toHaveLength(1);

    const job = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    expect(h.jobs().filter((j) => j.subject === credentialId)).toHaveLength(1);
    expect(ws.tokens({ includeRevoked: true }).filter((x) => !tokensBefore.has(x.tokenId))).toHaveLength(1);
    expect(kv.versions('adb-prod-reporting-token')).toHaveLength(versionsBefore + 1);
    expect(h.store.listAudit({ subject: credentialId }).filter((a) => a.action === 'approval.granted')).toHaveLength(1);
    expect(h.store.listAudit({ subject: credentialId }).filter((a) => a.action === 'approval.refused').length).toBeGreaterThanOrEqual(49);
    expect(job.approvedBy).toHaveLength(1);
  }, 60_000);
});
