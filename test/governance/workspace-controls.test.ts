import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemedyOffer } from '../../src/approvals/remedy-offers.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Issue 13 points 2 and 3 over the protocol: a Teams command or click in, Bot Connector records and emulator state out.
 * Enforce a maximum lifetime (plan lists the tokens above it → approve → workspace-conf set → a longer new token is
 * refused → rollback), and restrict token creation (plan names who loses CAN_USE, direct vs group, and the pipelines
 * holding their tokens → N-of-M approval → deleted / refused tokens → rollback; drift stops the job without acting).
 */

const ETL = '11111111-1111-4111-8111-000000000001';
const REPORTING = '11111111-1111-4111-8111-000000000002';

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({
    config: {
      governance: { workspaceControls: { maxLifetimeDays: 90, tokenAllowList: [
        { workspace: 'ws-prod', servicePrincipals: [ETL, REPORTING] },
        { workspace: 'ws-dev', servicePrincipals: [ETL] },
        { workspace: 'ws-analytics', servicePrincipals: [ETL] },
      ] } },
    },
    adjust: (c) => ({ ...c, approvals: { ...(c.approvals as object), highRisk: [{ action: 'restrict-tokens', scopes: ['ws-prod', 'ws-analytics'], approvals: 2 }] } }),
  });
  await h.scanner.runScan('command');
}, 90_000);
afterAll(async () => h?.close());

type Action = { verb: string; title: string; data: Record<string, unknown> };
/** Every Action.Execute of a card (or an activity's attachments). */
function actions(value: unknown): Action[] {
  const out: Action[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.type === 'Action.Execute') out.push({ verb: String(o.verb), title: String(o.title), data: (o.data ?? {}) as Record<string, unknown> });
    Object.values(o).forEach(walk);
  };
  walk(value);
  return out;
}
const action = (value: unknown, verb: string) => {
  const found = actions(value).find((a) => a.verb === verb);
  if (!found) throw new Error(`no ${verb} button in ${allText(value).slice(0, 400)}`);
  return found;
};

async function databricks(workspace: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(h.clouds.urls.workspaces[workspace] + path, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, text: await res.text() };
}
const seeded = (key: string) => h.clouds.seeds.databricks.tokens[key]!;
const threadText = (root: string) => allText(h.thread(root).map((a: ConnectorActivity) => a.activity));

