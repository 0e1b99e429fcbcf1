import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import { ESTATE_USERS } from '../../src/sandbox/entra/seed.js';
import { ALEX, allText, LEE, MEGAN, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cardOf, findAction } from './remedy-helpers.js';

/**
 * Retire unused tokens over the protocol (issue 13, point 4): /retire-unused → plan card → an approver (not the
 * requester) approves → the owners are @mentioned in the thread (mention entities in the Bot Connector record) → the
 * clock moves past the wait → a token used during the wait and one its owner kept are dropped with their reasons, the
 * others are deleted in the Databricks emulator and listed; then a batch interrupted mid-way by a crash resumes in a
 * restarted Keywarden and revokes each token exactly once.
 */

let h: WorkflowHarness;
const ALICE = { id: '29:alice-admin', name: 'Alice Admin', aadObjectId: ESTATE_USERS.alice.id };
const BOB = ESTATE_USERS.bob;
const analytics = () => h.clouds.handles.databricks.workspace('ws-analytics');
const tokenOf = (comment: string) => h.clouds.seeds.databricks.tokens[`ws-analytics/${comment}`]!;
const alive = (comment: string) => analytics().tokens().some((t) => t.comment === comment);
const deletes = (tokenId: string) => analytics().requests().filter((r) => r.method === 'DELETE' && r.path.endsWith(`/tokens/${tokenId}`));
const finished = (j: JobRecord) => ['done', 'compensated', 'failed', 'cancelled'].includes(j.state);

beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanner.runScan('command');
}, 60_000);
afterAll(async () => h?.close());

