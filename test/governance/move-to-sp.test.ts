import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import { SANDBOX_RESOURCE_GROUP, SANDBOX_SUBSCRIPTION_ID } from '../../src/sandbox/datafactory/seed.js';
import { ADF_API_VERSION } from '../../src/sandbox/datafactory/index.js';
import type { TokenGrant } from '../../src/sandbox/databricks/model.js';
import type { ActionOffer, ApprovalRecord } from '../../src/approvals/types.js';
import { createRemedyOffer } from '../../src/approvals/remedy-offers.js';
import type { JobRecord } from '../../src/domain/job.js';
import { spCanUseTokens } from '../../src/workflows/move-to-sp/plan.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Must show (issue 13, remedy 1): bob's PAT runs a Data Factory pipeline through kv-prod/adb-prod-bob-pipeline. The card's
 * "Move to a service principal" and /move-to-sp answer with a plan card naming the linked service and pipelines; with
 * move-to-sp marked high-risk two approvers approve; the job creates an on-behalf-of token for sp-etl, publishes it as a
 * new Key Vault version, verifies it, and after the grace window bob's token is gone while the pipeline runs on sp-etl's.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 }, approvals: { highRisk: [{ action: 'move-to-sp', approvals: 2 }] } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

const bobToken = () => h.clouds.seeds.databricks.tokens['ws-prod/bob-jdbc']!;
const bobCredential = () => `databricks-pat:ws-prod:${bobToken().tokenId}`;
const ws = () => h.clouds.handles.databricks.workspace('ws-prod');
const kv = () => h.clouds.handles.keyVault.vault('kv-prod');
const etlAppId = () => h.clouds.seeds.entra.apps['etl-ingest']!.appId;

