import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdaptiveCard } from '../../src/domain/chat.js';
import { invokeActivity, startBotHarness, SUPPORT_CHANNEL, TENANT_ID, type BotHarness } from '../helpers/bot.js';
import { expectNoSecretIn, expectPlainAnswer } from './helpers.js';

/**
 * Must show: when a card action or a command fails inside the product (a bug, a store hiccup), the clicker gets a
 * plain "that did not work" with a reference — and the card in the channel keeps its buttons for everyone else;
 * the bot keeps serving and no secret reaches the answer or the log.
 */

const CANARY = `dapi${'cd'.repeat(16)}`;
let h: BotHarness;

beforeAll(async () => {
  h = await startBotHarness({
    modules: [{
      name: 'failing',
      commands: [{ name: 'boom', usage: '/boom', description: 'fails', handle: async () => { throw new TypeError(`cannot read token ${CANARY}`); } }],
      cardActions: [{ verb: 'boom', handle: async () => { throw new TypeError(`cannot read token ${CANARY}`); } }],
    }],
  });
});
afterAll(async () => h?.close());

function card(text: string): AdaptiveCard {
  return { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text }], actions: [{ type: 'Action.Execute', verb: 'boom', title: 'Rotate' }] };
}

describe('failures inside the product', () => {
  it('a failing card action answers the clicker only; the channel card keeps its buttons', async () => {
    const target = { conversationId: SUPPORT_CHANNEL.id, serviceUrl: h.serviceUrl, tenantId: TENANT_ID, kind: 'channel' as const };
    const posted = await h.keywarden.chat!.post(target, { card: card('Alert: token expires in 7 days') });
    const r = await h.send(invokeActivity(h.serviceUrl, 'boom', { alertId: 'a1', nonce: 'n' }, posted.activityId!, { kind: 'channel' }));
    expect(r.status).toBe(200);
    const text = JSON.stringify(r.body);
    expect(text).toContain('That did not work');
    expect(text).toMatch(/reference [0-9a-f]{8}/);
    expectPlainAnswer(text, 'failed click answer');
    expect(h.connector.updatesOf(posted.activityId!)).toEqual([]);
  });

  it('a failing command answers with an apology and a reference; the bot keeps serving', async () => {
    const r = await h.send(h.message('/boom'), { replies: 1 });
    expect(r.status).toBe(200);
    expect(r.sent[0]!.text).toMatch(/\/boom failed on my side \(reference [0-9a-f]{8}\)/);
    expectPlainAnswer(JSON.stringify(r.sent), 'failed command answer');
    const help = await h.send(h.message('/help'), { replies: 1 });
    expect(help.sent).toHaveLength(1);
    expectNoSecretIn(h.logLines, 'log');
    expect(h.logLines.join('\n')).toContain('card action failed');
  });

  it('a message whose entities lack a type is refused with 400 and a clear reason (it used to fail the turn with a TypeError)', async () => {
    const activity = { ...h.message('/help'), entities: [{ text: 'no type here' }] };
    const r = await h.send(activity);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toContain('every entity must be an object with a \\"type\\"');
    const help = await h.send(h.message('/help'), { replies: 1 });
    expect(help.sent).toHaveLength(1);
  });
});
