import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionOffer } from '../../src/approvals/types.js';
import { HOUR_MS } from '../../src/clock.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/** Must show: rollback during the grace window; revoke with justification and a second approver (N-of-M). */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { approvals: { highRisk: [{ action: 'revoke', scopes: ['ws-prod'], approvals: 2 }] } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('Rollback during the grace window', () => {
  it('restores the previous Key Vault value as current and revokes the new token', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    const ws = h.clouds.handles.databricks.workspace('ws-dev');
    const kv = h.clouds.handles.keyVault.vault('kv-dev');
    const oldValue = kv.readStoredValue('adb-dev-ci-token')!;
    expect(oldValue).toBe(seeded.tokenValue);

    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const rotation = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const newTokenId = String(rotation.facts.newTokenId);
    expect(kv.readStoredValue('adb-dev-ci-token')).not.toBe(oldValue);

    // The verified message carries the Rollback button (its own nonce).
    const offerMessage = await h.connector.waitFor((a) => a.threadRootId === cardId && allText(a.attachments).includes('"verb":"rollback"'));
    const offer = h.store.get<ActionOffer>('approvals', `offer:${rotation.id}`)!.value;
    expect(allText(offerMessage.attachments)).toContain(offer.nonce);

    const refused = await h.click('rollback', { jobId: rotation.id, nonce: offer.nonce }, offerMessage.activityId, LEE);
    expect(refused.text).toMatch(/not an approver/);

    const answer = await h.click('rollback', { jobId: rotation.id, nonce: offer.nonce }, offerMessage.activityId, MEGAN);
    expect(allText(answer.card)).toContain('Rollback in progress — approved by Megan Bowen');
    const rollback = await h.waitForJob((j) => j.kind === 'rollback' && j.state === 'done');

    // Key Vault: the previous value is current again; the rotation's version is disabled.
    expect(kv.readStoredValue('adb-dev-ci-token')).toBe(oldValue);
    const versions = kv.versions('adb-dev-ci-token');
    expect(versions.find((v) => v.version === rotation.facts.kvVersion)?.enabled).toBe(false);
    expect(versions.at(-1)!.tags).toMatchObject({ 'credential-id': seeded.tokenId, 'restored-by': rollback.id });
    // The new token is revoked, the old one still works, and the rotation will never revoke it.
    const tokens = ws.tokens({ includeRevoked: true });
    expect(tokens.find((t) => t.tokenId === newTokenId)?.revoked).toBe(true);
    expect(tokens.find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(false);
    expect(h.jobs().find((j) => j.id === rotation.id)?.state).toBe('cancelled');
    h.clock.advance(25 * HOUR_MS);
    await h.workflows.engine.tick();
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(false);

    await h.connector.waitFor((a) => a.threadRootId === cardId && /^rolled back: /.test(a.text ?? ''));
    expect(h.store.listAudit({ subject: credentialId }).some((a) => a.action === 'job.done' && (a.details as { kind?: string }).kind === 'rollback')).toBe(true);
    // A second rollback click has nothing left to roll back.
    const again = await h.click('rollback', { jobId: rotation.id, nonce: offer.nonce }, offerMessage.activityId, ALEX);
    expect(again.text).toMatch(/no rollback offered|Not done/);
  }, 60_000);
});

describe('Revoke (high-risk in ws-prod: two approvers)', () => {
  it('asks for a justification, needs a second distinct approver, then revokes', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/bob-jdbc']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const cardId = h.cardActivityId(credentialId);
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const alert = await h.freshAlert(credentialId);

    // First click: the form with the plan, last use, and a justification box (nothing happens yet).
    const form = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(allText(form.card)).toContain('Justification (required)');
    expect(allText(form.card)).toMatch(/last used|Last use/);
    expect(h.jobs().filter((j) => j.subject === credentialId)).toHaveLength(0);

    const noReason = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce, confirmed: true }, cardId, ALEX);
    expect(noReason.text).toMatch(/needs a justification/);

    const first = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce, confirmed: true, justification: 'human PAT in a pipeline, INC-4711' }, cardId, ALEX);
    expect(allText(first.card)).toMatch(/1 of 2 approvals/);
    expect(allText(first.card)).toContain('"verb":"confirm"');
    const confirmData = (first.card!.actions as Array<{ verb?: string; data?: Record<string, unknown> }>).find((a) => a.verb === 'confirm')!.data!;

    const self = await h.click('confirm', confirmData, cardId, ALEX);
    expect(self.text).toMatch(/already approved/);
    expect(ws.tokens().some((t) => t.tokenId === seeded.tokenId)).toBe(true);

    const second = await h.click('confirm', confirmData, cardId, MEGAN);
    expect(allText(second.card)).toContain('Revoke in progress — approved by Alex Wilber and Megan Bowen');
    const job = await h.waitForJob((j) => j.subject === credentialId && j.state === 'done');
    expect(job.approvedBy.map((a) => a.name)).toEqual(['Alex Wilber', 'Megan Bowen']);
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(true);
    const granted = h.store.listAudit({ subject: credentialId }).find((a) => a.action === 'approval.granted')!;
    expect(granted.details).toMatchObject({ justification: 'human PAT in a pipeline, INC-4711', required: 2 });
    await h.connector.waitFor((a) => a.threadRootId === cardId && /^revoked: token/.test(a.text ?? ''));
  }, 60_000);
});
