import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, MINUTE_MS } from '../../src/clock.js';
import { invokeActivity } from '../helpers/bot.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type User, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Cards stay fresh: alert cards carry a Universal Actions `refresh` (verb refreshAlert) listing the approvers' Teams
 * ids, and a refresh invoke returns the card with a nonce the next click accepts — one click, not two — without
 * replacing the card for everyone.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

/** What Teams sends when a listed user opens the card (trigger automatic). */
async function refreshInvoke(data: Record<string, unknown>, cardId: string, user: User) {
  const activity = invokeActivity(h.connector.serviceUrl, 'refreshAlert', data, cardId, { kind: 'channel', user });
  (activity.conversation as Record<string, unknown>).tenantId = h.clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: h.clouds.tenantId };
  (activity.value as Record<string, unknown>).trigger = 'automatic';
  const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  const body = JSON.parse(await res.text()) as { type: string; value: Record<string, unknown> };
  return { status: res.status, body };
}

const patId = (key: string) => `databricks-pat:${key.split('/')[0]}:${h.clouds.seeds.databricks.tokens[key]!.tokenId}`;

describe('alert cards refresh when an approver opens them', () => {
  it('a posted card carries refresh (Action.Execute refreshAlert with the alert id)', () => {
    const credentialId = patId('ws-prod/reporting');
    const cardId = h.cardActivityId(credentialId);
    const posted = h.connector.activities.find((a) => a.op === 'post' && a.activityId === cardId)!;
    const card = posted.attachments[0]!.content as { refresh?: { action: Record<string, unknown> } };
    expect(card.refresh?.action).toMatchObject({ type: 'Action.Execute', verb: 'refreshAlert', data: { alertId: h.alertFor(credentialId)!.id } });
  });

  it('a refresh after 45 minutes returns a fresh card with a valid nonce and the approvers\' ids; the next click acts at once', async () => {
    const credentialId = patId('ws-prod/reporting');
    const cardId = h.cardActivityId(credentialId);
    const old = h.alertFor(credentialId)!;
    h.clock.advance(45 * MINUTE_MS);
    const updatesBefore = h.connector.updatesOf(cardId).length;

    const refreshed = await refreshInvoke({ alertId: old.id }, cardId, ALEX);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.type).toBe('application/vnd.microsoft.card.adaptive');
    const current = h.alertFor(credentialId)!;
    expect(current.nonce).not.toBe(old.nonce);
    expect(allText(refreshed.body.value)).toContain(`"nonce":"${current.nonce}"`);
    expect(refreshed.body.value.refresh).toMatchObject({ action: { verb: 'refreshAlert' }, userIds: [ALEX.id] });
    // A view for the one client that asked: the card is not replaced for everyone.
    expect(h.connector.updatesOf(cardId)).toHaveLength(updatesBefore);

    // A non-approver's refresh gets the card as it is: no new nonce, and they are not listed.
    const lee = await refreshInvoke({ alertId: old.id }, cardId, LEE);
    expect(h.alertFor(credentialId)!.nonce).toBe(current.nonce);
    expect((lee.body.value.refresh as { userIds: string[] }).userIds).not.toContain(LEE.id);

    const click = await h.click('rotate', { alertId: current.id, nonce: current.nonce }, cardId, ALEX);
    expect(allText(click.card)).toContain('Rotation in progress — approved by Alex Wilber');
  });

  it('the Rollback card refreshes too: an hour into the grace window, one click rolls back', async () => {
    const credentialId = patId('ws-prod/reporting');
    const cardId = h.cardActivityId(credentialId);
    const rotation = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const offerMessage = await h.connector.waitFor((a) => a.threadRootId === cardId && allText(a.attachments).includes('"verb":"rollback"'));
    const offerCard = offerMessage.attachments[0]!.content as { refresh?: { action: Record<string, unknown>; userIds?: string[] } };
    expect(offerCard.refresh).toMatchObject({ action: { verb: 'refreshOffer', data: { jobId: rotation.id } }, userIds: [ALEX.id] });
    const oldNonce = /"nonce":"([^"]+)"/.exec(allText(offerMessage.attachments))![1];

    h.clock.advance(60 * MINUTE_MS);
    const activity = invokeActivity(h.connector.serviceUrl, 'refreshOffer', { jobId: rotation.id }, offerMessage.activityId, { kind: 'channel', user: MEGAN });
    (activity.conversation as Record<string, unknown>).tenantId = h.clouds.tenantId;
    (activity.channelData as Record<string, unknown>).tenant = { id: h.clouds.tenantId };
    const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
    const refreshed = JSON.parse(await res.text()) as { value: unknown };
    const nonce = /"verb":"rollback"[^}]*"nonce":"([^"]+)"|"nonce":"([^"]+)"/.exec(allText(refreshed.value));
    const fresh = nonce?.[1] ?? nonce?.[2];
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(oldNonce);

    const answer = await h.click('rollback', { jobId: rotation.id, nonce: fresh }, offerMessage.activityId, MEGAN);
    expect(allText(answer.card)).toContain('Rollback in progress — approved by Megan Bowen');
    await h.waitForJob((j) => j.kind === 'rollback' && j.state === 'done');
  }, 60_000);

  it('cards delivered later list the approvers seen so far in refresh.userIds (Teams MRIs)', async () => {
    const before = h.connector.lastSeq;
    h.clock.advance(8 * DAY_MS); // thresholds move: cards are updated in place
    await h.scanAndDeliver();
    const updates = h.connector.since(before).filter((a) => a.op === 'update' && allText(a.attachments).includes('refreshAlert'));
    expect(updates.length).toBeGreaterThan(0);
    for (const u of updates) {
      const refresh = (u.attachments[0]!.content as { refresh: { userIds: string[] } }).refresh;
      expect([...refresh.userIds].sort()).toEqual([ALEX.id, MEGAN.id].sort());
    }
  }, 60_000);
});
