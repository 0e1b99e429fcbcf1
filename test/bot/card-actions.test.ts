import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdaptiveCard, ChatContext } from '../../src/domain/chat.js';
import { ALICE, invokeActivity, startBotHarness, SUPPORT_CHANNEL, TENANT_ID, type BotHarness } from '../helpers/bot.js';

const CARD_TYPE = 'application/vnd.microsoft.card.adaptive';

function card(text: string): AdaptiveCard {
  return { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text }] };
}

describe('card actions (Action.Execute) over HTTP', () => {
  let h: BotHarness;
  const seen: Array<{ data: Record<string, unknown>; ctx: ChatContext }> = [];
  const CANARY = 'dapi0123456789abcdef0123456789abcdef';

  beforeAll(async () => {
    h = await startBotHarness({
      modules: [{
        name: 'test-actions',
        cardActions: [
          { verb: 'ack', handle: async (data, ctx) => { seen.push({ data, ctx }); return { card: card(`Acknowledged by ${ctx.actor.name}`) }; } },
          { verb: 'peek', handle: async () => ({ text: 'Only a banner' }) },
          { verb: 'explode', handle: async () => { throw new Error(`token ${CANARY} leaked`); } },
        ],
      }],
    });
  });
  afterAll(async () => { await h?.close(); });

  async function postedCard(): Promise<string> {
    const target = { conversationId: SUPPORT_CHANNEL.id, serviceUrl: h.serviceUrl, tenantId: TENANT_ID, kind: 'channel' as const };
    const posted = await h.keywarden.chat!.post(target, { card: card('Alert: secret expires in 7 days') });
    return posted.activityId!;
  }

  it('returns the new card in the invoke response and replaces the card for everyone (PUT)', async () => {
    const cardId = await postedCard();
    const r = await h.send(invokeActivity(h.serviceUrl, 'ack', { alertId: 'a1', nonce: 'n1' }, cardId, { kind: 'channel' }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ statusCode: 200, type: CARD_TYPE, value: { body: [{ text: 'Acknowledged by Alice Admin' }] } });
    const updates = h.connector.updatesOf(cardId);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.attachments[0]).toMatchObject({ contentType: CARD_TYPE, content: { body: [{ text: 'Acknowledged by Alice Admin' }] } });
    expect(seen.at(-1)).toMatchObject({
      data: { alertId: 'a1', nonce: 'n1' },
      ctx: {
        actor: { aadObjectId: ALICE.aadObjectId, tenantId: TENANT_ID },
        conversation: { conversationId: SUPPORT_CHANNEL.id, kind: 'channel' },
        replyToId: cardId,
      },
    });
  });

  it('a text result becomes a message banner', async () => {
    const r = await h.send(invokeActivity(h.serviceUrl, 'peek', {}, '1700000000999'));
    expect(r.body).toEqual({ statusCode: 200, type: 'application/vnd.microsoft.activity.message', value: 'Only a banner' });
  });

  it('a failing action answers with a friendly card (no secret, no stack) and the server keeps serving', async () => {
    const cardId = await postedCard();
    const r = await h.send(invokeActivity(h.serviceUrl, 'explode', {}, cardId, { kind: 'channel' }));
    expect(r.status).toBe(200);
    const text = JSON.stringify(r.body);
    expect(text).toContain('That did not work');
    expect(text).not.toContain(CANARY);
    expect(text).not.toMatch(/at .*\.ts:\d+/);
    expect(h.logLines.join('\n')).not.toContain(CANARY);
    expect((await h.send(h.message('/help'))).sent).toHaveLength(1);
  });

  it('an unknown verb gets "out of date" instead of a bare 501; non-object data reaches handlers as {}', async () => {
    const r = await h.send(invokeActivity(h.serviceUrl, 'no-such-verb', {}, '1700000000998'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'application/vnd.microsoft.activity.message', value: expect.stringContaining('out of date') });
    const weird = invokeActivity(h.serviceUrl, 'ack', {}, '1700000000997');
    (weird.value as { action: { data: unknown } }).action.data = ['not', 'an', 'object'];
    const r2 = await h.send(weird);
    expect(seen.at(-1)?.data).toEqual({});
    // The card id is unknown to Teams, so the PUT fails (404); the clicker still gets the new card.
    expect(r2).toMatchObject({ status: 200, body: { type: CARD_TYPE, value: { body: [{ text: 'Acknowledged by Alice Admin' }] } } });
    expect(h.logLines.some((l) => l.includes('could not replace the card for everyone'))).toBe(true);
  });
});
