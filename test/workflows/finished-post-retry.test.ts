import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE_MS } from '../../src/clock.js';
import { ALEX, allText, startWorkflowHarness, SUPPORT_CHANNEL, type WorkflowHarness } from './harness.js';

/**
 * The result of a job is the message people wait for in the card's thread. When Teams refuses it (an outage at that
 * moment), the job is done but nobody is told: Keywarden must post it once Teams answers again, and the card must
 * stop showing the credential as at risk.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('a job result Teams did not take', () => {
  it('is posted in the thread once Teams answers again, and the card ends resolved', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    await h.waitForJob((j) => j.kind === 'rotate-pat' && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');

    // Teams is down when the grace window ends and the rotation finishes.
    h.connector.injectFault({ kind: 'conversation-not-found', conversationId: SUPPORT_CHANNEL.id, op: 'reply', times: Infinity });
    const job = await h.passGraceWindow(credentialId);
    await h.waitForJob((j) => j.id === job.id && j.state === 'done');
    await h.workflows.engine.tick();
    const result = (a: { threadRootId?: string; text?: string }) => a.threadRootId === cardId && /^rotated: .*, verified, old token .* revoked at/.test(a.text ?? '');
    expect(h.connector.repliesTo(cardId).some(result)).toBe(false);

    h.connector.clearFaults();
    // Passes of the engine as time goes by (a loaded machine may need more than one before the backoff lets it post).
    let posted: Awaited<ReturnType<typeof h.connector.waitFor>> | undefined;
    for (let pass = 0; pass < 6 && !posted; pass++) {
      h.clock.advance(5 * MINUTE_MS);
      await h.workflows.engine.tick();
      posted = await h.connector.waitFor(result, 5_000).catch(() => undefined);
    }
    if (!posted) throw new Error('the job result was never posted after Teams answered again');
    expect(posted.text).toMatch(/revoked at/);
    expect(h.connector.repliesTo(cardId).filter(result)).toHaveLength(1);

    // Once posted, it is not posted again.
    h.clock.advance(5 * MINUTE_MS);
    await h.workflows.engine.tick();
    expect(h.connector.repliesTo(cardId).filter(result)).toHaveLength(1);

    await h.alerts.tick();
    await h.alerts.delivery.idle();
    const updates = h.connector.updatesOf(cardId);
    expect(allText(updates[updates.length - 1]?.attachments)).toContain('Resolved');
  }, 60_000);

  it('is posted once when another replica passes by while the finishing replica is still posting it', async () => {
    const replica = await h.startReplica();
    await h.scanAndDeliver(); // a fresh card (the test before moved the clock past its 30 minutes)
    const seeded = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(JSON.stringify(answer)).toContain('Rotation in progress');
    await h.waitForJob((j) => j.kind === 'rotate-pat' && j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');

    // Teams takes 2 s to answer replies in this thread: the result is in flight while both engines poll (every 50 ms).
    h.connector.server.injectFault({ method: 'POST', path: new RegExp(`;messageid=${cardId}/activities`), status: 0, latencyMs: 2_000, times: Infinity });
    const result = (a: { threadRootId?: string; text?: string }) => a.threadRootId === cardId && /^rotated: .*, verified, old token .* revoked at/.test(a.text ?? '');
    try {
      const job = await h.passGraceWindow(credentialId);
      await h.waitForJob((j) => j.id === job.id && j.state === 'done');
      await h.connector.waitFor(result, 15_000);
      for (let i = 0; i < 10; i++) {
        await replica.workflows.engine.tick();
        await h.workflows.engine.tick();
      }
      await new Promise((r) => setTimeout(r, 2_500));
    } finally {
      h.connector.clearFaults();
    }
    expect(h.connector.repliesTo(cardId).filter(result)).toHaveLength(1);
  }, 90_000);
});