describe('/max-lifetime', () => {
  it('answers --help and bad input with the usage', async () => {
    const help = await h.command('/max-lifetime --help', LEE);
    expect(help.replies[0]!.text).toMatch(/Usage: \/max-lifetime <workspace> \[days\].*keep working until they expire/s);
    const bad = await h.command('/max-lifetime ws-prod 9999', LEE);
    expect(bad.replies[0]!.text).toMatch(/days must be a whole number from 1 to 730/);
  });

  it('plans with the tokens above the limit, sets workspace-conf on approval, refuses a longer new token, and rolls back', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    expect(ws.conf().maxTokenLifetimeDays).toBeUndefined();
    const { replies } = await h.command('/max-lifetime ws-prod 90', LEE);
    const planCard = replies[0]!;
    expect(planCard.text ?? '').toBe('');
    const text = allText(planCard.attachments);
    expect(text).toContain('Set the maximum token lifetime of ws-prod to 90 days?');
    expect(text).toContain('none (no limit)');
    expect(text).toMatch(/legacy-never.*expires never/);
    expect(text).toContain('stale-unused');
    expect(text).not.toContain('bob-jdbc');
    expect(text).toContain('keep working until they expire');
    expect(text).toContain('PATCH /api/2.0/workspace-conf');

    const approve = action(planCard.attachments, 'enforceMaxLifetime');
    const lee = await h.click('enforceMaxLifetime', approve.data, planCard.activityId, LEE);
    expect(lee.text).toMatch(/not an approver/);
    const started = await h.click('enforceMaxLifetime', approve.data, planCard.activityId, ALEX);
    expect(allText(started.card)).toContain('Maximum token lifetime in progress — approved by Alex Wilber');
    const job = await h.waitForJob((j) => j.kind === 'max-lifetime' && j.state === 'done');
    expect(ws.conf().maxTokenLifetimeDays).toBe('90');
    expect(job.facts.exceedingCount).toBe(2);

    const done = await h.connector.waitFor((a) => a.threadRootId === planCard.activityId && /done: maxTokenLifetimeDays of ws-prod is now 90 days/.test(a.text ?? ''));
    expect(done.text).toMatch(/2 existing tokens live longer and keep working until they expire/);
    const buttons = actions(done.attachments);
    expect(buttons.filter((b) => b.verb === 'revoke').length).toBeGreaterThanOrEqual(1);

    // The emulator now refuses a new token above 90 days, and still takes one within it.
    const bob = seeded('ws-prod/bob-jdbc').tokenValue;
    const tooLong = await databricks('ws-prod', 'POST', '/api/2.0/token/create', bob, { lifetime_seconds: 91 * 86_400, comment: 'too long' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.text).toMatch(/maximum lifetime of 90 days/);
    expect((await databricks('ws-prod', 'POST', '/api/2.0/token/create', bob, { lifetime_seconds: 30 * 86_400, comment: 'ok' })).status).toBe(200);

    // Rollback: the thread's button plans the previous value; approving restores it.
    const rollback = action(done.attachments, 'enforceMaxLifetime');
    expect(rollback.title).toMatch(/Roll back to none/);
    const plan = await h.click('enforceMaxLifetime', rollback.data, done.activityId, MEGAN);
    expect(allText(plan.card)).toContain('Roll back: remove the maximum token lifetime of ws-prod?');
    await h.click('enforceMaxLifetime', action(plan.card, 'enforceMaxLifetime').data, done.activityId, MEGAN);
    await h.waitForJob((j) => j.kind === 'max-lifetime' && j.state === 'done' && j.plan.parameters.rollbackOf === job.id);
    expect(ws.conf().maxTokenLifetimeDays).toBe('0');
    expect((await databricks('ws-prod', 'POST', '/api/2.0/token/create', bob, { lifetime_seconds: 200 * 86_400, comment: 'long again' })).status).toBe(200);
  });

  it('a value changed by hand after the plan was shown: Approve shows the new plan, says what changed, starts nothing', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-analytics');
    const { replies } = await h.command('/max-lifetime ws-analytics 60', LEE);
    const planCard = replies[0]!;
    ws.setConf({ maxTokenLifetimeDays: '30' });
    const answer = await h.click('enforceMaxLifetime', action(planCard.attachments, 'enforceMaxLifetime').data, planCard.activityId, ALEX);
    expect(allText(answer.card)).toMatch(/The plan changed since it was shown: maxTokenLifetimeDays was absent when approved and is now 30/);
    expect(allText(answer.card)).toContain('30 days');
    expect(h.jobs().some((j) => j.subject === 'max-lifetime:ws-analytics')).toBe(false);
    expect(ws.conf().maxTokenLifetimeDays).toBe('30');
    ws.setConf({ maxTokenLifetimeDays: '0' });
  });

  it('/findings offers the remedies on the workspace findings', async () => {
    const { replies } = await h.command('/findings', LEE);
    const verbs = actions(replies[0]!.attachments).map((a) => a.verb);
    expect(verbs).toContain('enforceMaxLifetime');
    expect(verbs).toContain('restrictTokenCreation');
    const offers = h.store.list<RemedyOffer>('approvals', { prefix: 'remedy:' }).map((r) => r.value);
    expect(offers.some((o) => o.remedy === 'restrict-tokens' && o.subject === 'ws-dev')).toBe(true);
  });
});

