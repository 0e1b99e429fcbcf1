import { afterEach, describe, expect, it } from 'vitest';
import { MINUTE_MS } from '../../src/clock.js';
import { ALICE, installationUpdateActivity, messageActivity, type Activityish } from '../helpers/bot.js';
import { ALEX, LEE as LEE_SANDBOX, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cardText, cred, startAlertsHarness, SUPPORT_CHANNEL, type AlertsHarness } from './harness.js';

/**
 * Issue 15 point 6: a channel receives alerts only when it is configured or an approver binds it (/bind, audited).
 * Installing the app in some team does not make that team's channel a support channel.
 */

const LEE = { id: '29:lee-mri', name: 'Lee Gu', aadObjectId: 'aaaaaaaa-0000-0000-0000-0000000000c3' };
const OTHER_TEAM = { id: '19:other-team@thread.tacv2', name: 'Someone Else’s Team', aadGroupId: 'bbbbbbbb-0000-0000-0000-0000000000c3' };

function inOtherTeam(a: Activityish): Activityish {
  const cd = a.channelData as Record<string, unknown>;
  return { ...a, channelData: { ...cd, team: { ...OTHER_TEAM }, channel: { id: OTHER_TEAM.id, name: 'General' } } };
}

async function post(h: AlertsHarness, activity: Activityish): Promise<number> {
  const res = await fetch(`${h.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  return res.status;
}

const texts = (h: AlertsHarness, conversationId: string): string[] =>
  h.connector.activities.filter((a) => a.conversationId === conversationId).map((a) => JSON.stringify(a.activity ?? a));

describe('support channels are configured or bound by an approver', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it('a non-approver installing in another team gets no alert cards, only how to bind; an approver /bind makes the channel receive them (audited)', async () => {
    h = await startAlertsHarness({ configuredChannel: false, alerts: { digest: false }, config: { approvals: { users: [ALICE.aadObjectId] } } });
    await h.scan([cred('keyvault-secret', 'kv-prod', 'storage-account-key', -3)]);

    // Lee (not an approver) installs Keywarden in his own team.
    expect(await post(h, inOtherTeam(installationUpdateActivity(h.connector.serviceUrl, 'add', { kind: 'channel', conversationId: OTHER_TEAM.id, user: LEE })))).toBe(200);
    await h.drainAll(MINUTE_MS);
    expect(h.connector.postsIn(OTHER_TEAM.id).filter((a) => cardText(a).includes('has expired'))).toHaveLength(0);
    expect(texts(h, OTHER_TEAM.id).join('\n')).toContain('/bind');
    expect(h.store.listAudit().map((e) => e.action)).not.toContain('channel.bound');

    // Lee cannot bind it either; the refusal is audited.
    expect(await post(h, inOtherTeam(messageActivity(h.connector.serviceUrl, '/bind', { kind: 'channel', conversationId: OTHER_TEAM.id, user: LEE })))).toBe(200);
    await h.drainAll(MINUTE_MS);
    expect(h.connector.postsIn(OTHER_TEAM.id).filter((a) => cardText(a).includes('has expired'))).toHaveLength(0);
    expect(h.store.listAudit().find((e) => e.action === 'channel.bind.refused')).toMatchObject({ result: 'refused', actor: { aadObjectId: LEE.aadObjectId } });

    // An approver binds it: the waiting alert card arrives, and the audit log says who bound which channel.
    expect(await post(h, inOtherTeam(messageActivity(h.connector.serviceUrl, '/bind', { kind: 'channel', conversationId: OTHER_TEAM.id, user: ALICE })))).toBe(200);
    await h.drainAll(MINUTE_MS);
    expect(h.connector.postsIn(OTHER_TEAM.id).filter((a) => cardText(a).includes('has expired'))).toHaveLength(1);
    expect(texts(h, OTHER_TEAM.id).join('\n')).toContain('now a support channel');
    expect(h.store.listAudit().find((e) => e.action === 'channel.bound')).toMatchObject({
      result: 'ok', subject: OTHER_TEAM.id, actor: { aadObjectId: ALICE.aadObjectId }, details: { via: 'command', teamId: OTHER_TEAM.id },
    });

    // /unbind stops new alerts there (audited).
    expect(await post(h, inOtherTeam(messageActivity(h.connector.serviceUrl, '/unbind', { kind: 'channel', conversationId: OTHER_TEAM.id, user: ALICE })))).toBe(200);
    expect(h.store.listAudit().map((e) => e.action)).toContain('channel.unbound');
    await h.scan([cred('keyvault-secret', 'kv-prod', 'storage-account-key', -3), cred('databricks-pat', 'ws-prod', 'tok-9', 2)]);
    await h.drainAll(MINUTE_MS);
    expect(h.connector.postsIn(OTHER_TEAM.id).filter((a) => cardText(a).includes('tok-9'))).toHaveLength(0);
  });

  it('in sandbox mode an approver’s install binds the channel (so the Playground tour works), audited as a sandbox install', async () => {
    h = await startAlertsHarness({ configuredChannel: false, alerts: { digest: false }, config: { approvals: { users: [ALICE.aadObjectId] } } });
    await h.scan([cred('keyvault-secret', 'kv-prod', 'storage-account-key', -3)]);
    expect(await post(h, installationUpdateActivity(h.connector.serviceUrl, 'add', { kind: 'channel' }))).toBe(200);
    await h.drainAll(MINUTE_MS);
    const bound = h.store.listAudit().find((e) => e.action === 'channel.bound');
    expect(bound).toMatchObject({ actor: { aadObjectId: ALICE.aadObjectId }, details: { via: 'sandbox-install' } });
    expect(h.logLines.some((l) => l.includes('SANDBOX') && l.includes('without /bind'))).toBe(true);
  });

  it('with channels configured, /bind points to the configuration and binds nothing', async () => {
    h = await startAlertsHarness({ config: { approvals: { users: [ALICE.aadObjectId] } } });
    expect(await post(h, inOtherTeam(messageActivity(h.connector.serviceUrl, '/bind', { kind: 'channel', conversationId: OTHER_TEAM.id, user: ALICE })))).toBe(200);
    await expect.poll(() => texts(h, OTHER_TEAM.id).join('\n')).toContain('teams.channels');
    expect(h.store.listAudit().map((e) => e.action)).not.toContain('channel.bound');
  });
});

describe('the sandbox tour: approvers come from the Entra group, as in `npm start`', () => {
  let w: WorkflowHarness | undefined;
  afterEach(async () => { await w?.close(); w = undefined; });

  it('Alex (in the approver group) installing in the support channel binds it and the cards arrive; Lee installing elsewhere binds nothing', async () => {
    w = await startWorkflowHarness({ config: { teams: { channels: [] } } });
    const lee = inOtherTeam(installationUpdateActivity(w.connector.serviceUrl, 'add', { kind: 'channel', conversationId: OTHER_TEAM.id, user: LEE_SANDBOX }));
    const alex = installationUpdateActivity(w.connector.serviceUrl, 'add', { kind: 'channel', conversationId: SUPPORT_CHANNEL.id, user: ALEX });
    for (const a of [lee, alex]) {
      const res = await fetch(`${w.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(a) });
      expect(res.status).toBe(200);
    }
    const bound = w.store.listAudit().filter((e) => e.action === 'channel.bound');
    expect(bound).toEqual([expect.objectContaining({ subject: SUPPORT_CHANNEL.id, actor: expect.objectContaining({ aadObjectId: ALEX.aadObjectId }) })]);
    await w.scanAndDeliver();
    expect(w.connector.postsIn(SUPPORT_CHANNEL.id).filter((a) => a.attachments.length > 0).length).toBeGreaterThan(0);
    expect(w.connector.postsIn(OTHER_TEAM.id).filter((a) => a.attachments.length > 0)).toHaveLength(0);
  }, 120_000);
});
