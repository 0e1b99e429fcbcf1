/**
 * Proof suite "fuzz" (fast-check, fixed seed). Over the Bot Framework protocol, into the real bot server with the real
 * modules and the sandbox clouds: random activities of every type and shape, random card clicks (every verb, random
 * data and clickers, real and forged alert ids and nonces), and random chat commands (every command, random
 * arguments, `${…}` template syntax, unicode, long text) — at least 10,000 cases. Before that, credentials whose
 * names carry template syntax are added to the clouds, scanned and shown on cards.
 * Property: every answer is 2xx/4xx (never 5xx), plain (no stack) and the bot stays up; every card or message the
 * Bot Connector received has no `${` outside the names it displays, no evaluated injected expression, no secret.
 * Prints: `fuzz: <cases> cases (<activities> activities, <invokes> clicks, <commands> commands), <failures> failures`.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import { DAY_MS } from '../../src/clock.js';
import { invokeActivity, messageActivity, SUPPORT_CHANNEL } from '../helpers/bot.js';
import { collectCanaries, findLeaks } from '../invariants/canaries.js';
import { expectPlainAnswer } from '../robustness/helpers.js';
import { ALEX, LEE, MEGAN, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { inLanes } from './fixtures/crash-lab.js';
import { report } from './fixtures/report.js';

const SEED = 20261202;
const RUNS = { activities: 4000, invokes: 4000, commands: 2000 };
/** An expression that, if a template engine ever evaluated it, would print this word. */
const EVALUATED = 'PWNED';
const INJECTIONS = [
  "${concat('PWN','ED')}", '${$root}', '${nonce}', '${alertId}', "${if(true,'PWN'+'ED','x')}", '${json($root)}', '${$data}', '${', '$}{x}', '${{}}',
  '${string(1+1)}', '${`x`}', '${toUpper("pwned")}',
];

let h: WorkflowHarness;
const injectedNames: string[] = [];
const failures: string[] = [];
/** Every input sent (JSON): a `${` in an answer is fine when it echoes what the user typed. */
const inputs: string[] = [];
let seqAtStart = 0;

const tenant = (a: Record<string, unknown>, tenantId: string) => {
  (a.conversation as Record<string, unknown>).tenantId = tenantId;
  (a.channelData as Record<string, unknown>).tenant = { id: tenantId };
  return a;
};

beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  // Names shown on cards that carry template syntax: PAT comments (free text in Databricks).
  const ws = h.clouds.handles.databricks.workspace('ws-prod');
  const names = fc.sample(fc.tuple(fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 12 }), fc.constantFrom(...INJECTIONS)).map(([a, b, c]) => `${a}${b}${c}`.slice(0, 200)), { numRuns: 24, seed: SEED });
  for (const [i, name] of names.entries()) {
    const comment = `${name} #${i}`;
    injectedNames.push(comment);
    ws.addToken({ ownerName: 'bob.dev@contoso.com', comment, expiryTime: Date.now() + (1 + (i % 20)) * DAY_MS });
  }
  seqAtStart = h.connector.lastSeq;
  await h.scanAndDeliver();
}, 120_000);

afterAll(async () => {
  await h?.close();
});

async function post(activity: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  return { status: res.status, text: await res.text() };
}

/** The property for one answer; collects a failure line (with a shortened input) instead of throwing. */
function judge(kind: string, input: unknown, out: { status: number; text: string }, notImplementedOk = false): void {
  const problems: string[] = [];
  inputs.push(JSON.stringify(input));
  // 501 is the Bot Framework's answer to an invoke name the bot does not handle (botbuilder's default), not a crash.
  if (out.status >= 500 && !(notImplementedOk && out.status === 501)) problems.push(`HTTP ${out.status}`);
  if (out.text.includes(EVALUATED)) problems.push('an injected expression was evaluated');
  try {
    expectPlainAnswer(out.text, kind);
  } catch (err) {
    problems.push((err as Error).message.split('\n')[0]!);
  }
  if (problems.length) failures.push(`${kind}: ${problems.join('; ')} — input ${JSON.stringify(input).slice(0, 300)} → ${out.text.slice(0, 300)}`);
}

