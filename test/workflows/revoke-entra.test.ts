import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * Revoke an Entra client secret (src/workflows/revoke/revoke.ts, removePassword): the form shows what depends on it, one
 * approver with a justification removes it, a second click starts nothing; a secret on an app Keywarden does not own
 * is refused by Graph and the thread says so, and the secret is untouched.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('Revoke on an Entra client secret card', () => {
  it('removes the secret from the app after a justified approval, exactly once', async () => {
    const etl = h.clouds.seeds.entra.etlSecret;
    const credentialId = `entra-password:${etl.appId}:${etl.keyId}`;
    const app = h.clouds.handles.entra.directory.applications.get(h.clouds.seeds.entra.apps['etl-ingest']!.objectId)!;
    const cardId = h.cardActivityId(credentialId);
    const alert = await h.freshAlert(credentialId);
    const passwordsBefore = app.passwordCredentials.length;

    const form = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(allText(form.card)).toContain('Justification (required)');
    expect(allText(form.card)).toContain('held in kv-prod/etl-ingest-client-secret');
    expect(allText(form.card)).toContain(`remove client secret …${etl.keyId.slice(-4)} from app etl-ingest`);
    expect(app.passwordCredentials.some((p) => p.keyId === etl.keyId)).toBe(true);

    const answer = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce, confirmed: true, justification: 'leaked in a ticket, INC-9' }, cardId, ALEX);
    expect(allText(answer.card)).toContain('Revoke in progress — approved by Alex Wilber');
    const job = await h.waitForJob((j) => j.subject === credentialId && ['done', 'compensated', 'failed', 'cancelled'].includes(j.state));
    expect(job).toMatchObject({ kind: 'revoke', state: 'done' });
    expect(job.facts.alreadyGone).toBe(false);
    expect(app.passwordCredentials.some((p) => p.keyId === etl.keyId)).toBe(false);
    expect(app.passwordCredentials).toHaveLength(passwordsBefore - 1);

    const message = await h.connector.waitFor((a) => a.threadRootId === cardId && /^revoked: client secret/.test(a.text ?? ''));
    expect(message.text).toContain(`…${etl.keyId.slice(-4)}`);
    const audit = h.store.listAudit({ subject: credentialId });
    expect(audit.find((a) => a.action === 'approval.granted')?.details).toMatchObject({ justification: 'leaked in a ticket, INC-9', verb: 'revoke' });
    expect(audit.some((a) => a.action === 'job.done')).toBe(true);

    // A replayed click starts nothing and removes nothing more.
    const again = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce, confirmed: true, justification: 'again' }, cardId, ALEX);
    expect(again.text ?? allText(again.card)).toMatch(/already|out of date|resolved/);
    expect(h.jobs().filter((j) => j.subject === credentialId)).toHaveLength(1);
    expect(allText([h.connector.activities, audit, h.jobs(), h.logLines])).not.toContain(etl.value);
  }, 60_000);

  it('a secret on an app Keywarden does not own: Graph refuses, the thread says what to fix, the secret stays', async () => {
    const reporting = h.clouds.seeds.entra.apps['reporting-svc']!;
    const app = h.clouds.handles.entra.directory.applications.get(reporting.objectId)!;
    const secret = app.passwordCredentials.find((p) => p.displayName === 'reporting-svc-secret')!;
    const credentialId = `entra-password:${reporting.appId}:${secret.keyId}`;
    const cardId = h.cardActivityId(credentialId);
    const alert = await h.freshAlert(credentialId);

    await h.click('revoke', { alertId: alert.id, nonce: alert.nonce, confirmed: true, justification: 'app retired, CHG-7' }, cardId, ALEX);
    const job = await h.waitForJob((j) => j.subject === credentialId && ['done', 'compensated', 'failed', 'cancelled'].includes(j.state));
    expect(job.state).not.toBe('done');
    expect(job.steps[0]!.attempts).toBe(1); // a 403 is not retried
    expect(app.passwordCredentials.some((p) => p.keyId === secret.keyId)).toBe(true);
    const message = await h.connector.waitFor((a) => a.threadRootId === cardId && /^revoke failed/.test(a.text ?? ''));
    expect(message.text).toMatch(/Application\.ReadWrite\.OwnedBy/);
    expect(message.text).toMatch(/may still be valid — check it by hand/);
  }, 60_000);
});
