import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAutoRotationRule, type AutoRotationRule } from '../../src/approvals/auto-rotation.js';
import { DAY_MS, HOUR_MS } from '../../src/clock.js';
import type { Credential } from '../../src/domain/credential.js';
import type { JobRecord } from '../../src/domain/job.js';
import type { AutoRunRecord } from '../../src/workflows/autorotate/runs-store.js';
import { ALEX, allText, LEE, MEGAN, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Must show (issue 11): a rule approved by two approvers fires on its day without a click — the scan starts the same
 * journaled rotation a click would, the old token goes after the grace window, and the card's thread names the rule and
 * its approvers; a credential of the same selector with no consumer and no recent use is skipped with the reason; a
 * changed Key Vault target means no job and a card that says why; a failing rotation retries, escalates with @mentions
 * and pauses the rule for that credential until a person rotates it by hand.
 */

let h: WorkflowHarness;
let scanned: Credential[];
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { approvals: { highRisk: [{ action: 'auto-rotate', scopes: [], approvals: 2 }] } } });
  await h.scanAndDeliver();
  scanned = h.scanner.lastScan()!.credentials;
}, 60_000);
afterAll(async () => h?.close());

const pat = (workspace: string, comment: string): Credential => {
  const seeded = h.clouds.seeds.databricks.tokens[`${workspace}/${comment}`]!;
  return scanned.find((c) => c.id === `databricks-pat:${workspace}:${seeded.tokenId}`)!;
};

/**
 * A rule proposed by Lee (`/autorotate …`, not an approver) and approved over the protocol by Alex and Megan on its rule
 * card (auto-rotate needs two approvers here), as the rules side stores it: the approved plan facts of what it covers.
 */
async function approveRule(args: string, ruleName: string): Promise<AutoRotationRule> {
  const { replies } = await h.command(`/autorotate ${args}`, LEE);
  const cardId = replies[0]!.activityId!;
  expect(allText(replies[0]!.attachments)).toContain(`Auto-rotation rule ${ruleName}`);
  for (const user of [ALEX, MEGAN]) {
    const nonce = readAutoRotationRule(h.store, ruleName)!.chat!.nonce;
    await h.click('approveRule', { ruleId: ruleName, nonce }, cardId, user);
  }
  const rule = readAutoRotationRule(h.store, ruleName)!;
  expect(rule).toMatchObject({ state: 'active', approvers: [{ name: 'Alex Wilber' }, { name: 'Megan Bowen' }] });
  return rule;
}

const run = (ruleId: string, credentialId: string) => h.store.get<AutoRunRecord>('approvals', `autorun:${ruleId}:${credentialId}`)?.value;
const jobsOf = (credentialId: string): JobRecord[] => h.jobs().filter((j) => j.subject === credentialId);
const cardText = (credentialId: string): string => {
  const id = h.cardActivityId(credentialId);
  const updates = h.connector.updatesOf(id);
  return allText(updates.length ? updates[updates.length - 1]!.attachments : h.connector.activities.find((a) => a.activityId === id)?.attachments);
};