describe('/restrict-tokens', () => {
  it('names who loses CAN_USE and their tokens, needs two approvers other than the requester, and deletes the direct losers\' tokens', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const { replies } = await h.command('/restrict-tokens ws-prod', LEE);
    const planCard = replies[0]!;
    const text = allText(planCard.attachments);
    expect(text).toMatch(/DELETED at once, unrecoverable — bob\.dev@contoso\.com \(own grant: user bob\.dev@contoso\.com\): token …[0-9a-f]{4} \\"bob-jdbc\\"[^"]*held in Key Vault kv-prod\/adb-prod-bob-pipeline/);
    expect(text).toContain('kv-prod/adb-prod-bob-pipeline; used by Data Factory adf-prod linked service LS_Databricks_Prod (pipelines bob-reports)');
    expect(text).toMatch(/DELETED at once, unrecoverable — carol\.former@contoso\.com \(own grant: user carol\.former@contoso\.com\): token …[0-9a-f]{4} \\"carol-notebook\\"/);
    expect(text).toContain('deleted tokens cannot come back');
    expect(text).toContain('Needs 2 approvers');
    expect(text).toContain('PUT /api/2.0/permissions/authorization/tokens with the full list');

    const approve = action(planCard.attachments, 'restrictTokenCreation');
    const first = await h.click('restrictTokenCreation', approve.data, planCard.activityId, ALEX);
    expect(allText(first.card)).toContain('1 of 2 approvals');
    const confirm = action(first.card, 'confirm');
    expect((await h.click('confirm', confirm.data, planCard.activityId, ALEX)).text).toMatch(/already approved this/);
    expect(h.jobs().filter((j) => j.kind === 'restrict-tokens')).toHaveLength(0);
    await h.click('confirm', confirm.data, planCard.activityId, MEGAN);
    const job = await h.waitForJob((j) => j.kind === 'restrict-tokens' && j.state === 'done');
    expect(job.approvedBy.map((a) => a.name)).toEqual(['Alex Wilber', 'Megan Bowen']);
    expect(job.requestedBy?.name).toBe(LEE.name);

    expect(ws.tokenPermissions().map((g) => g.name).sort()).toEqual([ETL, REPORTING]);
    const bob = seeded('ws-prod/bob-jdbc');
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === bob.tokenId)?.revoked).toBe(true);
    expect((await databricks('ws-prod', 'GET', '/api/2.0/token/list', bob.tokenValue)).status).toBe(403);
    // The allow-listed pipeline identities keep working.
    expect((await databricks('ws-prod', 'GET', '/api/2.0/token/list', seeded('ws-prod/adf-etl').tokenValue)).status).toBe(200);
    const done = await h.connector.waitFor((a) => a.threadRootId === planCard.activityId && /^done: CAN_USE on tokens in ws-prod/.test(a.text ?? ''));
    expect(done.text).toMatch(/Deleted by Databricks \(unrecoverable\): \d+ token\(s\)/);
  });

  it('a group loss leaves the token refused until access returns; Rollback gives it back', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-dev');
    const { replies } = await h.command('/restrict-tokens ws-dev', LEE);
    const planCard = replies[0]!;
    expect(allText(planCard.attachments)).toMatch(/Stop working until access returns — bob\.dev@contoso\.com \(through group users\): token …[0-9a-f]{4} \\"long-lived\\"/);
    expect(allText(planCard.attachments)).toContain('One approver is enough');
    await h.click('restrictTokenCreation', action(planCard.attachments, 'restrictTokenCreation').data, planCard.activityId, ALEX);
    const job = await h.waitForJob((j) => j.kind === 'restrict-tokens' && j.subject === 'restrict-tokens:ws-dev' && j.state === 'done');

    const bob = seeded('ws-dev/long-lived');
    expect(ws.tokens().some((t) => t.tokenId === bob.tokenId)).toBe(true);
    expect((await databricks('ws-dev', 'GET', '/api/2.0/token/list', bob.tokenValue)).status).toBe(403);
    expect((await databricks('ws-dev', 'GET', '/api/2.0/token/list', seeded('ws-dev/dev-ci').tokenValue)).status).toBe(200);

    const done = await h.connector.waitFor((a) => a.threadRootId === planCard.activityId && /^done: CAN_USE on tokens in ws-dev/.test(a.text ?? ''));
    expect(done.text).toMatch(/Unusable until their owner gets CAN_USE again: 1 token/);
    const rollback = action(done.attachments, 'restrictTokenCreation');
    const plan = await h.click('restrictTokenCreation', rollback.data, done.activityId, MEGAN);
    expect(allText(plan.card)).toContain('Roll back: restore who may create tokens in ws-dev?');
    await h.click('restrictTokenCreation', action(plan.card, 'restrictTokenCreation').data, done.activityId, MEGAN);
    await h.waitForJob((j) => j.kind === 'restrict-tokens' && j.plan.parameters.rollbackOf === job.id && j.state === 'done');
    expect(ws.tokenPermissions().map((g) => g.name)).toContain('users');
    expect((await databricks('ws-dev', 'GET', '/api/2.0/token/list', bob.tokenValue)).status).toBe(200);
  });

  it('stops without acting when the ACL changed between the plan and the last approval, and says what changed', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-analytics');
    const { replies } = await h.command('/restrict-tokens ws-analytics', LEE);
    const planCard = replies[0]!;
    expect(allText(planCard.attachments)).toMatch(/DELETED at once, unrecoverable — sp-reporting/);
    const first = await h.click('restrictTokenCreation', action(planCard.attachments, 'restrictTokenCreation').data, planCard.activityId, ALEX);
    // Someone grants CAN_USE by hand before the second approver confirms.
    ws.model.addGrants([{ type: 'user', name: 'alice.admin@contoso.com' }]);
    await h.click('confirm', action(first.card, 'confirm').data, planCard.activityId, MEGAN);
    const job = await h.waitForJob((j) => j.kind === 'restrict-tokens' && j.subject === 'restrict-tokens:ws-analytics' && j.state === 'cancelled');
    expect(job.steps.find((s) => s.name === 'set')?.status).toBe('pending');
    expect(ws.tokenPermissions().map((g) => g.name).sort()).toEqual([REPORTING, 'alice.admin@contoso.com', 'bob.dev@contoso.com'].sort());
    expect(ws.tokens().some((t) => t.comment === 'analytics-sp')).toBe(true);
    await h.connector.waitFor((a) => a.threadRootId === planCard.activityId && /^stopped: ws-analytics changed since the plan was approved/.test(a.text ?? ''));
    expect(threadText(planCard.activityId!)).toMatch(/the token permissions \(CAN_USE\) was \\"[^"]+\\" when approved and is now \\"[^"]*user:alice\.admin@contoso\.com[^"]*\\"/);
  });
});
