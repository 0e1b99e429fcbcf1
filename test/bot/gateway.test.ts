import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChatDeliveryError, type ChatGateway, type ConversationTarget } from '../../src/domain/chat.js';
import { startBotHarness, SUPPORT_CHANNEL, TENANT_ID, type BotHarness } from '../helpers/bot.js';

const CARD_TYPE = 'application/vnd.microsoft.card.adaptive';
const card = (text: string) => ({ type: 'AdaptiveCard' as const, version: '1.5', body: [{ type: 'TextBlock', text }] });

describe('ChatGateway against the Bot Connector emulator', () => {
  let h: BotHarness;
  let chat: ChatGateway;
  let channel: ConversationTarget;

  beforeAll(async () => {
    h = await startBotHarness();
    chat = h.keywarden.chat!;
    channel = { conversationId: SUPPORT_CHANNEL.id, serviceUrl: h.serviceUrl, tenantId: TENANT_ID, kind: 'channel' };
  });
  beforeEach(() => { h.connector.clearFaults(); h.connector.setNoIdMode(false); });
  afterAll(async () => { await h?.close(); });

  it('post → update → replyInThread address the same root post (";messageid=")', async () => {
    const root = await chat.post(channel, { card: card('v1') });
    expect(root).toMatchObject({ conversationId: SUPPORT_CHANNEL.id, serviceUrl: h.serviceUrl, tenantId: TENANT_ID });
    expect(root.activityId).toMatch(/^\d{13}$/);
    expect(h.connector.postsIn(SUPPORT_CHANNEL.id).map((p) => p.activityId)).toContain(root.activityId);

    await chat.update(root, { card: card('v2') });
    const updates = h.connector.updatesOf(root.activityId!);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.attachments[0]).toMatchObject({ contentType: CARD_TYPE, content: { body: [{ text: 'v2' }] } });

    const reply = await chat.replyInThread(root, { text: 'Rotated by Alice' });
    expect(reply.conversationId).toBe(`${SUPPORT_CHANNEL.id};messageid=${root.activityId}`);
    expect(Number(reply.activityId)).toBeGreaterThan(Number(root.activityId));
    const replies = h.connector.repliesTo(root.activityId!);
    expect(replies.map((r) => r.text)).toEqual(['Rotated by Alice']);
    expect(replies[0]!.conversationId).toBe(SUPPORT_CHANNEL.id);
    // A reply can itself be updated in place.
    await chat.update(reply, { text: 'Rotated by Alice (verified)' });
    expect(h.connector.updatesOf(reply.activityId!)[0]!.text).toBe('Rotated by Alice (verified)');
  });

  it('mentions become mention entities with the Entra object id', async () => {
    await chat.post(channel, { text: '<at>Bob Owner</at> your PAT expires tomorrow', mentions: [{ aadObjectId: 'bbbb-0001', name: 'Bob Owner' }] });
    const last = h.connector.activities.at(-1)!;
    expect(last.mentions).toEqual([{ id: 'bbbb-0001', name: 'Bob Owner', text: '<at>Bob Owner</at>' }]);
  });

  it('429 with Retry-After is retried (by the connector client) and then succeeds', async () => {
    h.connector.injectFault({ kind: 'throttled', conversationId: SUPPORT_CHANNEL.id, op: 'post', retryAfter: 1, times: 2 });
    const posted = await chat.post(channel, { text: 'after throttling' });
    expect(posted.activityId).toBeDefined();
    const attempts = h.connector.server.requests.filter((r) => r.method === 'POST' && r.path.startsWith(`/v3/conversations/${SUPPORT_CHANNEL.id}/`)).slice(-3);
    expect(attempts.map((r) => r.status)).toEqual([429, 429, 201]);
    // Retry-After was honoured: the retries are at least ~1 s apart each.
    expect(attempts[2]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(1_900);
  });

  it('412 PreconditionFailed is retried by the gateway', async () => {
    h.connector.injectFault({ kind: 'precondition-failed', conversationId: SUPPORT_CHANNEL.id, op: 'post', times: 2 });
    const posted = await chat.post(channel, { text: 'after 412' });
    expect(posted.activityId).toBeDefined();
    expect(h.connector.activities.at(-1)!.text).toBe('after 412');
    const attempts = h.connector.server.requests.filter((r) => r.method === 'POST').slice(-3);
    expect(attempts.map((r) => r.status)).toEqual([412, 412, 201]);
  });

  it('403 BotNotInConversationRoster → permanent ChatDeliveryError "not-in-roster", not retried', async () => {
    const before = h.connector.server.requests.length;
    h.connector.injectFault({ kind: 'not-in-roster', conversationId: SUPPORT_CHANNEL.id, times: 5 });
    const err = await chat.post(channel, { text: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatDeliveryError);
    expect(err).toMatchObject({ code: 'not-in-roster', statusCode: 403, permanent: true });
    expect((err as Error).message).toMatch(/BotNotInConversationRoster — .*re-install/);
    expect(h.connector.server.requests.length - before).toBe(1);
  });

  it('413 MessageSizeTooBig → "too-large" (also for a real oversized card), 404 → "conversation-not-found"', async () => {
    h.connector.injectFault({ kind: 'too-large', conversationId: SUPPORT_CHANNEL.id });
    await expect(chat.post(channel, { text: 'x' })).rejects.toMatchObject({ code: 'too-large', statusCode: 413, permanent: true });
    const huge = { type: 'AdaptiveCard' as const, version: '1.5', body: Array.from({ length: 400 }, (_, i) => ({ type: 'TextBlock', text: `row ${i} ${'x'.repeat(80)}` })) };
    await expect(chat.post(channel, { card: huge })).rejects.toMatchObject({ code: 'too-large' });
    h.connector.injectFault({ kind: 'conversation-not-found', conversationId: SUPPORT_CHANNEL.id });
    await expect(chat.post(channel, { text: 'x' })).rejects.toMatchObject({ code: 'conversation-not-found', statusCode: 404 });
  });

  it('202 without an id → activityId undefined; update then posts a new message and threads fall back to a plain post', async () => {
    h.connector.setNoIdMode({ times: 1 });
    const posted = await chat.post(channel, { text: 'no id for you' });
    expect(posted.activityId).toBeUndefined();
    expect(h.connector.activities.at(-1)).toMatchObject({ text: 'no id for you', idReturned: false });

    await chat.update(posted, { text: 'state changed' });
    expect(h.connector.activities.at(-1)).toMatchObject({ op: 'post', text: 'state changed', conversationId: SUPPORT_CHANNEL.id });
    const reply = await chat.replyInThread(posted, { text: 'follow-up' });
    expect(reply.conversationId).toBe(SUPPORT_CHANNEL.id);
    expect(h.connector.activities.at(-1)).toMatchObject({ op: 'post', text: 'follow-up' });
  });

  it('sends to one conversation are serialized: a slow first send does not let later ones overtake it', async () => {
    // Only the first POST into this channel is slow; without a per-conversation queue B and C would land first.
    h.connector.server.injectFault({ method: 'POST', path: `/v3/conversations/${SUPPORT_CHANNEL.id}/activities`, status: 0, latencyMs: 400, times: 1 });
    const other: ConversationTarget = { ...channel, conversationId: '19:other@thread.tacv2' };
    const before = h.connector.lastSeq;
    await Promise.all([
      chat.post(channel, { text: 'A' }),
      chat.post(channel, { text: 'B' }),
      chat.post(other, { text: 'other' }),
      chat.post(channel, { text: 'C' }),
    ]);
    const arrived = h.connector.since(before);
    expect(arrived.filter((a) => a.conversationId === SUPPORT_CHANNEL.id).map((a) => a.text)).toEqual(['A', 'B', 'C']);
    // Another conversation is not held up behind the slow one.
    expect(arrived.findIndex((a) => a.text === 'other')).toBeLessThan(arrived.findIndex((a) => a.text === 'A'));
  });

  it('sendToUser opens a personal chat with the Entra object id and posts there', async () => {
    const posted = await chat.sendToUser({ aadObjectId: 'cccc-0001', tenantId: TENANT_ID, serviceUrl: h.serviceUrl }, { text: 'Your JIT token expires in 1 hour' });
    expect(posted.conversationId).toBe('a:personal-cccc-0001');
    expect(posted.activityId).toMatch(/^\d{13}$/);
    expect(h.connector.conversations.get('a:personal-cccc-0001')?.members.map((m) => m.id)).toEqual(['cccc-0001']);
    expect(h.connector.postsIn('a:personal-cccc-0001').map((a) => a.text)).toEqual(['Your JIT token expires in 1 hour']);
  });

  it('an aborted send rejects with the abort, not a delivery error', async () => {
    h.connector.server.injectFault({ method: 'POST', path: `/v3/conversations/${SUPPORT_CHANNEL.id}/activities`, status: 0, latencyMs: 500, times: 1 });
    const controller = new AbortController();
    const pending = chat.post(channel, { text: 'never mind' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const err = await pending.catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ChatDeliveryError);
    expect((err as Error).name).toBe('AbortError');
  });
});
