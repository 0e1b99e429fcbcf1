import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoRunKey, isRuleActive, readAutoRotationRule, type AutoRotationRule, type AutoRotationRun } from '../../src/approvals/auto-rotation.js';
import { DAY_MS, HOUR_MS } from '../../src/clock.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { ALEX, LEE, MEGAN, SUPPORT_CHANNEL, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Must show: approve an auto-rotation rule with two approvers. Over HTTP against the sandbox: "Rotate automatically
 * from now on" posts a rule plan card, N-of-M approval (requester ≠ approver, one vote each), /rules with
 * Pause / Resume / Revoke, a widening that needs a new approval, the renewal reminder (once) and the lapse.
 */

let h: WorkflowHarness;
let credentialId: string;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 }, approvals: { highRisk: [{ action: 'auto-rotate', scopes: [], approvals: 2 }] } } });
  await h.scanAndDeliver();
  credentialId = `databricks-pat:ws-prod:${h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!.tokenId}`;
}, 60_000);
afterAll(async () => h?.close());

const rule = (id: string): AutoRotationRule => readAutoRotationRule(h.store, id)!;
const audits = (action: string) => h.store.listAudit({ limit: 10_000 }).filter((a) => a.action === action);
const verbsIn = (value: unknown) => [...allText(value).matchAll(/"verb":"([^"]+)"/g)].map((m) => m[1]);

/** The card as Teams shows it now: the last post or update of that activity. */
function shownCard(activityId: string): unknown {
  return h.connector.activities.filter((a) => a.activityId === activityId && (a.op === 'post' || a.op === 'update')).at(-1)?.attachments;
}

/** A card posted at the top of the support channel after `seq` whose text matches. */
function postedCard(after: number, pattern: RegExp): Promise<ConnectorActivity> {
  return h.connector.waitFor((a) => a.seq > after && a.op === 'post' && pattern.test(allText(a.attachments)), 10_000);
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await h.alerts.tick();
    await new Promise((r) => setTimeout(r, 25));
  }
}

let planCardId: string;

describe('a rule from a credential card, approved by two approvers', () => {
  it('"Rotate automatically from now on" posts a rule plan card; forged card data chooses nothing', async () => {
    const cardId = h.cardActivityId(credentialId);
    expect(verbsIn(shownCard(cardId))).toContain('autoRotate');
    const alert = await h.freshAlert(credentialId);
    const before = h.connector.lastSeq;
    const answer = await h.click('autoRotate', { alertId: alert.id, nonce: alert.nonce, daysBefore: 1, graceHours: 0 }, cardId, LEE);
    expect(answer.text).toMatch(/Rule R1 proposed/);
    const posted = await postedCard(before, /Auto-rotation rule R1/);
    planCardId = posted.activityId!;
    const text = allText(posted.attachments);
    expect(text).toContain('proposed by Lee Gu');
    expect(text).toContain('14 days before each covered credential expires');
    expect(text).toContain('adf-etl');
    expect(text).toMatch(/2 needed: auto-rotate in ws-prod is high-risk/);
    expect(verbsIn(posted.attachments)).toEqual(['approveRule', 'denyRule']);

    const r1 = rule('R1');
    expect(r1).toMatchObject({ state: 'pending', source: 'chat', selector: { credentialIds: [credentialId] }, trigger: { kind: 'days-before-expiry', days: 14 }, template: { ruleName: 'R1', graceHours: 24, lifetimeDays: 90 } });
    expect(Object.keys(r1.template.approvedFacts!)).toEqual([credentialId]);
    expect(text).toContain(r1.planHash.slice(0, 12));
    const ignored = audits('card.data-ignored').at(-1)!;
    expect(ignored.details).toMatchObject({ verb: 'autoRotate', keys: ['daysBefore', 'graceHours'] });
    expect(audits('rule.proposed').at(-1)).toMatchObject({ subject: r1.id, actor: { name: 'Lee Gu' } });
    // A second click proposes nothing new: the waiting rule's card is shown again.
    const again = await h.click('autoRotate', { alertId: alert.id, nonce: alert.nonce }, cardId, MEGAN);
    expect(again.text).toMatch(/Rule R1: its card is in the channel again/);
    expect(audits('rule.proposed')).toHaveLength(1);
  });

  it('Lee (not an approver) cannot approve; the first approver is one of two; a second vote by the same person does not count', async () => {
    const data = () => ({ ruleId: 'R1', nonce: rule('R1').chat!.nonce });
    expect((await h.click('approveRule', data(), planCardId, LEE)).text).toMatch(/not an approver/);
    const first = await h.click('approveRule', data(), planCardId, ALEX);
    expect(allText(first.card)).toContain('1 of 2');
    expect(rule('R1').state).toBe('pending');
    expect((await h.click('approveRule', data(), planCardId, ALEX)).text).toMatch(/already approved/);
    expect(rule('R1').approvers).toHaveLength(1);
  });

  it('Megan completes it: the rule is in force with both approvers, audited with the votes', async () => {
    const now = h.clock.now();
    const answer = await h.click('approveRule', { ruleId: 'R1', nonce: rule('R1').chat!.nonce, required: 1 }, planCardId, MEGAN);
    expect(allText(answer.card)).toContain('Approved by Alex Wilber and Megan Bowen');
    const r1 = rule('R1');
    expect(r1.state).toBe('active');
    expect(r1.approvers.map((a) => a.name)).toEqual(['Alex Wilber', 'Megan Bowen']);
    expect(r1.reviewBy! - now).toBeGreaterThanOrEqual(180 * DAY_MS);
    expect(r1.reviewBy! - now).toBeLessThan(180 * DAY_MS + 60_000);
    expect(isRuleActive(r1, now)).toBe(true);
    const approved = audits('rule.approved').at(-1)!;
    expect(approved.subject).toBe(r1.id);
    expect((approved.details!.votes as Array<{ name: string }>).map((v) => v.name)).toEqual(['Alex Wilber', 'Megan Bowen']);
    expect(approved.details).toMatchObject({ ruleId: 'R1', planHash: r1.planHash, required: 2 });
  });

  it('the credential card shows the rule instead of offering it', async () => {
    const cardId = h.cardActivityId(credentialId);
    await until(() => allText(shownCard(cardId)).includes('rule R1'), 'the alert card update');
    expect(allText(shownCard(cardId))).toContain('rule R1 — 14 days before expiry (approved by Alex Wilber, Megan Bowen)');
    expect(verbsIn(shownCard(cardId))).not.toContain('autoRotate');
  });
});

