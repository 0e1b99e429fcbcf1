import { afterEach, describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../src/clock.js';
import type { AlertRecord } from '../../src/alerts/types.js';
import { cardIn, cred, isDigest, startAlertsHarness, type AlertsHarness } from './harness.js';

describe('no flood: one digest per scan, paced per-credential cards, most urgent first', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it('500 expiring credentials: one digest plus paced cards; no per-thread limit exceeded, no 429; the backlog survives a restart', async () => {
    // The emulator answers 429 to any send over Teams' per-thread limits, so a pacing bug cannot hide.
    h = await startAlertsHarness({ connector: { enforceRateLimits: true } });
    const kinds = ['databricks-pat', 'keyvault-secret', 'entra-password'] as const;
    const creds = Array.from({ length: 500 }, (_, i) =>
      cred(kinds[i % 3]!, `scope-${i % 7}`, `c${String(i).padStart(3, '0')}`, ((i * 37) % 15) - 1 + 0.5)); // -0.5 … 13.5 days
    await h.scan(creds);

    // Half-way through the backlog the process restarts; the outbox is in the store.
    await h.drainAll(60_000);
    const sentBeforeRestart = h.channelActivities().length;
    expect(sentBeforeRestart).toBeGreaterThan(50);
    expect(sentBeforeRestart).toBeLessThan(501);
    await h.restart();
    await h.drainAll(HOUR_MS);

    const activities = h.channelActivities();
    const digests = activities.filter(isDigest);
    const cards = activities.filter((a) => !isDigest(a));
    expect(digests).toHaveLength(1);
    expect(cards).toHaveLength(500);
    expect(cards.every((a) => a.op === 'post')).toBe(true);
    // Each credential's card once.
    const alertIds = cards.map((a) => (cardIn(a)!.actions as Array<{ data?: { alertId?: string } }>).find((x) => x.data)?.data?.alertId);
    expect(new Set(alertIds).size).toBe(500);
    // Digest first, then most urgent first (days left never decreases along the posts).
    expect(activities[0]).toBe(digests[0]);
    const byId = new Map(h.store.list<AlertRecord>('alerts').map((r) => [r.value.id, r.value]));
    const expiries = alertIds.map((id) => byId.get(id!)!.credential.expiresAt!);
    expect(expiries.every((e, i) => i === 0 || e >= expiries[i - 1]!)).toBe(true);

    expect(h.connector.limitViolations()).toEqual([]);
    expect(h.connector.server.requests.filter((r) => r.status === 429)).toEqual([]);
    // Paced: 501 sends at ≤ 60 per 30 s need at least 4 minutes of clock time.
    const span = activities.at(-1)!.at - activities[0]!.at;
    expect(span).toBeGreaterThanOrEqual(8 * 30_000);

    // The digest counts by urgency and kind, charts them and lists the most urgent rows.
    const digest = JSON.stringify(cardIn(digests[0]!));
    expect(digest).toContain('500 credentials need attention (500 new)');
    expect(digest).toContain('Chart.Donut');
    expect(digest).toContain('Chart.VerticalBar');
    expect(digest).toContain('…and 490 more');
    expect(Buffer.byteLength(digest)).toBeLessThan(25 * 1024);

    // Nothing further on a rescan.
    const last = h.connector.lastSeq;
    await h.scan(creds);
    await h.drainAll(HOUR_MS);
    expect(h.connector.lastSeq).toBe(last);
  }, 120_000);
});
