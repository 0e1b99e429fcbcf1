import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { startBotHarness, type BotHarness } from '../helpers/bot.js';

const CARD = 'application/vnd.microsoft.card.adaptive';

function cardOf(a: ConnectorActivity | undefined): Record<string, unknown> {
  const att = a?.attachments.find((x) => x.contentType === CARD);
  expect(att, 'reply carries an adaptive card').toBeDefined();
  return att!.content as Record<string, unknown>;
}

describe('bot commands over HTTP', () => {
  let h: BotHarness;
  const CANARY = 'canary-secret-4f1c2b9a77';

  beforeAll(async () => {
    h = await startBotHarness({
      modules: [{
        name: 'test-commands',
        commands: [
          { name: 'expiring', usage: '/expiring [N d]', description: 'Lists credentials expiring soon.', example: '/expiring 14d', handle: async (args) => ({ kind: 'text', text: `expiring args=[${args}]` }) },
          { name: 'boom', usage: '/boom', description: 'Always fails.', handle: async () => { throw new Error(`database password ${CANARY} rejected\n    at secretPlace (x.ts:1:1)`); } },
        ],
      }],
    });
  });
  afterAll(async () => { await h?.close(); });

  it('/help answers with an adaptive card listing every command with usage, description and example', async () => {
    const r = await h.send(h.message('/help'));
    expect(r.status).toBe(200);
    expect(r.sent).toHaveLength(1);
    const card = cardOf(r.sent[0]);
    expect(card.version).toBe('1.5');
    const text = JSON.stringify(card);
    for (const fragment of ['/help [command]', '/expiring [N d]', 'Lists credentials expiring soon.', 'Example: /expiring 14d', '/boom']) {
      expect(text).toContain(fragment);
    }
    expect(text).not.toContain('${');
  });

  it('accepts "help" without a slash and "<at>Keywarden</at> /HELP" in a channel', async () => {
    const plain = await h.send(h.message('help'));
    cardOf(plain.sent[0]);
    const channel = await h.send(h.message('<at>Keywarden</at> /HELP', { kind: 'channel' }));
    expect(channel.status).toBe(200);
    expect(channel.sent[0]?.conversationId).toBe('19:support@thread.tacv2');
    cardOf(channel.sent[0]);
  });

  it('passes the text after the command as arguments, and does not match a longer word', async () => {
    const r = await h.send(h.message('  /Expiring  14d  pat '));
    expect(r.sent[0]?.text).toBe('expiring args=[14d  pat]');
    const longer = await h.send(h.message('/expiringsoon'));
    expect(longer.sent[0]?.text).toMatch(/I don't know "\/expiringsoon"\. Type \/help/);
  });

  it('answers an unknown command with a short pointer to /help (mentioning the bot in a channel)', async () => {
    const r = await h.send(h.message('/frobnicate everything'));
    expect(r.sent).toHaveLength(1);
    expect(r.sent[0]?.text).toBe('I don\'t know "/frobnicate". Type /help to see the commands I understand.');
    const inChannel = await h.send(h.message('what is this', { kind: 'channel' }));
    expect(inChannel.sent[0]?.text).toContain('@Keywarden /help');
  });

  it('a failing command gets a friendly reply with a reference, never the error text or a stack', async () => {
    const r = await h.send(h.message('/boom'));
    expect(r.status).toBe(200);
    const reply = r.sent[0]?.text ?? '';
    expect(reply).toMatch(/^Sorry — \/boom failed on my side \(reference [0-9a-f]{8}\)/);
    expect(reply).not.toContain(CANARY);
    expect(reply).not.toContain('secretPlace');
    const incident = /reference ([0-9a-f]{8})/.exec(reply)![1]!;
    expect(h.logLines.some((l) => l.includes(incident) && l.includes('command failed'))).toBe(true);
  });

  it('a reply Teams refuses (403 not in roster) is logged and the server keeps serving', async () => {
    h.connector.injectFault({ kind: 'not-in-roster', conversationId: 'a:removed-chat', times: 2 });
    const r = await h.send(h.message('/help', { conversationId: 'a:removed-chat' }));
    expect(r.status).toBe(200);
    expect(r.sent).toHaveLength(0);
    expect(h.logLines.some((l) => l.includes('turn failed') && l.includes('a:removed-chat'))).toBe(true);
    expect((await h.send(h.message('/help'))).sent).toHaveLength(1);
  });

  it('20 concurrent messages all get their own reply', async () => {
    const activities = Array.from({ length: 20 }, (_, i) => h.message(`/expiring ${i}d`, { conversationId: `a:concurrent-${i % 5}` }));
    const results = await Promise.all(activities.map((a) => h.send(a)));
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.sent.map((s) => s.text)).toEqual([`expiring args=[${i}d]`]);
    });
  });

  it('refuses bad JSON with a 4xx and keeps serving', async () => {
    const bad = await h.sendRaw('{"type":"message",');
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    const notObject = await h.sendRaw('"just a string"');
    expect(notObject.status).toBe(400);
    const r = await h.send(h.message('/help'));
    expect(r.status).toBe(200);
    expect(r.sent).toHaveLength(1);
  });

  it('refuses an activity without a conversation (or service URL) with 400 naming the field', async () => {
    const noConversation = { ...h.message('/help') };
    delete noConversation.conversation;
    const r = await h.sendRaw(JSON.stringify(noConversation));
    expect(r.status).toBe(400);
    expect(r.body).toContain('conversation.id is missing');
    const noServiceUrl = { ...h.message('/help') };
    delete noServiceUrl.serviceUrl;
    const r2 = await h.sendRaw(JSON.stringify(noServiceUrl));
    expect(r2.status).toBe(400);
    expect(r2.body).toContain('serviceUrl is missing');
    expect((await h.send(h.message('help'))).sent).toHaveLength(1);
  });

  it('GET /healthz is 200 {status:ok}; GET /readyz reports its checks as JSON', async () => {
    const health = await fetch(`${h.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    const body = await ready.json() as { status: string; checks: Array<{ name: string; ok: boolean }> };
    expect(body.status).toBe('ready');
    expect(body.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['store', 'chat', 'started', 'accepting']));
    expect(body.checks.every((c) => c.ok)).toBe(true);
  });

  it('logs a loud warning that the anonymous bot is not authenticated', () => {
    expect(h.logLines.some((l) => l.includes('ANONYMOUS BOT') && l.includes('NOT authenticated'))).toBe(true);
  });
});