describe('/autorotate, /rules and changes', () => {
  it('the requester cannot approve their own rule', async () => {
    const { replies } = await h.command('/autorotate kind:databricks-pat scope:ws-prod 10 12', ALEX);
    const text = allText(replies[0]!.attachments);
    expect(text).toContain('Auto-rotation rule R2 — proposed by Alex Wilber');
    expect(text).toMatch(/cannot be rotated/); // a user-owned PAT in ws-prod matches but is never touched
    const r2 = rule('R2');
    expect(r2).toMatchObject({ selector: { kind: 'databricks-pat', scope: 'ws-prod' }, trigger: { days: 10 }, template: { graceHours: 12 } });
    const self = await h.click('approveRule', { ruleId: 'R2', nonce: r2.chat!.nonce }, replies[0]!.activityId!, ALEX);
    expect(self.text).toMatch(/you requested this/);
    const denied = await h.click('denyRule', { ruleId: 'R2', nonce: r2.chat!.nonce }, replies[0]!.activityId!, MEGAN);
    expect(allText(denied.card)).toContain('Denied by Megan Bowen');
    expect(audits('rule.denied').at(-1)).toMatchObject({ subject: r2.id, actor: { name: 'Megan Bowen' } });
  });

  it('/rules lists the rule with scope, approvers, state, review date, last and next run; bad input gets the usage', async () => {
    h.store.put<AutoRotationRun>('approvals', autoRunKey('R1', credentialId), { ruleId: 'R1', credentialId, lastRunAt: h.clock.now(), lastJobId: 'rot-0001', lastResult: 'done', attempts: 1 });
    const { replies } = await h.command('/rules', LEE);
    const text = allText(replies[0]!.attachments);
    expect(text).toContain('R1 · auto-rotation · active');
    expect(text).toContain('Alex Wilber, Megan Bowen');
    expect(text).toContain(credentialId);
    expect(text).toContain('rot-0001');
    expect(text).toMatch(/Next run.*adf-etl/);
    expect(text).not.toContain('R2 ·'); // denied proposals are left out
    expect(text).toContain('adf-analytics · pipeline JIT · active (declared in config)'); // the sandbox's pipeline caller
    expect(verbsIn(replies[0]!.attachments)).toEqual(['pauseRule', 'revokeRule']);
    expect((await h.command('/rules stop R1', ALEX)).replies[0]!.text).toMatch(/Usage: \/rules/);
    expect(allText((await h.command('/rules --help', ALEX)).replies[0]!.attachments)).toContain('/rules [pause|resume|revoke');
    expect(allText((await h.command('/autorotate --help', ALEX)).replies[0]!.attachments)).toContain('days-before');
  });

  it('pause (button) and resume (command) by one approver each, audited; Lee may not', async () => {
    const { replies } = await h.command('/rules', ALEX);
    const cardId = replies[0]!.activityId!;
    const nonce = rule('R1').chat!.nonce;
    expect((await h.click('pauseRule', { ruleId: 'R1', nonce }, cardId, LEE)).text).toMatch(/not an approver/);
    const paused = await h.click('pauseRule', { ruleId: 'R1', nonce }, cardId, MEGAN);
    expect(allText(paused.card)).toContain('Rule R1 paused by Megan Bowen');
    expect(rule('R1').state).toBe('paused');
    expect(isRuleActive(rule('R1'), h.clock.now())).toBe(false);
    const alertCard = h.cardActivityId(credentialId);
    await until(() => allText(shownCard(alertCard)).includes('rule R1 — paused by Megan Bowen'), 'the alert card to show the pause');
    expect(verbsIn(shownCard(alertCard))).not.toContain('autoRotate');
    expect((await h.command('/rules resume R1', LEE)).replies[0]!.text).toMatch(/not an approver/);
    const resumed = await h.command('/rules resume R1', ALEX);
    expect(allText(resumed.replies[0]!.attachments)).toContain('Rule R1 resumed by Alex Wilber');
    expect(rule('R1').state).toBe('active');
    expect(audits('rule.paused').at(-1)).toMatchObject({ subject: rule('R1').id, actor: { name: 'Megan Bowen' } });
    expect(audits('rule.resumed').at(-1)).toMatchObject({ subject: rule('R1').id, actor: { name: 'Alex Wilber' } });
  });

  it('widening R1 shows a new plan; R1 stays in force until the change is approved, then is replaced', async () => {
    const { replies } = await h.command(`/autorotate rule:R1 kind:databricks-pat scope:ws-prod 21`, LEE);
    const text = allText(replies[0]!.attachments);
    expect(text).toContain('Change to auto-rotation rule R1 — proposed by Lee Gu');
    expect(text).toContain('stays in force until this is approved');
    const v2 = rule('R1v2');
    expect(v2).toMatchObject({ state: 'pending', trigger: { days: 21 }, chat: { replaces: rule('R1').id } });
    expect(isRuleActive(rule('R1'), h.clock.now())).toBe(true);
    const cardId = replies[0]!.activityId!;
    await h.click('approveRule', { ruleId: 'R1v2', nonce: v2.chat!.nonce }, cardId, ALEX);
    expect(rule('R1').state).toBe('active');
    await h.click('approveRule', { ruleId: 'R1v2', nonce: v2.chat!.nonce }, cardId, MEGAN);
    expect(rule('R1v2').state).toBe('active');
    expect(rule('R1')).toMatchObject({ state: 'replaced', chat: { replacedBy: rule('R1v2').id } });
    expect(audits('rule.replaced').at(-1)).toMatchObject({ subject: rule('R1').id });
    const list = allText((await h.command('/rules', ALEX)).replies[0]!.attachments);
    expect(list).toContain('kind:databricks-pat scope:ws-prod');
    expect(list).toContain('rot-0001'); // the last run of the earlier version still shows
  });
});

