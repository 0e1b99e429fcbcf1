import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { messageActivity } from '../helpers/bot.js';
import { ALEX, LEE, startWorkflowHarness, type User, type WorkflowHarness } from '../workflows/harness.js';
import { cloudWrites, expectNoSecretIn, expectPlainAnswer, storeState } from './helpers.js';

/**
 * Must show: chat commands with odd arguments — negative or absurd spans, unicode, 10 KB of text, bad /jit values,
 * unknown severities, weird audit ids — and messages with no command at all (a bare mention, empty or blank text,
 * an attachment without text) each get one clear reply that says what was wrong and how to write it, change
 * nothing, and the bot keeps serving.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

interface Said { status: number; reply: ConnectorActivity; text: string }

/** Posts a channel message (shaped as the test likes) and waits for the bot's one reply to it. */
async function say(shape: string | ((a: Record<string, unknown>) => void), user: User = ALEX): Promise<Said> {
  const activity = messageActivity(h.connector.serviceUrl, typeof shape === 'string' ? shape : '/help', { kind: 'channel', user });
  (activity.conversation as Record<string, unknown>).tenantId = h.clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: h.clouds.tenantId };
  if (typeof shape === 'function') shape(activity);
  const before = h.connector.lastSeq;
  const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  await res.text();
  const reply = await h.connector.waitFor((a) => a.seq > before && a.replyToId === activity.id, 10_000);
  return { status: res.status, reply, text: JSON.stringify({ text: reply.text, attachments: reply.attachments }) };
}

function expectClearReply(said: Said, what: string, mustSay?: RegExp): void {
  expect(said.status, `${what}: HTTP status`).toBe(200);
  expectPlainAnswer(said.text, what);
  expect(said.text, `${what}: an apology means the command crashed`).not.toMatch(/something went wrong|failed on my side/);
  // The reply never echoes 10 KB of input back into the channel.
  expect(said.text.length, `${what}: reply size`).toBeLessThan(said.reply.attachments?.length ? 28 * 1024 : 1_500);
  if (mustSay) expect(said.reply.text ?? said.text, what).toMatch(mustSay);
}

const TEN_KB = 'lorem ipsum '.repeat(900);

