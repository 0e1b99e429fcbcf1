import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/alerts/pacing.js';
import type { OutboxEntry } from '../../src/alerts/types.js';
import type { Collection, Store } from '../../src/store/store.js';
import { cardIn, cred, isDigest, startAlertsHarness, type AlertsHarness } from './harness.js';

/**
 * Issue 14: a first scan of a large estate queues one outbox entry per card (≈ 87k at 360k credentials). A drain pass,
 * the pacer's seeding and /readyz read the outbox index a page at a time, not the outbox; and a store written before
 * the index (today's rows, no index keys) still sends every waiting card, once, within Teams' limits.
 */

async function readyz(h: AlertsHarness): Promise<Array<{ name: string; ok: boolean; detail?: string }>> {
  const res = await fetch(`${h.server.url}/readyz`);
  return (await res.json() as { checks: Array<{ name: string; ok: boolean; detail?: string }> }).checks;
}

/** Counts the outbox records (entries and index keys) the store hands out. */
function countOutboxReads(store: Store): { records: number } {
  const counted = { records: 0 };
  const outbox = (c: Collection) => c === 'outbox' || c === 'outbox-index';
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
    expect(counted.records).toBeLessThanOrEqual(1_001);
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
