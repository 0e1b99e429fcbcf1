import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS, MINUTE_MS } from '../../src/clock.js';
import type { OutboxEntry } from '../../src/alerts/types.js';
import { ALICE, installationUpdateActivity } from '../helpers/bot.js';
import { cardText, cred, isDigest, START, startAlertsHarness, SUPPORT_CHANNEL, TEAM, type AlertsHarness } from './harness.js';

async function readyz(h: AlertsHarness): Promise<{ status: number; checks: Array<{ name: string; ok: boolean; detail?: string }> }> {
  const res = await fetch(`${h.server.url}/readyz`);
  const body = await res.json() as { checks: Array<{ name: string; ok: boolean; detail?: string }> };
  return { status: res.status, checks: body.checks };
}

async function install(h: AlertsHarness): Promise<void> {
  const res = await fetch(`${h.server.url}/api/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(installationUpdateActivity(h.connector.serviceUrl, 'add', { kind: 'channel' })),
  });
  expect(res.status).toBe(200);
}

/** Card posts only: the sandbox's "this channel is now a support channel" text does not count. */
const cardPostsIn = (h: AlertsHarness) => h.connector.postsIn(TEAM.id).filter((a) => a.attachments.length > 0);

describe('delivery you can trust', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it('403 not in roster marks the channel dead in /readyz; a reinstall revives it and the waiting card goes out', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    h.connector.injectFault({ kind: 'not-in-roster', conversationId: SUPPORT_CHANNEL.id, times: Infinity });
    const secret = cred('keyvault-secret', 'kv-prod', 'sql-admin-password', 1);
    await h.scan([secret]);
    const ready = await readyz(h);
    expect(ready.status).toBe(503);
    const channels = ready.checks.find((c) => c.name === 'channels')!;
    expect(channels.ok).toBe(false);
    expect(channels.detail).toContain('support channel support is unreachable (not-in-roster)');
    expect(channels.detail).toContain('reinstall Keywarden');
    expect(h.logLines.some((l) => l.includes('is unreachable (not-in-roster)'))).toBe(true);

    // Nothing is retried against a dead channel, however often the drain runs.
    const attempts = h.connector.server.requests.length;
    h.clock.advance(10 * MINUTE_MS);
    await h.drainAll(0);
    expect(h.connector.server.requests.length).toBe(attempts);

    h.connector.clearFaults();
    await install(h);
    await h.drainAll(0);
    const posts = h.channelActivities().filter((a) => a.op === 'post');
    expect(posts).toHaveLength(1);
    expect(h.alertFor(secret.id)!.message?.activityId).toBe(posts[0]!.activityId);
    expect((await readyz(h)).checks.find((c) => c.name === 'channels')!.ok).toBe(true);
  });

  it('a transient failure is retried with backoff on the clock, not by sleeping', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    // 412 five times: the gateway's own retries (3) give up, the outbox schedules the next try.
    h.connector.injectFault({ kind: 'precondition-failed', conversationId: SUPPORT_CHANNEL.id, times: 5 });
    const secret = cred('keyvault-secret', 'kv-prod', 'sql-admin-password', 1);
    await h.scan([secret]);
    expect(h.channelActivities()).toHaveLength(0);
    const entry = h.store.get<OutboxEntry>('outbox', `card:${h.alertFor(secret.id)!.id}`)!.value;
    expect(entry).toMatchObject({ status: 'pending', attempts: 1, lastError: { code: 'precondition-failed' } });
    expect(entry.dueAt).toBeGreaterThan(h.clock.now());
    await h.drainAll(10 * MINUTE_MS);
    expect(h.channelActivities().filter((a) => a.op === 'post')).toHaveLength(1);
    expect(h.store.get<OutboxEntry>('outbox', `card:${h.alertFor(secret.id)!.id}`)!.value.status).toBe('sent');
  });

  it('when Teams returns no activity id, the next update is posted anew instead of failing', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    h.connector.setNoIdMode({ times: 1 });
    const pat = cred('databricks-pat', 'ws-prod', '9', 10);
    await h.scan([pat]);
    expect(h.alertFor(pat.id)!.message).toBeDefined();
    expect(h.alertFor(pat.id)!.message!.activityId).toBeUndefined();
    h.clock.set(START + 4 * DAY_MS); // 6 days left: 7-day threshold
    await h.scan([pat]);
    h.clock.set(START + 9.5 * DAY_MS); // 1-day threshold: now a real PUT
    await h.scan([pat]);
    const ops = h.channelActivities().map((a) => a.op);
    expect(ops).toEqual(['post', 'post', 'update']);
    const [, second, update] = h.channelActivities();
    expect(update!.activityId).toBe(second!.activityId);
    expect(cardText(update!)).toContain('1-day warning');
  });

  it('a message Teams finds too large is shrunk (fewer digest rows) and sent', async () => {
    h = await startAlertsHarness({ connector: { maxMessageBytes: 3_500 }, alerts: { cardAtDays: 1 } });
    const creds = Array.from({ length: 40 }, (_, i) => cred('keyvault-secret', 'kv-prod', `a-rather-long-secret-name-number-${i}`, 5 + (i % 20)));
    await h.scan(creds);
    await h.drainAll(MINUTE_MS);
    const digests = h.channelActivities().filter(isDigest);
    expect(digests).toHaveLength(1);
    const text = cardText(digests[0]!);
    expect(text).toContain('…and 35 more'); // 10 rows were too large, 5 fit
    expect(h.connector.server.requests.some((r) => r.status === 413)).toBe(true);
  });

  it('with no channel configured, an approver installing the bot in a team (sandbox) makes that channel the support channel', async () => {
    h = await startAlertsHarness({ configuredChannel: false, alerts: { digest: false }, config: { approvals: { users: [ALICE.aadObjectId] } } });
    const secret = cred('keyvault-secret', 'kv-prod', 'storage-account-key', -3);
    await h.scan([secret]);
    const before = await readyz(h);
    expect(before.checks.find((c) => c.name === 'channels')).toMatchObject({ ok: false, detail: expect.stringContaining('have no support channel') });
    expect(h.logLines.some((l) => l.includes('alerts have no support channel'))).toBe(true);

    await install(h);
    await h.drainAll(0);
    const posted = cardPostsIn(h);
    expect(posted).toHaveLength(1);
    expect(cardText(posted[0]!)).toContain('has expired');
    expect((await readyz(h)).checks.find((c) => c.name === 'channels')!.ok).toBe(true);
  });

  it('a channel installed after the scan gets the digest first, then the cards', async () => {
    h = await startAlertsHarness({ configuredChannel: false, config: { approvals: { users: [ALICE.aadObjectId] } } });
    await h.scan([cred('keyvault-secret', 'kv-prod', 'storage-account-key', -3), cred('databricks-pat', 'ws-prod', 'tok-1', 5)]);
    await h.drainAll(0);
    expect(cardPostsIn(h)).toHaveLength(0);

    await install(h);
    await h.drainAll(MINUTE_MS);
    const posted = cardPostsIn(h);
    expect(posted).toHaveLength(3);
    expect(isDigest(posted[0]!)).toBe(true);
    expect(posted.slice(1).some(isDigest)).toBe(false);

    // A second installation event (Teams repeats them) sends nothing new.
    await install(h);
    await h.drainAll(MINUTE_MS);
    expect(cardPostsIn(h)).toHaveLength(3);
  });

  it('owner notices go to personal chat once; an unreachable owner is recorded and reported, not retried', async () => {
    h = await startAlertsHarness({ alerts: { ownerNotices: true, digest: false } });
    const reachable = 'eeeeeeee-0000-4000-8000-0000000000e1';
    const unreachable = 'eeeeeeee-0000-4000-8000-0000000000e2';
    const owned = (id: string, oid: string) => cred('databricks-pat', 'ws-prod', id, 6, { owner: { name: `owner-${id}`, kind: 'user', entraObjectId: oid, active: true } });
    // The first owner has no personal installation: Teams refuses to open a chat with them (403).
    h.connector.injectFault({ kind: 'not-in-roster', op: 'create', times: Infinity });
    await h.scan([owned('1', unreachable)]);
    await h.drainAll(0);
    h.connector.clearFaults();
    await h.scan([owned('1', unreachable), owned('2', reachable)]);
    await h.drainAll(0);
    h.clock.advance(DAY_MS);
    await h.scan([owned('1', unreachable), owned('2', reachable)]);
    await h.drainAll(10 * MINUTE_MS);

    const personal = [...h.connector.activities].filter((a) => a.conversationId.startsWith('a:'));
    expect(personal).toHaveLength(1);
    expect(personal[0]!.text).toContain('Your Databricks PAT "2"');
    const creates = h.connector.server.requests.filter((r) => r.method === 'POST' && r.path === '/v3/conversations');
    expect(creates.filter((r) => r.status === 403)).toHaveLength(1);
    const delivery = (await readyz(h)).checks.find((c) => c.name === 'alert-delivery')!;
    expect(delivery.detail).toContain('1 owner unreachable in personal chat');
  });
});