describe('a rule approved by Alex and Megan, on its firing day', () => {
  it('rotates without a click, revokes the old token after the grace window, and the thread names the rule and its approvers', async () => {
    const nightly = pat('ws-analytics', 'analytics-nightly');
    const adhoc = pat('ws-analytics', 'analytics-adhoc');
    expect(nightly.consumers.map((c) => c.name)).toEqual(['LS_Databricks_Analytics']);
    expect(adhoc.consumers).toEqual([]);
    const rule = await approveRule('kind:databricks-pat scope:ws-analytics 10 24', 'R1');
    expect(Object.keys(rule.template.approvedFacts!).sort()).toEqual([adhoc.id, nightly.id].sort());
    const ws = h.clouds.handles.databricks.workspace('ws-analytics');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const versionsBefore = kv.versions('adb-analytics-nightly-token').length;

    // Not yet: 12 days left, the rule fires 10 days before expiry.
    await h.scanAndDeliver();
    expect(jobsOf(nightly.id)).toEqual([]);

    h.clock.advance(2 * DAY_MS + HOUR_MS);
    await h.scanAndDeliver();
    const job = await h.waitForJob((j) => j.subject === nightly.id);
    expect(job).toMatchObject({ kind: 'rotate-pat', approvalId: rule.id, approvedBy: [{ name: 'Alex Wilber' }, { name: 'Megan Bowen' }] });
    expect(job.plan.parameters).toMatchObject({ lifetimeDays: 90, graceHours: 24 });
    // No click: nobody approved this job on a card; it runs under the rule.
    expect(h.store.listAudit({ subject: nightly.id }).some((a) => a.action === 'approval.granted')).toBe(false);

    const verified = await h.passGraceWindow(nightly.id);
    expect(verified.state).toBe('waiting');
    const done = await h.waitForJob((j) => j.id === job.id && j.state === 'done');
    const old = ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === nightly.nativeId)!;
    expect(old.revoked).toBe(true);
    const created = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(`[keywarden rotation ${job.id}]`));
    expect(created).toHaveLength(1);
    expect(kv.versions('adb-analytics-nightly-token')).toHaveLength(versionsBefore + 1);
    expect(kv.versions('adb-analytics-nightly-token').at(-1)!.tags?.['credential-id']).toBe(created[0]!.tokenId);

    const cardId = h.cardActivityId(nightly.id);
    const said = await h.connector.waitFor((a) => a.threadRootId === cardId && /^Rotated automatically under rule R1 approved by Alex Wilber and Megan Bowen\./.test(a.text ?? ''));
    expect(said.text).toContain(`job ${job.id}, plan ${done.planHash.slice(0, 12)}`);
    expect(said.text).toMatch(new RegExp(`new token …${created[0]!.tokenId.slice(-4)} .*Key Vault kv-prod/adb-analytics-nightly-token version .*verified at .*old token …${nightly.nativeId.slice(-4)} revoked at`));
    expect(h.thread(cardId).some((a) => /^Rotating automatically under rule R1 approved by Alex Wilber and Megan Bowen \(it fires 10 d before expiry; it expires in 9 d/.test(a.text ?? ''))).toBe(true);
    expect(run('R1', nightly.id)).toMatchObject({ ruleId: 'R1', credentialId: nightly.id, lastJobId: job.id, attempts: 1, state: 'done', lastResult: `rotated (job ${job.id})` });
    const audit = h.store.listAudit({ subject: nightly.id });
    expect(audit.find((a) => a.action === 'autorotate.run')?.details).toMatchObject({ ruleId: 'R1', jobId: job.id, planHash: job.planHash, rulePlanHash: rule.planHash });
    expect(audit.some((a) => a.action === 'autorotate.done')).toBe(true);

    // Same selector, no consumer and no use in 45 days: skipped, with the reason on its card and in the audit log.
    expect(jobsOf(adhoc.id)).toEqual([]);
    expect(run('R1', adhoc.id)).toMatchObject({ state: 'skipped', skipCode: 'no-consumer' });
    const skipped = h.store.listAudit({ subject: adhoc.id }).filter((a) => a.action === 'autorotate.skipped');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.details).toMatchObject({ ruleId: 'R1', reason: 'no known consumer and not used in 30 days: consider revoking instead' });
    expect(cardText(adhoc.id)).toContain('Not rotated automatically under rule R1: no known consumer and not used in 30 days: consider revoking instead');

    // A second scan neither starts another run nor repeats the skip.
    await h.scanAndDeliver();
    expect(jobsOf(nightly.id)).toHaveLength(1);
    expect(h.store.listAudit({ subject: adhoc.id }).filter((a) => a.action === 'autorotate.skipped')).toHaveLength(1);
  }, 90_000);
});