const text = fc.oneof(
  fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constantFrom(...INJECTIONS),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '<at>Keywarden</at>', 'a'.repeat(5000), '💥'.repeat(300)),
);
const users = fc.constantFrom(ALEX, MEGAN, LEE, { id: '29:stranger', name: '${nonce}', aadObjectId: 'ffffffff-0000-0000-0000-000000000000' });

describe('fuzz over the Bot Framework protocol', () => {
  it('random activities of every type and shape: 2xx/4xx, never 5xx', async () => {
    const anything = fc.jsonValue({ maxDepth: 3 });
    const activityArb = fc.record({
      type: fc.constantFrom('message', 'invoke', 'conversationUpdate', 'installationUpdate', 'messageReaction', 'typing', 'event', '', 'x'),
      text: fc.option(text),
      name: fc.option(fc.constantFrom('adaptiveCard/action', 'composeExtension/query', 'task/fetch', 'signin/verifyState', '${x}')),
      value: fc.option(anything),
      channelData: fc.option(anything),
      entities: fc.option(fc.array(anything, { maxLength: 3 })),
      from: fc.option(fc.oneof(users, anything)),
      conversation: fc.option(fc.oneof(fc.constant({ id: SUPPORT_CHANNEL.id, conversationType: 'channel', isGroup: true }), anything)),
      drop: fc.subarray(['id', 'serviceUrl', 'recipient', 'channelId', 'conversation', 'from']),
    });
    const samples = fc.sample(activityArb, { numRuns: RUNS.activities, seed: SEED });
    await inLanes(samples, 8, async (s) => {
      const a: Record<string, unknown> = tenant(messageActivity(h.connector.serviceUrl, '/help', { kind: 'channel', user: ALEX }), h.clouds.tenantId);
      for (const [k, v] of Object.entries(s)) if (k !== 'drop' && v !== null) a[k] = v;
      for (const k of s.drop) delete a[k];
      judge('activity', s, await post(a), a.type === 'invoke' && a.name !== 'adaptiveCard/action');
    });
    expect(failures).toEqual([]);
  }, 300_000);

  it('random card clicks (every verb, forged and real ids and nonces): a clear answer, never 5xx', async () => {
    const alerts = h.store.list<AlertRecord>('alerts').map((r) => r.value).filter((a) => a.message?.activityId);
    expect(alerts.length).toBeGreaterThan(5);
    const verbs = ['rotate', 'revoke', 'confirm', 'cancelAction', 'rollback', 'jitApprove', 'jitDeny', 'jitExtend', 'details', 'acknowledge', 'snooze', 'unknown', '${verb}', ''];
    const alertId = fc.oneof(fc.constantFrom(...alerts.map((a) => a.id)), text, fc.integer(), fc.constant(null));
    const nonce = fc.oneof(fc.constantFrom(...alerts.map((a) => a.nonce)), text, fc.constant(undefined));
    const clickArb = fc.record({
      verb: fc.constantFrom(...verbs),
      data: fc.oneof(
        fc.record({ alertId, nonce }),
        fc.record({ alertId, nonce, jobId: fc.oneof(text, fc.integer()), requestId: text, days: fc.oneof(fc.integer(), text), hours: fc.oneof(fc.double(), text), justification: text }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
      ),
      replyTo: fc.oneof(fc.constantFrom(...alerts.map((a) => a.message!.activityId!)), fc.string({ maxLength: 20 })),
      user: users,
      // Mostly the real tenant; sometimes a foreign one (a click from another tenant must be refused, not crash).
      foreign: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    });
    // Keep the real work small: destructive verbs on real alerts would start rotations; they are refused for most
    // users and nonces, and the few that start run against the emulators in the background.
    const samples = fc.sample(clickArb, { numRuns: RUNS.invokes, seed: SEED + 1 });
    await inLanes(samples, 8, async (s) => {
      const a = tenant(invokeActivity(h.connector.serviceUrl, s.verb, s.data as Record<string, unknown>, s.replyTo, { kind: 'channel', user: s.user }), s.foreign ? '99999999-0000-0000-0000-000000000000' : h.clouds.tenantId);
      judge(`click ${s.verb}`, s, await post(a));
    });
    expect(failures).toEqual([]);
  }, 300_000);

  it('random chat commands (every command, random arguments): one clear reply, never an apology or 5xx', async () => {
    const commandArb = fc.record({
      command: fc.constantFrom('/help', '/expiring', '/findings', '/jit', '/scan', '/audit', '/unknown', '', '/'),
      args: fc.array(fc.oneof(text, fc.constantFrom('7d', '-5d', '99999d', '14x', 'ws-prod', 'kv-prod', '4h', 'high', 'critical', '--all')), { maxLength: 4 }),
      user: users,
    });
    const samples = fc.sample(commandArb, { numRuns: RUNS.commands, seed: SEED + 2 });
    await inLanes(samples, 8, async (s) => {
      // /scan runs a whole estate scan; keep those few (they share one scan while it runs).
      const a = tenant(messageActivity(h.connector.serviceUrl, `${s.command} ${s.args.join(' ')}`.trim() || ' ', { kind: 'channel', user: s.user }), h.clouds.tenantId);
      judge('command', s, await post(a));
    });
    // Every reply has arrived (the bot answers commands through the Bot Connector).
    await new Promise((r) => setTimeout(r, 500));
    await h.alerts.delivery.idle();
    expect(failures).toEqual([]);
  }, 300_000);

  it('what reached the Bot Connector: no `${` outside displayed names, nothing evaluated, no apology, no secret', async () => {
    const sent = h.connector.activities.filter((a) => a.seq > seqAtStart);
    expect(sent.length).toBeGreaterThan(100);
    // Every `${…}` a message shows must be text a person typed (a name, a command, click data), shown verbatim —
    // never a binding the template left unexpanded.
    const typed = [...injectedNames, ...inputs].join('\n');
    // Compared on letters, digits and "$" only: commands echo what was typed lower-cased, trimmed and cleaned.
    const norm = (t: string) => t.toLowerCase().replace(/[^a-z0-9$]/g, '');
    const typedLower = norm(`${typed}\n${JSON.stringify(typed)}`);
    for (const a of sent) {
      const shown = `${a.text ?? ''}\n${JSON.stringify(a.attachments ?? [])}`;
      const body = JSON.stringify({ text: a.text, attachments: a.attachments });
      for (const m of shown.matchAll(/\$\{[^}"\\]{0,60}\}/g)) {
        if (!typedLower.includes(norm(m[0])) && !typedLower.includes(norm(JSON.stringify(m[0]).slice(1, -1)))) failures.push(`activity ${a.seq} holds ${m[0]} that nobody typed: ${shown.slice(Math.max(0, m.index! - 80), m.index! + 80)}`);
      }
      if (body.includes(EVALUATED)) failures.push(`activity ${a.seq}: an injected expression was evaluated`);
      const ref = /reference ([0-9a-f]+)/.exec(body)?.[1];
      if (/something went wrong|failed on my side/i.test(body)) failures.push(`activity ${a.seq}: an apology (a handler crashed): ${body.slice(0, 200)} — log: ${h.logLines.find((l) => ref && l.includes(ref))?.slice(0, 1500) ?? ''}`);
    }
    // The names with template syntax are on cards, verbatim.
    const all = JSON.stringify(sent);
    const shown = injectedNames.filter((n) => all.includes(JSON.stringify(n).slice(1, -1)));
    expect(shown.length, 'credentials with template syntax in their names were shown on cards').toBeGreaterThan(0);
    expect(findLeaks(collectCanaries(h.clouds), { 'Bot Connector activities': all, 'log lines': h.logLines.join('\n') })).toEqual([]);
    // The process is alive and still serving.
    // (Twice: an idle keep-alive socket the server already closed fails once with ECONNRESET; that is the client.)
    const health = () => fetch(`${h.botUrl}/healthz`).then((r) => r.status);
    expect(await health().catch(health)).toBeLessThan(500);
    report('fuzz', `${RUNS.activities + RUNS.invokes + RUNS.commands} cases (${RUNS.activities} activities, ${RUNS.invokes} clicks, ${RUNS.commands} commands; ${sent.length} messages to the Bot Connector checked), ${failures.length} failures`);
    expect(failures).toEqual([]);
  }, 120_000);
});