describe('/retire-unused', () => {
  it('--help explains the command', async () => {
    const { replies } = await h.command('/retire-unused --help', LEE);
    expect(replies[0]!.text).toContain('/retire-unused <workspace|all> [days]');
    expect(replies[0]!.text).toContain('governance.retire.waitDays');
  });

  it('/findings offers "Retire unused tokens in ws-analytics"; its click shows the plan and approves nothing', async () => {
    const { replies } = await h.command('/findings', LEE);
    const button = findAction(cardOf(replies[0]!), 'retireUnused', () => true)!;
    expect(button.title).toBe('Retire unused tokens in ws-analytics (4)');
    const answer = await h.click('retireUnused', button.data, replies[0]!.activityId, ALEX);
    expect(allText(answer.card)).toContain('Retire 4 unused or unrotated Databricks tokens in ws-analytics');
    expect(findAction(answer.card, 'retireUnused')!.data.offerId).not.toBe(button.data.offerId);
    expect(h.jobs().filter((j) => j.kind === 'retire-unused')).toHaveLength(0);
  });

  it('the requester cannot approve their own batch', async () => {
    const { replies } = await h.command('/retire-unused ws-analytics', ALEX);
    const approve = findAction(cardOf(replies[0]!), 'retireUnused')!;
    const answer = await h.click('retireUnused', approve.data, replies[0]!.activityId, ALEX);
    expect(answer.text).toMatch(/you requested this, so you cannot approve it/);
    expect(h.jobs().filter((j) => j.kind === 'retire-unused')).toHaveLength(0);
  });

  it('plan → approve → owners @mentioned → wait → used / kept tokens dropped, the rest revoked and listed', async () => {
    const { replies } = await h.command('/retire-unused ws-analytics', LEE);
    const plan = replies[0]!;
    const text = allText(cardOf(plan));
    for (const comment of ['old-notebook', 'poc-sandbox', 'reporting-legacy', 'bi-export']) expect(text).toContain(`\\"${comment}\\" in ws-analytics`);
    expect(text).not.toContain('analytics-sp');
    expect(text).toContain('No rollback: Databricks cannot restore a deleted token');
    expect(text).toMatch(/sp-reporting \(owner of \\"reporting-legacy\\"\) is named in plain text, not mentioned: a service principal/);
    expect(text).toContain('7 d (governance.retire.waitDays)');

    const approve = findAction(cardOf(plan), 'retireUnused')!;
    expect(approve.data).toEqual({ offerId: expect.stringMatching(/^rem-/), nonce: expect.any(String) });
    expect((await h.click('retireUnused', approve.data, plan.activityId, LEE)).text).toMatch(/not an approver/);
    const approvedAt = h.clock.now();
    const answer = await h.click('retireUnused', approve.data, plan.activityId, MEGAN);
    expect(allText(answer.card)).toContain('Retiring unused tokens in progress — approved by Megan Bowen');

    // Phase 1: the owners hear about it in the thread, with real mentions, and the job waits on the clock.
    const job = await h.waitForJob((j) => j.kind === 'retire-unused' && j.state === 'waiting');
    expect(job.dueAt).toBeGreaterThanOrEqual(approvedAt + 7 * DAY_MS);
    expect(job.dueAt).toBeLessThan(approvedAt + 7 * DAY_MS + 60_000);
    const notice = await h.connector.waitFor((a) => a.threadRootId === plan.activityId && /will be revoked on/.test(a.text ?? ''));
    expect(notice.mentions.map((m) => m.id).sort()).toEqual([ESTATE_USERS.alice.id, BOB.id].sort());
    expect(notice.text).toContain('<at>bob.dev@contoso.com</at>: "old-notebook" in ws-analytics, "bi-export" in ws-analytics');
    expect(notice.text).toContain('<at>alice.admin@contoso.com</at>: "poc-sandbox" in ws-analytics');
    expect(notice.text).toMatch(/sp-reporting \(not mentioned: a service principal/);
    expect(notice.text).toMatch(/use it before .* or click "Keep this token"/);
    expect(alive('old-notebook') && alive('poc-sandbox') && alive('reporting-legacy') && alive('bi-export')).toBe(true);

    // During the wait: bi-export is used by its job; Alice keeps poc-sandbox; Lee (not owner, not approver) cannot keep Bob's.
    const used = await fetch(`${analytics().url}/api/2.0/token/list`, { headers: { authorization: `Bearer ${tokenOf('bi-export').tokenValue}` } });
    expect(used.status).toBe(200);
    const keepOld = findAction(cardOf(notice), 'keepToken', (d) => d.tokenId === tokenOf('old-notebook').tokenId)!;
    expect((await h.click('keepToken', keepOld.data, notice.activityId, LEE)).text).toMatch(/only the token's owner \(bob.dev@contoso.com\) or an approver/);
    const keepPoc = findAction(cardOf(notice), 'keepToken', (d) => d.tokenId === tokenOf('poc-sandbox').tokenId)!;
    expect((await h.click('keepToken', keepPoc.data, notice.activityId, ALICE)).text).toContain('Kept: "poc-sandbox"');

    // Phase 2 at dueAt.
    h.clock.set(job.dueAt! + 60_000);
    await h.workflows.engine.tick();
    const done = await h.waitForJob((j) => j.id === job.id && finished(j));
    expect(done.state).toBe('done');
    expect(alive('old-notebook')).toBe(false);
    expect(alive('reporting-legacy')).toBe(false);
    expect(alive('bi-export')).toBe(true);
    expect(alive('poc-sandbox')).toBe(true);
    expect(deletes(tokenOf('old-notebook').tokenId)).toHaveLength(1);

    const result = await h.connector.waitFor((a) => a.threadRootId === plan.activityId && /^Retired 2 of 4/.test(a.text ?? ''));
    expect(result.text).toContain('- revoked "old-notebook" (ws-analytics');
    expect(result.text).toContain('- revoked "reporting-legacy" (ws-analytics');
    expect(result.text).toMatch(/- kept "bi-export" .* used on \d{4}-\d\d-\d\d, during the wait/);
    expect(result.text).toMatch(/- kept "poc-sandbox" .* kept by Alice Admin/);
    // The card itself shows the outcome.
    const updated = h.connector.activities.filter((a) => a.activityId === plan.activityId && a.op === 'update').pop();
    expect(allText(updated)).toContain('Retired 2 of 4 token(s)');
    const audit = h.store.listAudit({ subject: 'retire-unused:ws-analytics' });
    expect(audit.find((a) => a.action === 'approval.granted')?.details).toMatchObject({ verb: 'retire-unused', requestedBy: { name: 'Lee Gu' } });
  }, 60_000);

  it('a crash mid-batch: a restarted Keywarden resumes and revokes each token exactly once', async () => {
    await h.scanner.runScan('command');
    // unused ≥ 1 day or not rotated: analytics-sp, analytics-nightly (used yesterday), analytics-adhoc (45 days idle),
    // poc-sandbox and bi-export (not rotated).
    const { replies } = await h.command('/retire-unused ws-analytics 1', LEE);
    const plan = replies[0]!;
    const text = allText(cardOf(plan));
    for (const comment of ['analytics-sp', 'poc-sandbox', 'bi-export']) expect(text).toContain(`\\"${comment}\\" in ws-analytics`);
    await h.click('retireUnused', findAction(cardOf(plan), 'retireUnused')!.data, plan.activityId, ALEX);
    const job = await h.waitForJob((j) => j.kind === 'retire-unused' && j.state === 'waiting' && j.subject === 'retire-unused:ws-analytics' && !finished(j));

    // The second token's delete lands but its answer is lost (reset), every time: the runner journals "revoking" and retries.
    const second = tokenOf('analytics-sp').tokenId;
    analytics().injectFault({ method: 'DELETE', path: `/tokens/${second}`, status: 0, network: 'reset', afterHandling: true, times: Infinity });
    h.clock.set(job.dueAt! + 60_000);
    await h.workflows.engine.tick();
    const interrupted = await h.waitForJob((j) => j.id === job.id && j.state === 'waiting' && j.facts[`t:ws-analytics:${second}`] === 'revoking');
    expect(interrupted.facts[`t:ws-analytics:${tokenOf('poc-sandbox').tokenId}`]).toBe('revoked');
    expect(alive('analytics-sp')).toBe(false);

    // The process goes away; a new one starts on the same store and resumes the job.
    await h.workflows.engine.stop();
    analytics().clearFaults();
    await h.restart();
    h.clock.advance(60_000);
    await h.workflows.engine.tick();
    const done = await h.waitForJob((j) => j.id === job.id && finished(j));
    expect(done.state).toBe('done');
    for (const comment of ['poc-sandbox', 'analytics-sp', 'bi-export', 'analytics-nightly', 'analytics-adhoc']) {
      expect(alive(comment)).toBe(false);
      const ok = deletes(tokenOf(comment).tokenId).filter((r) => r.status === 200);
      expect(ok, comment).toHaveLength(1);
    }
    const result = await h.connector.waitFor((a) => a.threadRootId === plan.activityId && /^Retired 5 of 5/.test(a.text ?? ''));
    expect(result.text).toContain('- revoked "analytics-sp"');
  }, 60_000);
});
