import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import { invokeActivity } from '../helpers/bot.js';
import { ALEX, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cloudWrites, expectNoSecretIn, expectPlainAnswer, storeState } from './helpers.js';

/**
 * Must show: a click with hostile card data — for every verb the product registers — answers 200 with a clear card
 * or message, changes nothing in the store or in any cloud, and the bot keeps serving. Card data is untrusted input:
 * Teams passes through whatever a forged or stale card carries.
 */

let h: WorkflowHarness;
let alert: AlertRecord;
let cardId: string;

beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
  const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
  alert = h.alertFor(`databricks-pat:ws-prod:${seeded.tokenId}`)!;
  cardId = h.cardActivityId(alert.credentialId);
}, 60_000);
afterAll(async () => h?.close());

interface Answer { status: number; body: unknown; text: string }

/** POSTs a click built by `shape` (which may break the activity's value however it likes). */
async function click(shape: (activity: Record<string, unknown>) => void, user = ALEX, rawData?: string): Promise<Answer> {
  const activity = invokeActivity(h.connector.serviceUrl, 'placeholder', {}, cardId, { kind: 'channel', user });
  (activity.conversation as Record<string, unknown>).tenantId = h.clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: h.clouds.tenantId };
  shape(activity);
  const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity).replace('"__RAW__"', rawData ?? '"__RAW__"') });
  const text = await res.text();
  let body: unknown = text;
  try { body = text ? JSON.parse(text) : undefined; } catch { /* keep the text */ }
  return { status: res.status, body, text };
}

const withData = (verb: string, data: unknown) => (a: Record<string, unknown>) => {
  a.value = { action: { type: 'Action.Execute', verb, data }, trigger: 'manual' };
};

/** The answer Teams shows: a card (replacing the clicked one) or a short message — readable, no stack, no secret. */
function expectClearAnswer(answer: Answer, what: string): void {
  expect(answer.status, `${what}: HTTP status`).toBe(200);
  const body = answer.body as { statusCode?: number; type?: string; value?: unknown } | undefined;
  expect(body?.statusCode, `${what}: invoke statusCode (${answer.text.slice(0, 300)})`).toBe(200);
  expect(['application/vnd.microsoft.card.adaptive', 'application/vnd.microsoft.activity.message'], what).toContain(body?.type);
  if (body?.type === 'application/vnd.microsoft.activity.message') {
    expect(String(body.value).length, `${what}: message`).toBeGreaterThan(10);
    // A message never echoes a 100 KB field back at the user.
    expect(String(body.value).length, `${what}: message length`).toBeLessThan(600);
  } else {
    expect((body?.value as { type?: string }).type, what).toBe('AdaptiveCard');
  }
  expect(answer.text.length, `${what}: answer size`).toBeLessThan(28 * 1024);
  expectPlainAnswer(answer.text, what);
}

const HUGE = 'x'.repeat(100_000);
/** Every field name any verb reads, with the wrong type. */
const WRONG_TYPES = {
  alertId: 42, nonce: { $ne: null }, requestId: ['r-1'], jobId: { id: 'j' }, approvalId: 3.14, page: { n: 2 }, query: ['14d'],
  hours: 'forever', snoozeUntil: { date: '2030-01-01' }, reason: 12, justification: ['because'], overrideReason: {}, confirmed: 'yes', grace: 7,
};

function hostileData(): Array<[string, unknown]> {
  return [
    ['empty object', {}],
    ['every field wrongly typed', WRONG_TYPES],
    ['ids as objects', { alertId: { toString: 'x' }, requestId: { a: 1 }, jobId: { a: 1 }, approvalId: { a: 1 }, nonce: 'n' }],
    ['ids as 100 KB strings', { alertId: HUGE, requestId: HUGE, jobId: HUGE, approvalId: HUGE, nonce: HUGE, query: HUGE, page: HUGE }],
    ['unknown ids', { alertId: 'no-such-alert', requestId: 'no-such-request', jobId: 'no-such-job', approvalId: 'no-such-approval', nonce: 'n' }],
    ['a real alert id, no nonce', { alertId: alert.id }],
    ['a real alert id, nonce as a number', { alertId: alert.id, nonce: 12345 }],
    ['ids with path and SQL characters', { alertId: "../../alerts/'; DROP TABLE records;--", requestId: '%00', jobId: '\u0000', approvalId: 'a'.repeat(129), nonce: '<script>' }],
    ['prototype keys', JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"alertId":"' + alert.id + '"}')],
    ['data = null', null],
    ['data = array', ['alertId', alert.id]],
    ['data = string', 'alertId=__ALERT__'],
    ['data = number', 7],
  ];
}

