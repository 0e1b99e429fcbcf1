import { afterEach, describe, expect, it } from 'vitest';
import { renderDigestCard } from '../../src/alerts/cards.js';
import { buildDigest } from '../../src/alerts/digest.js';
import { ALICE, installationUpdateActivity } from '../helpers/bot.js';
import { cardText, cred, isDigest, startAlertsHarness, TEAM, type AlertsHarness } from './harness.js';

/**
 * Issue 14: many alerts. /readyz counts the alerts waiting for a support channel without listing them, and adopting a
 * channel routes them and builds their digest a slice at a time: the bot keeps answering meanwhile, and the digest
 * still counts every one.
 */

const WAITING = 1_500;

async function readyChannels(h: AlertsHarness): Promise<{ ok: boolean; detail?: string }> {
  const body = await (await fetch(`${h.server.url}/readyz`)).json() as { checks: Array<{ name: string; ok: boolean; detail?: string }> };
  return body.checks.find((c) => c.name === 'channels')!;
}

async function install(h: AlertsHarness): Promise<void> {
  const res = await fetch(`${h.server.url}/api/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(installationUpdateActivity(h.connector.serviceUrl, 'add', { kind: 'channel' })),
  });
  expect(res.status).toBe(200);
}

/** The longest time the event loop went without running a 5 ms timer while `fn` ran. */
async function longestStall(fn: () => Promise<void>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  try {
    await fn();
    return Math.max(longest, performance.now() - last);
  } finally {
    clearInterval(timer);
  }
}

const kinds = ['databricks-pat', 'keyvault-secret', 'entra-password'] as const;
/** -0.5 … 13.5 days: each deserves its own card. */
const expiring = (n: number) => Array.from({ length: n }, (_, i) => cred(kinds[i % 3]!, `scope-${i % 7}`, `c${String(i).padStart(4, '0')}`, ((i * 37) % 15) - 0.5));

describe('a large estate', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it(`${WAITING} alerts waiting for a channel: /readyz counts them; installing in a channel keeps the bot answering, and its digest counts all of them`, async () => {
    h = await startAlertsHarness({ configuredChannel: false, config: { approvals: { users: [ALICE.aadObjectId] } } });
    await h.scan(expiring(WAITING));
    expect(await readyChannels(h)).toMatchObject({ ok: false, detail: expect.stringContaining(`${WAITING} alerts have no support channel`) });

    // Routing and counting 1,500 alerts in one go held the event loop for seconds; in slices no stall comes near that.
    // (The digest card's template loads once per process: loaded first, so the stall measured is the adoption's.)
    renderDigestCard(buildDigest([], { scanId: 'warm-up', channel: 'none', newCount: 0, now: h.clock.now() }));
    const stall = await longestStall(() => install(h));
    expect(stall).toBeLessThan(400);

    await h.drainAll(0);
    const posts = h.connector.postsIn(TEAM.id).filter((a) => a.attachments.length > 0);
    expect(isDigest(posts[0]!)).toBe(true);
    expect(cardText(posts[0]!)).toContain(`${WAITING} credentials need attention (${WAITING} new)`);
    expect(await readyChannels(h)).toMatchObject({ ok: true });
  }, 120_000);

  it('1,200 open alerts are read a page at a time after a scan: every credential that vanished resolves its alert, the rest stay open', async () => {
    h = await startAlertsHarness({ configuredChannel: false, alerts: { digest: false } });
    const creds = expiring(1_200);
    await h.scan(creds);
    // A scope's worth vanishes (replaced or removed); their alerts are spread over both pages of alert ids.
    const gone = new Set(creds.filter((c) => c.where.scope === 'scope-0').map((c) => c.id));
    await h.scan(creds.filter((c) => !gone.has(c.id)));
    const states = creds.map((c) => [c.id, h.alertFor(c.id)?.state] as const);
    expect(states.filter(([id, state]) => gone.has(id) && state !== 'resolved')).toEqual([]);
    expect(states.filter(([id, state]) => !gone.has(id) && state === 'resolved')).toEqual([]);
    expect(gone.size).toBeGreaterThan(150);
  }, 120_000);

  it('/readyz re-checks the waiting alerts it counted: one resolved since is no longer reported', async () => {
    h = await startAlertsHarness({ configuredChannel: false, alerts: { digest: false } });
    const creds = expiring(3);
    await h.scan(creds);
    expect((await readyChannels(h)).detail).toContain('3 alerts have no support channel');

    const alert = h.alertFor(creds[1]!.id)!;
    h.alerts.resolve(alert.id, { kind: 'rotated', text: 'rotated by hand', at: h.clock.now() });
    expect((await readyChannels(h)).detail).toContain('2 alerts have no support channel');

    // After a restart the count is the same (it is counted anew in the background, and stored).
    await h.restart();
    await new Promise((r) => setTimeout(r, 200));
    expect((await readyChannels(h)).detail).toContain('2 alerts have no support channel');
  });
});
