import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/domain/job.js';
import { ALEX, allText, LEE, MEGAN, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cardOf, findAction } from './remedy-helpers.js';

/**
 * Revoke anything on demand over the protocol (issue 13, point 5): `/revoke <credential>` for a credential with no
 * alert, with the same gate as the card's Revoke — a justification, and a second approver or an override reason when
 * it was used recently. For Entra secrets "used recently" comes from Graph's sign-in activity report; without
 * AuditLog.Read.All the last use is unknown and the form says which permission to grant.
 */

let h: WorkflowHarness;
const analytics = () => h.clouds.handles.databricks.workspace('ws-analytics');
const alive = (comment: string) => analytics().tokens().some((t) => t.comment === comment);
const finished = (j: JobRecord) => ['done', 'compensated', 'failed', 'cancelled'].includes(j.state);
const hasAlert = (credentialId: string) => h.alertFor(credentialId) !== undefined;

beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('/revoke', () => {
  it('--help, unknown names and ambiguity are answered in words', async () => {
    expect((await h.command('/revoke --help', LEE)).replies[0]!.text).toContain('/revoke <credential id or name>');
    expect((await h.command('/revoke no-such-token', LEE)).replies[0]!.text).toMatch(/No credential in the latest scan is called "no-such-token"/);
  });

  it('a healthy token with no alert: plan → justified approval → gone, reported in the thread', async () => {
    const scan = h.scanner.lastScan()!;
    const c = scan.credentials.find((x) => x.name === 'old-notebook')!;
    expect(hasAlert(c.id)).toBe(false);
    const { replies } = await h.command('/revoke old-notebook', LEE);
    const form = replies[0]!;
    const text = allText(cardOf(form));
    expect(text).toContain('Revoke old-notebook?');
    expect(text).toContain('Justification (required)');
    expect(text).toContain('One approver is enough.');
    const revoke = findAction(cardOf(form), 'revokeOnDemand')!;
    expect(Object.keys(revoke.data).sort()).toEqual(['nonce', 'offerId']);

    expect((await h.click('revokeOnDemand', revoke.data, form.activityId, LEE)).text).toMatch(/not an approver/);
    expect((await h.click('revokeOnDemand', revoke.data, form.activityId, ALEX)).text).toMatch(/needs a justification/);
    const answer = await h.click('revokeOnDemand', { ...revoke.data, justification: 'leaked in a notebook export, INC-42' }, form.activityId, ALEX);
    expect(allText(answer.card)).toContain('Revoke in progress — approved by Alex Wilber');
    const job = await h.waitForJob((j) => j.subject === c.id && finished(j));
    expect(job).toMatchObject({ kind: 'revoke', state: 'done' });
    expect(alive('old-notebook')).toBe(false);
    await h.connector.waitFor((a) => a.threadRootId === form.activityId && /^revoked: token/.test(a.text ?? ''));
    const granted = h.store.listAudit({ subject: c.id }).find((a) => a.action === 'approval.granted');
    expect(granted?.details).toMatchObject({ verb: 'revoke', justification: 'leaked in a notebook export, INC-42', targets: { onDemand: true, askedBy: 'Lee Gu' } });

    // The same offer cannot start a second revoke.
    const again = await h.click('revokeOnDemand', { ...revoke.data, justification: 'again please' }, form.activityId, MEGAN);
    expect(again.text ?? allText(again.card)).toMatch(/already|not in the latest scan|out of date/);
  }, 60_000);

  it('a PAT used yesterday needs a second approver (or an override reason), like the card button', async () => {
    const { replies } = await h.command('/revoke bi-export', LEE);
    const form = replies[0]!;
    expect(allText(cardOf(form))).toContain('Needs 2 approvers: it was used within the last 7 days');
    expect(allText(cardOf(form))).toContain('overrideReason');
    const revoke = findAction(cardOf(form), 'revokeOnDemand')!;
    const first = await h.click('revokeOnDemand', { ...revoke.data, justification: 'project ended, CHG-5' }, form.activityId, ALEX);
    const confirm = findAction(first.card, 'confirm')!;
    expect(allText(first.card)).toContain('1 of 2 approvals');
    expect(alive('bi-export')).toBe(true);
    expect((await h.click('confirm', confirm.data, form.activityId, ALEX)).text).toMatch(/already approved this/);
    await h.click('confirm', confirm.data, form.activityId, MEGAN);
    const job = await h.waitForJob((j) => j.kind === 'revoke' && j.plan.facts.nativeId === h.clouds.seeds.databricks.tokens['ws-analytics/bi-export']!.tokenId && finished(j));
    expect(job.state).toBe('done');
    expect(job.approvedBy.map((a) => a.name)).toEqual(['Alex Wilber', 'Megan Bowen']);
    expect(alive('bi-export')).toBe(false);
  }, 60_000);

  it('an Entra secret signed in with just now needs the same second approver or override as a PAT in use', async () => {
    const etl = h.clouds.seeds.entra.etlSecret;
    // etl-ingest's pipeline signs in with its secret: Graph's sign-in activity report shows it at the next scan.
    const res = await fetch(`${h.clouds.handles.entra.authorityHost}/${h.clouds.tenantId}/oauth2/v2.0/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: etl.appId, client_secret: etl.value, scope: 'https://graph.microsoft.com/.default' }),
    });
    expect(res.status).toBe(200);
    await h.scanner.runScan('command');
    const id = `entra-password:${etl.appId}:${etl.keyId}`;
    const { replies } = await h.command(`/revoke ${id}`, LEE);
    const form = replies[0]!;
    const text = allText(cardOf(form));
    expect(text).toMatch(/last used \d{4}-\d\d-\d\d/);
    expect(text).toContain('Needs 2 approvers: it was used within the last 7 days');
    const revoke = findAction(cardOf(form), 'revokeOnDemand')!;
    const answer = await h.click('revokeOnDemand', { ...revoke.data, justification: 'secret pasted in a ticket', overrideReason: 'the pipeline moved to a certificate today' }, form.activityId, ALEX);
    expect(allText(answer.card)).toContain('Revoke in progress — approved by Alex Wilber');
    const job = await h.waitForJob((j) => j.subject === id && finished(j));
    expect(job.state).toBe('done');
    const app = h.clouds.handles.entra.directory.applications.get(h.clouds.seeds.entra.apps['etl-ingest']!.objectId)!;
    expect(app.passwordCredentials.some((p) => p.keyId === etl.keyId)).toBe(false);
    const granted = h.store.listAudit({ subject: id }).find((a) => a.action === 'approval.granted');
    expect(granted?.details).toMatchObject({ overrideReason: 'the pipeline moved to a certificate today', required: 1 });
    expect(allText([h.connector.activities, h.logLines])).not.toContain(etl.value);
  }, 60_000);

  it('without AuditLog.Read.All the last use is unknown and the form names the permission to grant', async () => {
    h.clouds.handles.entra.directory.withdraw(h.clouds.seeds.entra.keywarden.clientId, 'AuditLog.Read.All');
    await h.scanner.runScan('command');
    const { replies } = await h.command('/revoke hr-sync / hr-sync-secret', LEE);
    const text = allText(cardOf(replies[0]!));
    expect(text).toMatch(/last use unknown — Graph refused the sign-in activity report \(403\): grant Keywarden's app the Microsoft Graph application permission AuditLog\.Read\.All/);
    expect(text).toContain('One approver is enough.');
  }, 60_000);
});
