import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/alerts/pacing.js';
import type { OutboxEntry } from '../../src/alerts/types.js';
import type { Collection, Store } from '../../src/store/store.js';
import { DAY_MS } from '../../src/clock.js';
import { formatUtcDate } from '../../src/domain/expiry.js';
import { ALICE } from '../helpers/bot.js';
import { cardIn, cred, isDigest, START, startAlertsHarness, type AlertsHarness } from './harness.js';

const BOB = { id: '29:bob', name: 'Bob Ops', aadObjectId: 'dddddddd-0000-4000-8000-0000000000d1' };
const SNOOZERS = { alerts: { cardAtDays: 14, digest: false, responders: { users: [BOB.aadObjectId] } }, config: { approvals: { users: [ALICE.aadObjectId] } } };

/**
 * Issue 14: a first scan of a large estate queues one outbox entry per card (≈ 87k at 360k credentials). A drain pass,
 * the pacer's seeding and /readyz read the outbox index a page at a time, not the outbox; and a store written before
 * the index (today's rows, no index keys) still sends every waiting card, once, within Teams' limits.
 */

async function readyz(h: AlertsHarness): Promise<Array<{ name: string; ok: boolean; detail?: string }>> {
  const res = await fetch(`${h.server.url}/readyz`);
  return (await res.json() as { checks: Array<{ name: string; ok: boolean; detail?: string }> }).checks;
}

/** Counts the records of these collections (default: the outbox entries and index keys) the store hands out. */
function countOutboxReads(store: Store, collections: Collection[] = ['outbox', 'outbox-index']): { records: number } {
  const counted = { records: 0 };
  const outbox = (c: Collection) => collections.includes(c);
  const list = store.list.bind(store);
  const listIds = store.listIds.bind(store);
  const get = store.get.bind(store);
  store.list = <T>(collection: Collection, options?: Parameters<Store['list']>[1]) => {
    const got = list<T>(collection, options);
    if (outbox(collection)) counted.records += got.length;
    return got;
  };
  store.listIds = (collection: Collection, options?: Parameters<Store['listIds']>[1]) => {
    const got = listIds(collection, options);
    if (outbox(collection)) counted.records += got.length;
    return got;
  };
  store.get = <T>(collection: Collection, id: string) => {
    const got = get<T>(collection, id);
    if (outbox(collection) && got) counted.records += 1;
    return got;
  };
  return counted;
}

describe('the outbox is read a page at a time', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it('with 3,000 cards waiting, a drain pass and /readyz read a few dozen outbox records, and sends stay paced', async () => {
    h = await startAlertsHarness();
    await h.scan([cred('keyvault-secret', 'kv-prod', 'first', 2)]);
    const channel = h.alertFor(cred('keyvault-secret', 'kv-prod', 'first', 2).id)!.channel!;
    const now = h.clock.now();
    for (let i = 0; i < 3_000; i++) {
      enqueue(h.store, `card:bulk-${String(i).padStart(4, '0')}`, { kind: 'alert-card', alertId: `bulk-${i}`, channel, priority: 300 + (i % 50) }, now);
    }
    h.clock.advance(60_000);
    const counted = countOutboxReads(h.store);
    await h.alerts.delivery.idle();
    const report = await h.alerts.tick();
    // The thread's first second of sends, then the queue is left until its next slot.
    expect(report.nextDueAt).toBeGreaterThan(h.clock.now());
    expect(counted.records).toBeLessThan(150);
    // Most urgent first: the entries taken so far are the lowest priority numbers.
    const taken = h.store.list<OutboxEntry>('outbox', { prefix: 'card:bulk-' }).filter((r) => r.value.status !== 'pending');
    expect(taken.length).toBeGreaterThan(0);
    expect(taken.every((r) => r.value.priority === 300)).toBe(true);

    counted.records = 0;
    const delivery = (await readyz(h)).find((c) => c.name === 'alert-delivery')!;
    expect(delivery.detail).toContain('more than 1000 waiting to send');
    // Its 1,001 index keys; on a loaded machine the pacer's next slot can come meanwhile and add one drain pass (< 150).
    expect(counted.records).toBeLessThan(1_001 + 150);
  }, 60_000);

  it('a store written before the outbox index sends its waiting cards once, paced, after a restart', async () => {
    h = await startAlertsHarness({ connector: { enforceRateLimits: true } });
    const creds = Array.from({ length: 40 }, (_, i) => cred('keyvault-secret', 'kv-prod', `s${String(i).padStart(2, '0')}`, 1 + (i % 9)));
    await h.scan(creds);
    const before = h.channelActivities().length;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(41);
    // What today's main leaves behind: outbox entries only, no index keys, no marker.
    for (const id of h.store.listIds('outbox-index')) h.store.delete('outbox-index', id);
    for (const id of h.store.listIds('settings', { prefix: 'outbox-index' })) h.store.delete('settings', id);
    await h.restart();
    await h.drainAll();

    const activities = h.channelActivities();
    const cards = activities.filter((a) => !isDigest(a));
    const alertIds = cards.map((a) => (cardIn(a)!.actions as Array<{ data?: { alertId?: string } }>).find((x) => x.data)?.data?.alertId);
    expect(new Set(alertIds).size).toBe(40);
    expect(cards).toHaveLength(40);
    expect(activities.filter(isDigest)).toHaveLength(1);
    // The sends from before the restart seeded the pacer from the rebuilt index: no limit exceeded, no 429.
    expect(h.connector.limitViolations()).toEqual([]);
    expect(h.connector.server.requests.filter((r) => r.status === 429)).toEqual([]);
    expect(h.logLines.some((l) => l.includes('indexed'))).toBe(true);
    expect(h.store.listIds('outbox-index', { prefix: 'q|' })).toEqual([]);
  }, 60_000);
});