describe('review date', () => {
  it('posts one reminder 14 days before reviewBy, Renew proposes the rule again, and the rule lapses at reviewBy', async () => {
    const v2 = rule('R1v2');
    const before = h.connector.lastSeq;
    h.clock.set(v2.reviewBy! - 14 * DAY_MS + 60_000);
    await h.workflows.engine.tick();
    const reminder = await postedCard(before, /lapses on/);
    expect(reminder.conversationId.startsWith(SUPPORT_CHANNEL.id)).toBe(true);
    expect(verbsIn(reminder.attachments)).toEqual(['renewRule']);
    h.clock.advance(2 * HOUR_MS);
    await h.workflows.engine.tick();
    h.clock.advance(2 * HOUR_MS);
    await h.workflows.engine.tick();
    expect(h.connector.since(before).filter((a) => a.op === 'post' && /lapses on/.test(allText(a.attachments)))).toHaveLength(1);
    expect(audits('rule.reminder')).toHaveLength(1);

    const renewed = await h.click('renewRule', { ruleId: 'R1v2', nonce: rule('R1v2').chat!.reminder!.nonce }, reminder.activityId!, LEE);
    expect(allText(renewed.card)).toContain('Renewal of auto-rotation rule R1 — proposed by Lee Gu');
    expect(rule('R1v3')).toMatchObject({ state: 'pending', selector: v2.selector, trigger: v2.trigger, chat: { replaces: v2.id } });

    h.clock.set(v2.reviewBy! + 60_000);
    await h.workflows.engine.tick();
    expect(rule('R1v2').state).toBe('expired');
    expect(isRuleActive(rule('R1v2'), h.clock.now())).toBe(false);
    expect(audits('rule.expired').at(-1)).toMatchObject({ subject: v2.id });

    const revoked = await h.command('/rules revoke R1', MEGAN);
    expect(allText(revoked.replies[0]!.attachments)).toContain('Rule R1 revoked by Megan Bowen');
    expect(rule('R1v2').state).toBe('revoked');
    expect(audits('rule.revoked').at(-1)).toMatchObject({ subject: v2.id, actor: { name: 'Megan Bowen' } });
    // Audit details name ids, hashes and selectors only.
    expect(allText(audits('rule.revoked').at(-1)!.details)).not.toMatch(/dapi/);
  });
});