describe('commands with odd arguments', () => {
  it('/expiring: bad spans are explained with the syntax; odd filters still answer with a card', async () => {
    const before = storeState(h.store);
    const explained: Array<[string, RegExp]> = [
      ['/expiring -5d', /not a time span.*Usage.*\/expiring/s],
      ['/expiring 99999d', /too far ahead.*3650/s],
      ['/expiring 99999999999999999999999d', /too far ahead/],
      ['/expiring 14x', /not a time span/],
      ['/expiring 14d 30d', /one time span/],
      [`/expiring 1${'a'.repeat(10_000)}`, /not a time span/],
      [`/expiring ${TEN_KB}`, /name filter is longer than 100/],
      [`/expiring 7d ${'9'.repeat(10_000)}`, /.+/],
    ];
    for (const [text, pattern] of explained) expectClearReply(await say(text), text.slice(0, 40), pattern);

    for (const text of ['/expiring abc', '/expiring 14d ünïcødé 🔑 名前', '/expiring 0d', '/expiring   14   d   pat', '/expiring <b>x</b> &amp; "quotes" \\ `tick`']) {
      const said = await say(text);
      expectClearReply(said, text);
      expect(said.reply.attachments?.[0]?.contentType, text).toBe('application/vnd.microsoft.card.adaptive');
    }
    expect(storeState(h.store)).toEqual(before);
  }, 60_000);

  it('/jit: every bad value names the problem and the usage; no request is recorded', async () => {
    const before = storeState(h.store);
    const cases: Array<[string, RegExp]> = [
      ['/jit', /give a workspace and a number of hours.*Usage: \/jit/s],
      ['/jit ws-prod', /give a workspace and a number of hours/],
      ['/jit ws-nowhere 4', /not a configured workspace \(one of: ws-prod/],
      ['/jit ../../etc/passwd 4', /not a configured workspace/],
      [`/jit ${'w'.repeat(10_000)} 4`, /not a configured workspace/],
      ['/jit ws-prod abc', /hours must be a number/],
      ['/jit ws-prod -4', /hours must be a number above 0/],
      ['/jit ws-prod 0', /hours must be a number above 0/],
      ['/jit ws-prod 99999', /at most/],
      ['/jit ws-prod NaN', /hours must be a number/],
      ['/jit ws-prod Infinity', /hours must be a number/],
      ['/jit ws-prod 0x10', /hours must be a number/],
      ['/jit ws-prod 1e1', /hours must be a number/],
      ['/jit ws-prod 4 Standard;rm', /not a node type/],
      ['/jit ws-prod 4 Ståndard_DS3', /not a node type/],
      ['/jit ws-prod 4 Standard_DS3_v2 0', /max capacity must be a whole number/],
      ['/jit ws-prod 4 Standard_DS3_v2 1.5', /max capacity must be a whole number/],
      ['/jit ws-prod 4 Standard_DS3_v2 99999', /max capacity must be a whole number/],
      ['/jit ws-prod 4 Standard_DS3_v2 -2', /max capacity must be a whole number/],
      ['/jit ws-prod 4 Standard_DS3_v2 4 extra words', /give a workspace and a number of hours/],
      ['/jit ws-prod 4 -- ok', /justification .* at least/],
    ];
    for (const [text, pattern] of cases) expectClearReply(await say(text), text.slice(0, 40), pattern);
    expect(storeState(h.store)).toEqual(before);
  }, 60_000);

  it('/findings and /audit with odd arguments answer clearly', async () => {
    const before = storeState(h.store);
    const cases: Array<[string, RegExp]> = [
      ['/findings banana', /"banana" is not a severity — use one of info, low, medium, high, critical/],
      ['/findings high low', /at most one severity/],
      ['/findings 🍌', /is not a severity/],
      [`/findings ${'b'.repeat(10_000)}`, /is not a severity/],
      ['/audit no-such-credential', /No audit entries mention "no-such-credential"/],
      ["/audit '; DROP TABLE audit;--", /No audit entries mention/],
      ['/audit %_%', /No audit entries mention/],
      ['/audit .*', /No audit entries mention|audit entr/],
      ['/audit ünïcødé 🔑', /No audit entries mention/],
      [`/audit ${TEN_KB}`, /No audit entries mention/],
      ['/help me please', /expiring/],
    ];
    for (const [text, pattern] of cases) expectClearReply(await say(text), text.slice(0, 40), pattern);
    // /scan by someone who may not: told who may, nothing scanned.
    expectClearReply(await say('/scan now please', LEE), '/scan by a non-approver', /approver/i);
    expect(storeState(h.store).approvals).toEqual(before.approvals);
    expect(storeState(h.store).jobs).toEqual(before.jobs);
  }, 60_000);

  it('messages without a command: a bare mention, empty, blank, an attachment only, or an oddly typed text', async () => {
    const hint = /Type @Keywarden \/help/;
    expectClearReply(await say('<at>Keywarden</at>'), 'bare mention', hint);
    expectClearReply(await say('<at>Keywarden</at>   &nbsp;  '), 'mention and blanks', hint);
    expectClearReply(await say((a) => { a.text = ''; a.entities = []; }), 'empty text', hint);
    expectClearReply(await say((a) => { a.text = ' \n\t  '; a.entities = []; }), 'whitespace only', hint);
    expectClearReply(await say((a) => { delete a.text; a.entities = []; }), 'no text field', hint);
    expectClearReply(await say((a) => {
      delete a.text;
      a.entities = [];
      a.attachments = [{ contentType: 'image/png', contentUrl: 'https://example.invalid/cat.png', name: 'cat.png' }];
    }), 'attachment only', hint);
    // A forged body whose text is not a string is refused before any route, naming the field.
    for (const [what, text] of [['a number', 42], ['an object', { command: '/expiring' }], ['an array', ['/expiring']]] as const) {
      const activity = messageActivity(h.connector.serviceUrl, '/help', { kind: 'channel', user: ALEX });
      const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...activity, text }) });
      expect(res.status, `text is ${what}`).toBe(400);
      expect(await res.text(), `text is ${what}`).toMatch(/text must be a string/);
    }
    for (const [field, value] of [['entities', { type: 'mention' }], ['attachments', 'cat.png']] as const) {
      const activity = messageActivity(h.connector.serviceUrl, '/help', { kind: 'channel', user: ALEX });
      const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...activity, [field]: value }) });
      expect(res.status, field).toBe(400);
      expect(await res.text(), field).toContain(`${field} must be an array`);
    }
    expectClearReply(await say((a) => { a.text = `<at>Keywarden</at> ${'z'.repeat(50_000)}`; }), 'a 50 KB unknown word', /I don't know "z{40}…"/);
    expectClearReply(await say('/expiringsoon'), 'command-like unknown word', /I don't know/);

    // Still serving.
    const said = await say('/expiring 14d');
    expect(said.reply.attachments?.[0]?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(cloudWrites(h.clouds)).toEqual([]);
    expectNoSecretIn(h.logLines, 'log');
  }, 60_000);
});
