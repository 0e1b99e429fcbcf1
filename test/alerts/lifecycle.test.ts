import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/clock.js';
import type { AlertClaim } from '../../src/alerts/types.js';
import { cardText, cred, isDigest, START, startAlertsHarness, SUPPORT_CHANNEL, type AlertsHarness } from './harness.js';

const OWNER_ID = 'cccccccc-0000-4000-8000-0000000000c1';

describe('alert lifecycle: one card per credential, updated in place', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it('a credential walking from 40 days to expired gets 1 post and 4 in-place updates, and a restart half-way changes nothing', async () => {
    h = await startAlertsHarness({ alerts: { cardAtDays: 30, digest: false } });
    const pat = cred('databricks-pat', 'ws-prod', '1001', 40, {
      name: 'adf-etl', owner: { name: 'sp-etl', kind: 'service-principal', entraObjectId: OWNER_ID, active: true },
      heldIn: [{ vault: 'kv-prod', name: 'adb-prod-etl-token' }],
    });
    // Scan every 6 hours for 42 days; restart half-way (day 20).
    let restarted = false;
    for (let t = START; t <= START + 42 * DAY_MS; t += 6 * HOUR_MS) {
      h.clock.set(t);
      await h.scan([pat]);
      if (!restarted && t >= START + 20 * DAY_MS) {
        await h.restart();
        restarted = true;
        await h.scan([pat]); // the same scan again on the new process
      }
    }
    const activities = h.channelActivities();
    const posts = activities.filter((a) => a.op === 'post');
    const updates = activities.filter((a) => a.op === 'update');
    expect(posts).toHaveLength(1);
    expect(updates).toHaveLength(4);
    expect(updates.every((u) => u.activityId === posts[0]!.activityId)).toBe(true);
    expect(activities.filter((a) => a.op === 'reply')).toHaveLength(0);

    // What people saw, in order: 30 → 14 → 7 (with the owner @mentioned) → 1 → expired.
    expect(cardText(posts[0]!)).toContain('30-day warning');
    expect(cardText(updates[0]!)).toContain('14-day warning');
    expect(cardText(updates[1]!)).toContain('7-day warning');
    expect(updates[1]!.mentions.map((m) => m.id)).toContain(OWNER_ID);
    expect(cardText(updates[2]!)).toContain('1-day warning');
    expect(cardText(updates[3]!)).toContain('has expired');

    const alert = h.alertFor(pat.id)!;
    expect(alert.threshold).toBe('expired');
    expect(alert.message).toMatchObject({ conversationId: SUPPORT_CHANNEL.id, activityId: posts[0]!.activityId });
    expect(alert.deliveredRevision).toBe(alert.revision);
    // One claim per threshold, taken before sending.
    const claims = h.store.list<AlertClaim>('alert-claims', { prefix: `${pat.id}#` }).map((r) => r.id.split('#')[1]);
    expect(claims.sort()).toEqual(['14d', '1d', '30d', '7d', 'expired'].sort());
  });

  it('two scans back to back: the second sends nothing', async () => {
    h = await startAlertsHarness();
    const creds = [cred('keyvault-secret', 'kv-prod', 'sql-admin-password', 1), cred('entra-password', 'etl-ingest', 'k1', 10), cred('databricks-pat', 'ws-dev', '7', 25)];
    await h.scan(creds);
    const first = h.connector.lastSeq;
    expect(first).toBeGreaterThan(0);
    expect(h.channelActivities().filter(isDigest)).toHaveLength(1);
    // ≤ 14 days get their own card; 25 days is in the digest only.
    expect(h.channelActivities().filter((a) => !isDigest(a) && a.op === 'post')).toHaveLength(2);
    await h.scan(creds);
    h.clock.advance(HOUR_MS);
    await h.scan(creds);
    expect(h.connector.lastSeq).toBe(first);
  });

  it('two replicas handling the same scan post once (claims are compare-and-set in the shared store)', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    const secret = cred('keyvault-secret', 'kv-prod', 'storage-account-key', 5);
    const { createAlertsModule } = await import('../../src/alerts/index.js');
    const { createLogger } = await import('../../src/logging/logger.js');
    const { openSqliteStore } = await import('../../src/store/sqlite.js');
    // A second process on the same database file, sending through the same Teams.
    const store2 = openSqliteStore({ path: h.config.store.path, clock: h.clock });
    const replica = createAlertsModule({ config: h.config, store: store2, clock: h.clock, logger: createLogger({ level: 'silent' }), gateway: h.keywarden.chat });
    const { scanOf } = await import('./harness.js');
    const scan = scanOf(h.clock.now(), [secret]);
    await Promise.all([h.alerts.onScan(scan), replica.onScan(scan)]);
    await Promise.all([h.alerts.drain(), replica.drain()]);
    await h.alerts.drain();
    await replica.drain();
    store2.close();
    expect(h.channelActivities().filter((a) => a.op === 'post')).toHaveLength(1);
  });
});
