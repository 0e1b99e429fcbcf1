import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { formatUtcDate } from '../../src/domain/expiry.js';
import { cardText, cred, START, startAlertsHarness, type AlertsHarness } from './harness.js';
import { ALICE } from '../helpers/bot.js';

const BOB = { id: '29:bob', name: 'Bob Ops', aadObjectId: 'dddddddd-0000-4000-8000-0000000000d1' };
const CARD = 'application/vnd.microsoft.card.adaptive';
/** Acknowledge / Snooze are for approvers and responders: Bob is a responder, Alice (the default clicker) an approver. */
const RESPONDERS = { responders: { users: [BOB.aadObjectId] } };
const APPROVERS = { approvals: { users: [ALICE.aadObjectId] } };

function bodyText(body: unknown): string {
  return JSON.stringify(body);
}

describe('alert card buttons: snooze, acknowledge, details', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  async function postedAlert(days: number) {
    const secret = cred('keyvault-secret', 'kv-prod', 'partner-webhook-key', days);
    await h.scan([secret]);
    const alert = h.alertFor(secret.id)!;
    expect(alert.message?.activityId).toBeDefined();
    return { secret, alert, activityId: alert.message!.activityId! };
  }

  it('snooze suppresses updates until its date; the date passing wakes the card', async () => {
    h = await startAlertsHarness({ alerts: { cardAtDays: 30, digest: false, ...RESPONDERS }, config: APPROVERS });
    h.clock.set(START + 11 * DAY_MS); // 29 days left: the 30-day card
    const { secret, alert, activityId } = await postedAlert(40);
    const until = formatUtcDate(h.clock.now() + 20 * DAY_MS);
    const r = await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: until, reason: 'rotation planned in CHG-1234' }, activityId, BOB);
    expect(r.body).toMatchObject({ statusCode: 200, type: CARD });
    expect(bodyText(r.body)).toContain(`Snoozed by Bob Ops until ${until}: rotation planned in CHG-1234`);
    const afterClick = h.connector.lastSeq; // the bot replaced the card for everyone

    // 14-day threshold while snoozed: nothing is sent.
    h.clock.set(START + 27 * DAY_MS);
    await h.scan([secret]);
    expect(h.connector.since(afterClick)).toHaveLength(0);
    expect(h.alertFor(secret.id)!.threshold).toBe(14);

    // The snooze date passes: one in-place update with the current (14-day) state, no snooze line.
    h.clock.set(Date.parse(`${until}T00:00:00Z`) + 60_000);
    await h.drainAll(0);
    const woke = h.connector.since(afterClick);
    expect(woke).toHaveLength(1);
    expect(woke[0]).toMatchObject({ op: 'update', activityId });
    expect(cardText(woke[0]!)).toContain('14-day warning');
    expect(cardText(woke[0]!)).not.toContain('Snoozed');
    expect(h.alertFor(secret.id)!.state).toBe('open');
  });

  it('a worse threshold in the urgent band wakes a snoozed alert early', async () => {
    h = await startAlertsHarness({ alerts: { cardAtDays: 30, digest: false, ...RESPONDERS }, config: APPROVERS });
    const { secret, alert, activityId } = await postedAlert(12); // 14-day card
    await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: formatUtcDate(START + 20 * DAY_MS), reason: 'waiting on vendor' }, activityId, BOB);
    const afterClick = h.connector.lastSeq;
    h.clock.set(START + 6 * DAY_MS); // 6 days left: the 7-day threshold
    await h.scan([secret]);
    const woke = h.connector.since(afterClick);
    expect(woke).toHaveLength(1);
    expect(woke[0]).toMatchObject({ op: 'update', activityId });
    expect(cardText(woke[0]!)).toContain('7-day warning');
    expect(h.alertFor(secret.id)!.state).toBe('open');
    expect(h.alertFor(secret.id)!.history.map((e) => e.event)).toContain('woken');
  });

  it('snooze input is validated with clear errors and changes nothing', async () => {
    h = await startAlertsHarness({ alerts: { snoozeMaxDays: 14, ...RESPONDERS }, config: APPROVERS });
    const { alert, activityId } = await postedAlert(5);
    const base = { alertId: alert.id, nonce: alert.nonce };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ reason: 'x' }, 'pick a date'],
      [{ snoozeUntil: '2026-02-30', reason: 'x' }, 'not a real date'],
      [{ snoozeUntil: formatUtcDate(START - DAY_MS), reason: 'x' }, 'after today'],
      [{ snoozeUntil: formatUtcDate(START + 20 * DAY_MS), reason: 'x' }, 'at most 14 days'],
      [{ snoozeUntil: formatUtcDate(START + 3 * DAY_MS), reason: '   ' }, 'say why'],
    ];
    for (const [data, problem] of cases) {
      const r = await h.click('snooze', { ...base, ...data }, activityId);
      expect(r.body).toMatchObject({ type: 'application/vnd.microsoft.activity.message', value: expect.stringContaining(problem) });
    }
    expect(h.alertFor(alert.credentialId)!.state).toBe('open');
  });

  it('acknowledge records who, when and why on the card and in the audit log; a stale nonce gets the current card', async () => {
    h = await startAlertsHarness({ alerts: RESPONDERS, config: APPROVERS });
    const { alert, activityId } = await postedAlert(5);
    const r = await h.click('acknowledge', { alertId: alert.id, nonce: alert.nonce, ackReason: 'owner rotates it Friday' }, activityId, BOB);
    expect(bodyText(r.body)).toContain('Acknowledged by Bob Ops at');
    expect(bodyText(r.body)).toContain(': owner rotates it Friday');
    expect(bodyText(r.body)).not.toContain('"verb":"acknowledge"');
    const stored = h.alertFor(alert.credentialId)!;
    expect(stored.acknowledged).toMatchObject({ by: { name: 'Bob Ops', aadObjectId: BOB.aadObjectId } });
    expect(h.store.listAudit({ subject: alert.id }).map((e) => e.action)).toContain('alert.acknowledged');

    // The old nonce (a card someone had open before the change) is refused with the current state.
    const stale = await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: formatUtcDate(START + 3 * DAY_MS), reason: 'x' }, activityId);
    expect(bodyText(stale.body)).toContain('This card was out of date');
    expect(bodyText(stale.body)).toContain(stored.nonce);
    expect(h.alertFor(alert.credentialId)!.state).toBe('acknowledged');

    // Forged data: unknown alert, or no ids at all.
    const forged = await h.click('acknowledge', { alertId: 'nope', nonce: 'x' }, activityId);
    expect(forged.body).toMatchObject({ value: expect.stringContaining('does not name an alert') });
    const empty = await h.click('acknowledge', { alertId: { $ne: 1 } }, activityId);
    expect(empty.body).toMatchObject({ value: expect.stringContaining('does not name an alert') });
  });

  it('details posts facts, findings with fixes, consumers and history in the card\'s thread', async () => {
    h = await startAlertsHarness();
    const secret = cred('keyvault-secret', 'kv-prod', 'adb-prod-bob-pipeline', 5, {
      consumers: [{ kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_Prod', pipelines: ['bob-reports'] }],
    });
    const finding = { code: 'human-owned-pipeline' as const, severity: 'high' as const, credentialId: secret.id, scope: 'kv-prod', estate: 'keyvault' as const,
      message: 'A pipeline uses a PAT owned by a person.', remedy: 'Use a token owned by a service principal.' };
    await h.scan([secret], [finding]);
    const alert = h.alertFor(secret.id)!;
    const r = await h.click('details', { alertId: alert.id, nonce: alert.nonce }, alert.message!.activityId!);
    expect(r.body).toMatchObject({ value: expect.stringContaining('thread') });
    await h.drainAll(0);
    const replies = h.connector.repliesTo(alert.message!.activityId!);
    expect(replies).toHaveLength(1);
    const text = cardText(replies[0]!);
    expect(text).toContain('Fix: Use a token owned by a service principal.');
    expect(text).toContain('LS_Databricks_Prod');
    expect(text).toContain('crossed the 7d threshold');
  });
});
