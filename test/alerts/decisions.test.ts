import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { ALICE, invokeActivity } from '../helpers/bot.js';
import { cardText, cred, startAlertsHarness, type AlertsHarness } from './harness.js';

/**
 * Acknowledge and Snooze are decisions: for approvers (approvals.users) or responders (alerts.responders), each with
 * a reason; anyone else — and a click without an Entra identity or tenant — is refused and audited. The snooze
 * form's default date is one the server accepts.
 */

const BOB = { id: '29:bob', name: 'Bob Ops', aadObjectId: 'dddddddd-0000-4000-8000-0000000000d1' };
const CAROL = { id: '29:carol', name: 'Carol Guest', aadObjectId: 'cccccccc-0000-4000-8000-0000000000c1' };
const MESSAGE = 'application/vnd.microsoft.activity.message';

let h: AlertsHarness;
afterEach(async () => { await h?.close(); });

async function start(): Promise<AlertsHarness> {
  return startAlertsHarness({ alerts: { responders: { users: [BOB.aadObjectId] } }, config: { approvals: { users: [ALICE.aadObjectId] } } });
}

async function postedAlert(days = 5) {
  const secret = cred('keyvault-secret', 'kv-prod', 'partner-webhook-key', days);
  await h.scan([secret]);
  const alert = h.alertFor(secret.id)!;
  return { secret, alert, activityId: alert.message!.activityId! };
}

function refusals(alertId: string) {
  return h.store.listAudit({ subject: alertId }).filter((a) => a.action === 'approval.refused');
}

/** Posts a click with the given identity fields removed (a forged or anonymous invoke). */
async function rawClick(verb: string, data: Record<string, unknown>, activityId: string, strip: { aadObjectId?: boolean; tenant?: boolean }) {
  const activity = invokeActivity(h.connector.serviceUrl, verb, data, activityId, { kind: 'channel', user: { ...BOB } });
  if (strip.aadObjectId) delete (activity.from as Record<string, unknown>).aadObjectId;
  if (strip.tenant) {
    delete (activity.conversation as Record<string, unknown>).tenantId;
    delete (activity.channelData as Record<string, unknown>).tenant;
  }
  const res = await fetch(`${h.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  return JSON.parse(await res.text()) as { type: string; value: unknown };
}

/** The snooze form's default date as the card shows it. */
function defaultSnoozeDate(card: string): string {
  return /"id":"snoozeUntil"[^}]*"value":"(\d{4}-\d{2}-\d{2})"/.exec(card)![1]!;
}

describe('Acknowledge and Snooze are decisions', () => {
  it('a non-approver, non-responder is refused for both, nothing changes, and each refusal is audited', async () => {
    h = await start();
    const { alert, activityId } = await postedAlert();
    const ack = await h.click('acknowledge', { alertId: alert.id, nonce: alert.nonce, ackReason: 'I looked at it' }, activityId, CAROL);
    expect(ack.body).toMatchObject({ type: MESSAGE, value: expect.stringMatching(/Carol Guest may not acknowledge alerts.*approvers.*responders/) });
    const snooze = await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: '2026-04-20', reason: 'later' }, activityId, CAROL);
    expect(snooze.body).toMatchObject({ type: MESSAGE, value: expect.stringMatching(/may not snooze alerts/) });
    const stored = h.alertFor(alert.credentialId)!;
    expect(stored.state).toBe('open');
    expect(stored.snooze).toBeUndefined();
    expect(refusals(alert.id).map((a) => [a.actor?.aadObjectId, (a.details as { verb: string; code: string }).verb, (a.details as { code: string }).code]))
      .toEqual([[CAROL.aadObjectId, 'acknowledge', 'not-approver'], [CAROL.aadObjectId, 'snooze', 'not-approver']]);
  });

  it('a responder acknowledges with a reason; without one both are refused with what to type', async () => {
    h = await start();
    const { alert, activityId } = await postedAlert();
    const noReason = await h.click('acknowledge', { alertId: alert.id, nonce: alert.nonce }, activityId, BOB);
    expect(noReason.body).toMatchObject({ type: MESSAGE, value: expect.stringContaining('say why') });
    const noSnoozeReason = await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: '2026-04-05', reason: '  ' }, activityId, BOB);
    expect(noSnoozeReason.body).toMatchObject({ type: MESSAGE, value: expect.stringContaining('say why') });
    expect(h.alertFor(alert.credentialId)!.state).toBe('open');

    const ok = await h.click('acknowledge', { alertId: alert.id, nonce: alert.nonce, ackReason: 'owner rotates it Friday' }, activityId, BOB);
    expect(JSON.stringify(ok.body)).toContain('Acknowledged by Bob Ops at');
    expect(h.store.listAudit({ subject: alert.id }).find((a) => a.action === 'alert.acknowledged')).toMatchObject({ actor: { aadObjectId: BOB.aadObjectId }, details: { reason: 'owner rotates it Friday' } });
  });

  it('a click with no Entra identity, or no tenant, is refused and audited', async () => {
    h = await start();
    const { alert, activityId } = await postedAlert();
    const anonymous = await rawClick('acknowledge', { alertId: alert.id, nonce: alert.nonce, ackReason: 'x-ray' }, activityId, { aadObjectId: true });
    expect(anonymous).toMatchObject({ type: MESSAGE, value: expect.stringMatching(/Entra identity was not in the request/) });
    const noTenant = await rawClick('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: '2026-04-05', reason: 'later' }, activityId, { tenant: true });
    expect(noTenant).toMatchObject({ type: MESSAGE, value: expect.stringMatching(/tenant/) });
    expect(h.alertFor(alert.credentialId)!.state).toBe('open');
    expect(refusals(alert.id).map((a) => [(a.details as { verb: string }).verb, (a.details as { code: string }).code])).toEqual([['acknowledge', 'anonymous'], ['snooze', 'wrong-tenant']]);
  });

  it('the snooze form\'s default date is accepted, even on a card posted days ago', async () => {
    h = await start();
    const { alert, activityId } = await postedAlert(12);
    const posted = cardText(h.connector.activities.find((a) => a.activityId === activityId)!);
    h.clock.advance(8 * DAY_MS); // the card's default (posted + 7 days) is now in the past
    const first = await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: defaultSnoozeDate(posted), reason: 'vendor fix due' }, activityId, BOB);
    expect(JSON.stringify(first.body)).not.toContain('Snooze not set');
    // An old card is answered with the current one; its default date is accepted as it stands.
    const current = JSON.stringify(first.body);
    expect(current).toContain('out of date');
    const fresh = h.alertFor(alert.credentialId)!;
    expect(current).toContain(fresh.nonce);
    const second = await h.click('snooze', { alertId: alert.id, nonce: fresh.nonce, snoozeUntil: defaultSnoozeDate(current), reason: 'vendor fix due' }, activityId, BOB);
    expect(JSON.stringify(second.body)).toContain('Snoozed by Bob Ops until');
    expect(h.alertFor(alert.credentialId)!.state).toBe('snoozed');
  });
});