describe('card clicks with hostile data', () => {
  it('every registered verb answers every hostile payload clearly and changes nothing', async () => {
    const verbs = h.keywarden.cardActions.map((a) => a.verb);
    expect(verbs).toEqual(expect.arrayContaining(['rotate', 'revoke', 'confirm', 'rollback', 'jitApprove', 'jitDeny', 'jitExtend', 'acknowledge', 'snooze', 'details', 'expiringPage']));
    const before = storeState(h.store);
    const writesBefore = cloudWrites(h.clouds).length;
    const cardUpdatesBefore = h.connector.updatesOf(cardId).length;
    const failures: string[] = [];
    for (const verb of verbs) {
      for (const [name, data] of hostileData()) {
        const what = `${verb} / ${name}`;
        const answer = await click(withData(verb, data));
        try {
          expectClearAnswer(answer, what);
        } catch (err) {
          failures.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(storeState(h.store)).toEqual(before);
    expect(cloudWrites(h.clouds).slice(writesBefore)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A hostile click never replaces the channel's alert card with an error card: at most with its current state.
    for (const update of h.connector.updatesOf(cardId).slice(cardUpdatesBefore)) {
      expect(JSON.stringify(update.attachments), 'the card was replaced for everyone by an error').not.toContain('That did not work');
    }
    expectNoSecretIn(h.logLines, 'log');
  }, 120_000);

  it('malformed invokes (no value, no action, no verb, unknown verb, wrong action type) get a clear answer', async () => {
    const before = storeState(h.store);
    const shapes: Array<[string, (a: Record<string, unknown>) => void]> = [
      ['no value', (a) => { delete a.value; }],
      ['value = null', (a) => { a.value = null; }],
      ['value without action', (a) => { a.value = { trigger: 'manual' }; }],
      ['action = string', (a) => { a.value = { action: 'rotate' }; }],
      ['action without verb', (a) => { a.value = { action: { type: 'Action.Execute', data: { alertId: alert.id } } }; }],
      ['verb as a number', (a) => { a.value = { action: { type: 'Action.Execute', verb: 42, data: {} } }; }],
      ['verb as an object', (a) => { a.value = { action: { type: 'Action.Execute', verb: { rotate: true }, data: {} } }; }],
      ['unregistered verb', withData('deleteEverything', { alertId: alert.id, nonce: alert.nonce })],
      ['100 KB verb', withData(HUGE, {})],
      ['prototype verb', withData('constructor', {})],
      ['Action.Submit type with a real verb', (a) => { a.value = { action: { type: 'Action.Submit', verb: 'acknowledge', data: { alertId: alert.id } } }; }],
    ];
    for (const [name, shape] of shapes) expectClearAnswer(await click(shape), name);
    expect(storeState(h.store)).toEqual(before);
  }, 60_000);

  it('an enormous payload under the body limit is answered; one over it is refused with a clear 413; the bot keeps serving', async () => {
    const big = await click(withData('acknowledge', { alertId: alert.id, nonce: 'stale', blob: 'y'.repeat(900_000) }));
    expectClearAnswer(big, 'payload of 900 KB');
    const tooBig = await click(withData('acknowledge', { alertId: alert.id, blob: 'y'.repeat(2_000_000) }));
    expect(tooBig.status).toBe(413);
    expectPlainAnswer(tooBig.text, '413 body');
    const nested = await click(withData('rotate', '__RAW__'), ALEX, `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`);
    expectClearAnswer(nested, 'deeply nested data');

    // Still serving: a normal command and a normal (stale-nonce) click work.
    const help = await h.command('/help', ALEX);
    expect(JSON.stringify(help.replies)).toContain('/expiring');
    const stale = await click(withData('acknowledge', { alertId: alert.id, nonce: 'old-nonce' }));
    expectClearAnswer(stale, 'stale click after the abuse');
    const ready = await fetch(`${h.botUrl}/readyz`);
    expect(ready.status).toBe(200);
  }, 60_000);
});