describe('snoozes end through their wake keys', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  async function snoozeOne(days: number): Promise<{ id: string; until: string; activityId: string; mark: number }> {
    const alert = h.alertFor(cred('keyvault-secret', 'kv-prod', 'snoozed', days).id)!;
    const until = formatUtcDate(h.clock.now() + 5 * DAY_MS);
    const r = await h.click('snooze', { alertId: alert.id, nonce: alert.nonce, snoozeUntil: until, reason: 'planned' }, alert.message!.activityId!, BOB);
    expect(r.status).toBe(200);
    return { id: alert.id, until, activityId: alert.message!.activityId!, mark: h.connector.lastSeq };
  }

  it('with 300 alerts, the pass that ends a snooze reads that alert, not all of them', async () => {
    h = await startAlertsHarness(SNOOZERS);
    // Past the 30-day threshold: 300 open alerts, in no card (cards from 14 days).
    const many = Array.from({ length: 300 }, (_, i) => cred('keyvault-secret', 'kv-prod', `other-${i}`, 25));
    await h.scan([cred('keyvault-secret', 'kv-prod', 'snoozed', 10), ...many]);
    expect(h.store.listIds('alerts')).toHaveLength(301);
    const snoozed = await snoozeOne(10);
    h.clock.set(Date.parse(`${snoozed.until}T00:00:00Z`) + 60_000);
    const counted = countOutboxReads(h.store, ['alerts']);
    await h.alerts.delivery.idle();
    await h.alerts.tick();
    const reads = counted.records;
    expect(h.store.get<{ state: string }>('alerts', snoozed.id)!.value.state).toBe('open');
    expect(h.connector.since(snoozed.mark)).toMatchObject([{ op: 'update', activityId: snoozed.activityId }]);
    expect(reads).toBeLessThan(20);
  }, 60_000);

  it('a snooze a store kept from before the wake keys still ends on its date after a restart', async () => {
    h = await startAlertsHarness(SNOOZERS);
    h.clock.set(START + DAY_MS);
    await h.scan([cred('keyvault-secret', 'kv-prod', 'snoozed', 10)]);
    const snoozed = await snoozeOne(10);
    // What the previous version left: the snoozed alert and its next-wake note, no wake key, no marker.
    for (const id of h.store.listIds('alert-claims', { prefix: 'snooze:' })) h.store.delete('alert-claims', id);
    for (const id of h.store.listIds('settings', { prefix: 'alerts:snooze-keys' })) h.store.delete('settings', id);
    h.store.put('settings', 'alerts:next-wake', { at: Date.parse(`${snoozed.until}T00:00:00Z`) });
    await h.restart();
    await h.drainAll(0);
    expect(h.connector.since(snoozed.mark)).toEqual([]);
    h.clock.set(Date.parse(`${snoozed.until}T00:00:00Z`) + 60_000);
    await h.drainAll(0);
    expect(h.connector.since(snoozed.mark)).toMatchObject([{ op: 'update', activityId: snoozed.activityId }]);
    expect(h.store.get('settings', 'alerts:next-wake')).toBeUndefined();
  }, 60_000);
});