describe('a plan that changed shape since approval', () => {
  it('is not rotated: no job, and the card says the Key Vault target changed', async () => {
    const devCi = pat('ws-dev', 'dev-ci');
    await approveRule(`${devCi.id} 10`, 'R2');
    // Someone moved the token to another vault after the rule was approved.
    const kvDev = h.clouds.handles.keyVault.vault('kv-dev');
    const current = kvDev.versions('adb-dev-ci-token').at(-1)!;
    const value = kvDev.readStoredValue('adb-dev-ci-token')!;
    h.clouds.handles.keyVault.vault('kv-prod').seedSecret('adb-dev-ci-token', { value, tags: current.tags, exp: current.exp });
    kvDev.seedSecret('adb-dev-ci-token', { value, exp: current.exp });

    await h.scanAndDeliver();
    expect(jobsOf(devCi.id)).toEqual([]);
    const skipped = h.store.listAudit({ subject: devCi.id }).find((a) => a.action === 'autorotate.skipped')!;
    expect(skipped.details).toMatchObject({ ruleId: 'R2', code: 'drift' });
    expect(String((skipped.details as { reason: string }).reason)).toMatch(/^the Key Vault target changed since rule R2 was approved \(.*"kv-dev" when approved and is now "kv-prod".*\) — rotate by hand or renew the rule$/);
    expect(cardText(devCi.id)).toContain('Not rotated automatically under rule R2: the Key Vault target changed since rule R2 was approved');
  }, 60_000);
});

describe('a failing automatic rotation', () => {
  it('retries, then escalates with @mentions of the approvers and the runway, and pauses the rule for that credential until a person rotates it', async () => {
    const etl = pat('ws-prod', 'adf-etl');
    await approveRule(`${etl.id} 10`, 'R3');
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    ws.injectFault({ method: 'POST', path: '/api/2.0/token-management/on-behalf-of/tokens', status: 500, times: Infinity, body: { error_code: 'INTERNAL_ERROR', message: 'token service unavailable' } });
    let job: JobRecord;
    try {
      await h.scanAndDeliver();
      job = await h.waitForJob((j) => j.subject === etl.id && ['compensated', 'failed', 'done'].includes(j.state), 40_000);
    } finally {
      ws.clearFaults();
    }
    expect(job.state).toBe('compensated');
    expect(job.steps.find((s) => s.name === 'create')!.attempts).toBe(5);
    const cardId = h.cardActivityId(etl.id);
    const escalation = await h.connector.waitFor((a) => a.threadRootId === cardId && (a.text ?? '').includes('Automatic rotation under rule R3 failed'));
    expect(escalation.text).toMatch(/^<at>Alex Wilber<\/at> <at>Megan Bowen<\/at> Automatic rotation under rule R3 failed at create after 5 attempts: .*it expires in \d+ d \d+ h \(/);
    expect(escalation.text).toContain('Rule R3 is paused for this credential until someone acts');
    expect(escalation.mentions.map((m) => m.id).sort()).toEqual([ALEX.aadObjectId, MEGAN.aadObjectId].sort());
    expect(run('R3', etl.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect(run('R3', etl.id)?.pausedReason).toMatch(/the automatic rotation failed/);
    const actions = h.store.listAudit({ subject: etl.id }).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['autorotate.run', 'autorotate.failed', 'autorotate.paused']));

    // Paused: the next scan starts nothing for it.
    await h.scanAndDeliver();
    expect(jobsOf(etl.id)).toHaveLength(1);

    // A person rotates it by hand: the pause is lifted.
    const alert = await h.freshAlert(etl.id);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const byHand = await h.waitForJob((j) => j.subject === etl.id && j.approvalId.startsWith('alert:') && typeof j.facts.verifiedAt === 'number' && j.state === 'waiting');
    h.clock.advance(25 * HOUR_MS);
    await h.workflows.engine.tick();
    await h.waitForJob((j) => j.id === byHand.id && j.state === 'done');
    for (let i = 0; i < 100 && run('R3', etl.id)?.pausedReason; i++) await new Promise((r) => setTimeout(r, 50));
    expect(run('R3', etl.id)?.pausedReason).toBeUndefined();
    expect(h.store.listAudit({ subject: etl.id }).some((a) => a.action === 'autorotate.resumed')).toBe(true);
  }, 90_000);
});
