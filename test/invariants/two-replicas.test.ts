import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import { invokeActivity } from '../helpers/bot.js';
import { ALEX, MEGAN, allText, startWorkflowHarness, type KeywardenReplica, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Exactly once across replicas: two Keywarden processes (two cores, two store connections, two running job engines,
 * two bot servers) share one SQLite file. Clicks arrive at both; the job must run once — one approval, one new
 * token, one Key Vault version, one message — and a replica that took over a job from a stalled one leaves no
 * credential behind that is neither stored nor revoked.
 */

const TERMINAL = ['done', 'compensated', 'failed', 'cancelled'];
const OBO_CREATE = /\/api\/2\.0\/token-management\/on-behalf-of\/tokens$/;

let h: WorkflowHarness;
let replica: KeywardenReplica;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  replica = await h.startReplica();
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

async function clickAt(botUrl: string, data: Record<string, unknown>, cardId: string, user = ALEX): Promise<string> {
  // The harness posts to its own server; a replica gets the very same activity at its own URL.
  const activity = invokeActivity(h.connector.serviceUrl, 'rotate', data, cardId, { kind: 'channel', user });
  (activity.conversation as Record<string, unknown>).tenantId = h.clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: h.clouds.tenantId };
  const res = await fetch(`${botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  return res.text();
}

describe('two Keywarden replicas on one SQLite file', () => {
  it('50 clicks spread over both replicas: one approval, one job run once, one new token, one Key Vault version', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    const versionsBefore = kv.versions('adb-prod-etl-token').length;
    ws.clearRequests();

    const urls = [h.botUrl, replica.botUrl];
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => clickAt(urls[i % 2]!, { alertId: alert.id, nonce: alert.nonce }, cardId, i % 3 === 0 ? MEGAN : ALEX)));
    expect(answers.filter((a) => a.includes('Rotation in progress')).length).toBe(1);
    await h.passGraceWindow(credentialId);

    const job = await h.waitForJob((j) => j.subject === credentialId && TERMINAL.includes(j.state), 60_000);
    expect(job.state).toBe('done');
    // Give both engines a few more timer passes: nothing may run again.
    await new Promise((r) => setTimeout(r, 500));
    expect(h.jobs().filter((j) => j.subject === credentialId)).toHaveLength(1);
    // finish runs at least twice: once to start the grace window (card data cannot skip it), then to revoke after it
    // (a replica may look at the waiting job once more); the old token is deleted exactly once.
    expect(job.steps.slice(0, 3).map((s) => [s.name, s.attempts])).toEqual([['create', 1], ['set', 1], ['test', 1]]);
    expect(job.steps[3]!.attempts).toBeGreaterThanOrEqual(2);
    // Revoked exactly once; on a starved machine a replica whose lease lapsed mid-step may repeat the DELETE, which the
    // workspace answers 404 (already gone) — harmless, and the journal counts it as done.
    expect(ws.requests().filter((r) => r.method === 'DELETE' && r.path.includes(seeded.tokenId) && r.status === 200)).toHaveLength(1);
    expect(h.store.listAudit({ subject: credentialId }).filter((a) => a.action === 'job.step.create.started')).toHaveLength(1);
    expect(h.store.listAudit({ subject: credentialId }).filter((a) => a.action === 'approval.granted')).toHaveLength(1);

    expect(ws.requests().filter((r) => r.method === 'POST' && OBO_CREATE.test(r.path))).toHaveLength(1);
    const mine = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(`[keywarden rotation ${job.id}]`));
    expect(mine).toHaveLength(1);
    expect(kv.versions('adb-prod-etl-token')).toHaveLength(versionsBefore + 1);
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(true);

    // One "verified" milestone ("… will be revoked at") and one result, each posted once.
    const final = (a: { text?: string }) => /^rotated: /.test(a.text ?? '') && !/will be/.test(a.text ?? '');
    await h.connector.waitFor((a) => a.threadRootId === cardId && final(a));
    await new Promise((r) => setTimeout(r, 300));
    expect(h.thread(cardId).filter(final)).toHaveLength(1);
    expect(h.thread(cardId).filter((a) => /^rotated: /.test(a.text ?? '') && /will be/.test(a.text ?? ''))).toHaveLength(1);
    expect(h.store.verifyAudit().ok).toBe(true);
  }, 90_000);

  it('a replica that takes over a stalled job (lease expired mid-create) leaves no token that is neither stored nor revoked', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-dev');
    const kv = h.clouds.handles.keyVault.vault('kv-dev');
    const alert = await h.freshAlert(credentialId);
    // The first runner's create call hangs for a while (a slow network, a paused VM): long enough for its lease to lapse.
    ws.injectFault({ method: 'POST', path: OBO_CREATE, status: 0, latencyMs: 2500, times: 1 });

    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(credentialId), ALEX);
    expect(allText(answer.card)).toContain('Rotation in progress');
    const stalled = await h.waitForJob((j) => j.subject === credentialId && j.facts.marker !== undefined && j.steps[0]!.status === 'started');
    const first = stalled.lease!.owner;

    // The lease lapses; the other replica's timer takes the job over and runs it.
    h.clock.advance(3 * MINUTE_MS);
    const other = first === h.workflows.engine.owner ? replica.workflows.engine : h.workflows.engine;
    await other.tick();
    const verified = await h.waitForJob((j) => j.id === stalled.id && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number', 30_000);
    expect(verified.steps[0]!.attempts).toBe(2);
    // Let the stalled call land, then finish the grace window.
    await new Promise((r) => setTimeout(r, 3500));
    h.clock.advance(25 * HOUR_MS);
    const done = await h.waitForJob((j) => j.id === stalled.id && TERMINAL.includes(j.state), 30_000);
    expect(done.state).toBe('done');
    await new Promise((r) => setTimeout(r, 500));

    const current = kv.versions('adb-dev-ci-token').at(-1)!;
    const mine = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(`[keywarden rotation ${stalled.id}]`));
    expect(mine.length).toBeGreaterThanOrEqual(1);
    for (const t of mine) expect({ token: t.tokenId, storedOrRevoked: t.revoked || current.tags?.['credential-id'] === t.tokenId }).toEqual({ token: t.tokenId, storedOrRevoked: true });
    expect(mine.filter((t) => !t.revoked)).toHaveLength(1);
    expect(kv.readStoredValue('adb-dev-ci-token')).toBe(ws.model.tokens.get(mine.find((t) => !t.revoked)!.tokenId)!.value);
    // The stalled runner undid its own late token, and said so in the audit log.
    expect(h.store.listAudit({ subject: credentialId }).some((a) => a.action === 'job.step.create.discarded' && a.result === 'info')).toBe(true);
  }, 90_000);
});