/** Runs a pipeline of the sandbox factory adf-prod (createRun) and returns its final status and message. */
async function runPipeline(name: string): Promise<{ status: string; message: string }> {
  const factory = h.clouds.seeds.dataFactory.factory;
  const base = `${h.clouds.urls.arm}/subscriptions/${SANDBOX_SUBSCRIPTION_ID}/resourceGroups/${SANDBOX_RESOURCE_GROUP}/providers/Microsoft.DataFactory/factories/${factory}`;
  const token = h.clouds.handles.entra.issueToken(h.clouds.seeds.entra.keywarden.clientId, 'https://management.azure.com/');
  const call = async (method: string, path: string) => {
    const res = await fetch(`${base}${path}?api-version=${ADF_API_VERSION}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
    return (await res.json()) as Record<string, unknown>;
  };
  const runId = String((await call('POST', `/pipelines/${name}/createRun`)).runId);
  for (let i = 0; i < 400; i++) {
    const run = await call('GET', `/pipelineruns/${runId}`);
    if (run.status === 'Succeeded' || run.status === 'Failed') return { status: String(run.status), message: String(run.message ?? '') };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`pipeline ${name} did not finish`);
}

/** Move on bob's card → plan card → Approve (Alex, 1 of 2) → Confirm (Megan): the job runs to its grace window. */
async function approveFromCard(): Promise<JobRecord> {
  const alert = h.alertFor(bobCredential())!;
  const cardId = h.cardActivityId(bobCredential());
  const plan = await h.click('moveToServicePrincipal', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
  const planText = allText(plan.card);
  expect(planText).toContain('Move bob-jdbc to service principal sp-etl?');
  expect(planText).toContain('Data Factory adf-prod / linked service LS_Databricks_Prod → pipelines bob-reports');
  expect(planText).toMatch(/Plan hash/);
  const approve = (plan.card!.actions as Array<{ verb?: string; data?: Record<string, unknown> }>).find((a) => a.verb === 'moveToServicePrincipal')!;
  const first = await h.click('moveToServicePrincipal', approve.data!, cardId, ALEX);
  expect(allText(first.card)).toContain('1 of 2 approvals');
  const confirm = (first.card!.actions as Array<{ verb?: string; data?: Record<string, unknown> }>).find((a) => a.verb === 'confirm')!;
  expect((await h.click('confirm', confirm.data!, cardId, ALEX)).text).toMatch(/already approved this/);
  const second = await h.click('confirm', confirm.data!, cardId, MEGAN);
  expect(allText(second.card)).toContain('Move to a service principal in progress — approved by Alex Wilber and Megan Bowen');
  const jobId = h.store.get<ApprovalRecord>('approvals', String(confirm.data!.approvalId))!.value.jobId;
  return h.waitForJob((j) => j.id === jobId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
}

describe('who may take over a pipeline token', () => {
  it('counts CAN_USE given directly, through one of the SP\'s groups, through users, or as an admin', () => {
    const perms = (entries: Array<{ type: 'group' | 'user' | 'service-principal'; principal: string }>) => ({ exists: true, entries: entries.map((e) => ({ ...e, levels: [{ level: 'CAN_USE', inherited: false }] })) });
    const sp = { applicationId: 'APP-1', groups: ['etl-runners'] };
    expect(spCanUseTokens(perms([{ type: 'service-principal', principal: 'app-1' }]), sp)).toBe(true);
    expect(spCanUseTokens(perms([{ type: 'group', principal: 'etl-runners' }]), sp)).toBe(true);
    expect(spCanUseTokens(perms([{ type: 'group', principal: 'users' }]), sp)).toBe(true);
    expect(spCanUseTokens(perms([]), { applicationId: 'app-1', groups: ['admins'] })).toBe(true);
    expect(spCanUseTokens(perms([{ type: 'group', principal: 'other' }, { type: 'user', principal: 'app-1' }]), sp)).toBe(false);
  });
});

describe('Move to a service principal', () => {
  it('refuses with the reason when the SP has lost CAN_USE on tokens, before any plan can be approved', async () => {
    const grants = ws().tokenPermissions();
    const alert = h.alertFor(bobCredential())!;
    expect(alert.findings.map((f) => f.code)).toContain('human-owned-pipeline');
    try {
      ws().setTokenPermissions(grants.filter((g) => g.name !== etlAppId()));
      const answer = await h.click('moveToServicePrincipal', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(bobCredential()), ALEX);
      expect(answer.text).toMatch(/^Cannot move bob-jdbc to a service principal: service principal sp-etl lacks CAN_USE on tokens in ws-prod/);
      const cmd = await h.command('/move-to-sp bob-jdbc', LEE);
      expect(cmd.replies[0]!.text).toContain('lacks CAN_USE on tokens');
      expect(h.jobs().filter((j) => j.kind === 'move-to-sp')).toEqual([]);
    } finally {
      ws().setTokenPermissions(grants as TokenGrant[]);
    }
  });

  it('/move-to-sp answers with the plan card; the requester cannot approve it', async () => {
    const help = await h.command('/move-to-sp --help', LEE);
    expect(help.replies[0]!.text).toContain('Usage: /move-to-sp <credential>');
    const none = await h.command('/move-to-sp adf-etl', LEE);
    expect(none.replies[0]!.text).toContain('already a service principal');

    const cmd = await h.command('/move-to-sp bob-jdbc', MEGAN);
    const card = cmd.replies[0]!.attachments?.[0]?.content as Record<string, unknown>;
    const text = allText(card);
    expect(text).toContain('on-behalf-of token for service principal sp-etl');
    expect(text).toContain('LS_Databricks_Prod');
    expect(text).toContain('bob-reports');
    expect(text).toContain("revoke bob.dev@contoso.com's token");
    expect(text).toContain('Needs 2 approvers');
    const approve = (card.actions as Array<{ verb?: string; data?: Record<string, unknown> }>).find((a) => a.verb === 'moveToServicePrincipal')!;
    expect(Object.keys(approve.data!).sort()).toEqual(['confirmed', 'nonce', 'offerId']);
    const self = await h.click('moveToServicePrincipal', approve.data!, cmd.replies[0]!.activityId, MEGAN);
    expect(self.text).toMatch(/you requested this, so you cannot approve it/);
    const notApprover = await h.click('moveToServicePrincipal', approve.data!, cmd.replies[0]!.activityId, LEE);
    expect(notApprover.text).toMatch(/is not an approver/);

    // The governance report's button: an offer carrying only { offerId, nonce } answers with the same plan card.
    const offer = createRemedyOffer(h.store, h.clock, { remedy: 'move-to-sp', subject: bobCredential(), scope: 'ws-prod', parameters: {}, offeredBy: { name: 'Keywarden (governance report)' } });
    const fromReport = await h.click('moveToServicePrincipal', { offerId: offer.id, nonce: offer.nonce }, cmd.replies[0]!.activityId, ALEX);
    expect(allText(fromReport.card)).toContain('Data Factory adf-prod / linked service LS_Databricks_Prod → pipelines bob-reports');
    expect((fromReport.card!.actions as Array<{ verb?: string; data?: Record<string, unknown> }>).find((a) => a.verb === 'moveToServicePrincipal')!.data).toEqual({ offerId: offer.id, nonce: offer.nonce, confirmed: true });
  });

  it('Rollback during the grace window puts bob\'s token back in Key Vault and deletes the SP token', async () => {
    const bobValue = kv().readStoredValue('adb-prod-bob-pipeline');
    expect(bobValue).toBe(bobToken().tokenValue);
    const cardId = h.cardActivityId(bobCredential());
    const move = await approveFromCard();
    const spTokenId = String(move.facts.newTokenId);
    expect(kv().readStoredValue('adb-prod-bob-pipeline')).not.toBe(bobValue);
    const offerMessage = await h.connector.waitFor((a) => a.threadRootId === cardId && allText(a.attachments).includes('"verb":"rollback"') && allText(a.attachments).includes(move.id));
    expect(allText(offerMessage.attachments)).toContain('Moved to a service principal and verified');
    const offer = h.store.get<ActionOffer>('approvals', `offer:${move.id}`)!.value;
    const answer = await h.click('rollback', { jobId: move.id, nonce: offer.nonce }, offerMessage.activityId, ALEX);
    expect(allText(answer.card)).toContain('Rollback in progress — approved by Alex Wilber');
    await h.waitForJob((j) => j.kind === 'rollback' && j.state === 'done');
    expect(kv().readStoredValue('adb-prod-bob-pipeline')).toBe(bobValue);
    expect(ws().tokens({ includeRevoked: true }).find((t) => t.tokenId === spTokenId)?.revoked).toBe(true);
    expect(ws().tokens().some((t) => t.tokenId === bobToken().tokenId)).toBe(true);
    expect(h.jobs().find((j) => j.id === move.id)?.state).toBe('cancelled');
    await h.connector.waitFor((a) => a.threadRootId === cardId && /^rolled back: /.test(a.text ?? ''));
  });

  it('two approvers approve from the card; the SP token replaces bob\'s in Key Vault, is verified, and bob\'s token goes after the grace window', async () => {
    const cardId = h.cardActivityId(bobCredential());
    const posted = h.connector.lastSeq;
    const tokensBefore = new Set(ws().tokens({ includeRevoked: true }).map((t) => t.tokenId));
    const versionsBefore = kv().versions('adb-prod-bob-pipeline').length;

    const verified = await approveFromCard();
    const created = ws().tokens({ includeRevoked: true }).filter((t) => !tokensBefore.has(t.tokenId));
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ ownerName: etlAppId(), comment: `bob-jdbc [keywarden rotation ${verified.id}]`, revoked: false });
    const versions = kv().versions('adb-prod-bob-pipeline');
    expect(versions).toHaveLength(versionsBefore + 1);
    expect(versions.at(-1)!.tags).toMatchObject({ 'managed-by': 'keywarden', 'credential-id': created[0]!.tokenId, 'rotation-id': verified.id, workspace: 'ws-prod' });
    expect(ws().tokens().some((t) => t.tokenId === bobToken().tokenId)).toBe(true); // grace window: bob's still works

    for (const words of ['created an on-behalf-of token', 'published sp-etl\'s token as Key Vault version', 'moved to sp-etl: its token']) {
      await h.connector.waitFor((a) => a.seq > posted && a.threadRootId === cardId && (a.text ?? '').includes(words));
    }
    const pipelineMid = await runPipeline('bob-reports');
    expect(pipelineMid).toEqual({ status: 'Succeeded', message: '' });

    h.clock.advance(24 * HOUR_MS + MINUTE_MS);
    await h.workflows.engine.tick();
    const done = await h.waitForJob((j) => j.id === verified.id && j.state === 'done');
    expect(ws().tokens({ includeRevoked: true }).find((t) => t.tokenId === bobToken().tokenId)!.revoked).toBe(true);
    expect(ws().tokens({ includeRevoked: true }).filter((t) => !tokensBefore.has(t.tokenId))).toHaveLength(1);
    const result = await h.connector.waitFor((a) => a.threadRootId === cardId && /^moved to a service principal: kv-prod\/adb-prod-bob-pipeline holds sp-etl's token/.test(a.text ?? ''));
    expect(result.text).toContain(`bob.dev@contoso.com's token …${bobToken().tokenId.slice(-4)} revoked at`);

    // The pipeline reads the latest version: it now runs as sp-etl, and bob's token no longer answers.
    expect(await runPipeline('bob-reports')).toMatchObject({ status: 'Succeeded' });
    const bob = await fetch(`${h.clouds.urls.workspaces['ws-prod']}/api/2.0/token/list`, { headers: { authorization: `Bearer ${bobToken().tokenValue}` } });
    expect(bob.status).toBe(403);

    const audit = h.store.listAudit({ subject: bobCredential() });
    expect(audit.filter((a) => a.action === 'approval.granted').at(-1)!.details).toMatchObject({ verb: 'move-to-sp', planHash: done.planHash, jobId: done.id });
    expect(audit.some((a) => a.action === 'approval.refused' && (a.details as { reason?: string }).reason?.includes('lacks CAN_USE'))).toBe(true);
    await h.alerts.tick();
    await h.alerts.delivery.idle();
    expect(allText(h.connector.updatesOf(cardId).at(-1)?.attachments)).toContain('Resolved');
  });
});
