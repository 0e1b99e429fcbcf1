import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredConversation } from '../../src/app.js';
import {
  ALICE, botAddedActivity, installationUpdateActivity, startBotHarness, TEAM, TENANT_ID, type BotHarness,
} from '../helpers/bot.js';

describe('installation events store conversation references durably', () => {
  let h: BotHarness;
  beforeAll(async () => { h = await startBotHarness(); });
  afterAll(async () => { await h?.close(); });

  it('installationUpdate (add) in a team stores service URL, tenant, team and channel, and survives a restart', async () => {
    const r = await h.send(installationUpdateActivity(h.serviceUrl, 'add', { kind: 'channel' }));
    expect(r.status).toBe(200);
    const expected: Partial<StoredConversation> = {
      status: 'active',
      installedBy: { aadObjectId: ALICE.aadObjectId, name: ALICE.name },
      target: expect.objectContaining({
        conversationId: TEAM.id, serviceUrl: h.serviceUrl, tenantId: TENANT_ID, kind: 'channel',
        teamId: TEAM.id, teamName: TEAM.name, channelId: TEAM.id, botId: '28:keywarden-test-bot',
      }) as StoredConversation['target'],
    };
    expect(h.keywarden.conversations.get(TEAM.id)).toMatchObject(expected);

    await h.restart();
    expect(h.store.isOpen).toBe(true);
    expect(h.keywarden.conversations.get(TEAM.id)).toMatchObject(expected);
    expect(h.store.listAudit({ subject: TEAM.id }).map((e) => e.action)).toContain('conversation.installed');
  });

  it('conversationUpdate with the bot in membersAdded stores a personal chat reference', async () => {
    const activity = botAddedActivity(h.serviceUrl, { kind: 'personal', conversationId: 'a:personal-chat-bob' });
    await h.send(activity);
    expect(h.keywarden.conversations.get('a:personal-chat-bob')).toMatchObject({
      status: 'active',
      target: { kind: 'personal', userAadObjectId: ALICE.aadObjectId, tenantId: TENANT_ID, serviceUrl: h.serviceUrl },
    });
  });

  it('installationUpdate (remove) marks the reference removed; re-adding makes it active again', async () => {
    await h.send(installationUpdateActivity(h.serviceUrl, 'remove', { kind: 'channel' }));
    expect(h.keywarden.conversations.get(TEAM.id)?.status).toBe('removed');
    expect(h.keywarden.conversations.list({ status: 'active' }).map((c) => c.target.conversationId)).not.toContain(TEAM.id);
    await h.send(installationUpdateActivity(h.serviceUrl, 'add', { kind: 'channel' }));
    expect(h.keywarden.conversations.get(TEAM.id)?.status).toBe('active');
  });

  it('markDead records why and stops listing the reference as active', () => {
    h.keywarden.conversations.markDead(TEAM.id, 'not-in-roster');
    expect(h.keywarden.conversations.get(TEAM.id)).toMatchObject({ status: 'dead', deadReason: 'not-in-roster' });
    expect(h.store.listAudit({ subject: TEAM.id }).map((e) => e.action)).toContain('conversation.dead');
  });
});
