import { afterEach, describe, expect, it } from 'vitest';
import { startBotHarness, type BotHarness } from '../helpers/bot.js';

/** Issue 15 point 1: a turn that cannot finish (here: Teams' connector never answers in time) is answered 503 + Retry-After. */
describe('the whole turn is bounded', () => {
  let h: BotHarness | undefined;
  afterEach(async () => {
    h?.connector.server.setLatency(0);
    await h?.close();
    h = undefined;
  });

  it('a turn past server.turnTimeoutSeconds gets 503 with Retry-After and a JSON reason, and finishes in the background', async () => {
    h = await startBotHarness({ config: { server: { turnTimeoutSeconds: 1 } } });
    h.connector.server.setLatency(3_000);
    const res = await fetch(`${h.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(h.message('/help')) });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.json()).toMatchObject({ error: { code: 'TurnTimeout' } });
    expect(h.logLines.some((l) => l.includes('overran its time budget'))).toBe(true);
    // The reply still lands once the connector answers; the turn was not abandoned mid-way.
    await expect.poll(() => h!.server.inFlight, { timeout: 10_000 }).toBe(0);
    expect(h.connector.activities.some((a) => JSON.stringify(a).includes('commands'))).toBe(true);
  }, 30_000);

  it('a turn within the budget is answered normally', async () => {
    h = await startBotHarness({ config: { server: { turnTimeoutSeconds: 5 } } });
    const r = await h.send(h.message('/help'), { replies: 1 });
    expect(r.status).toBe(200);
    expect(r.sent).toHaveLength(1);
  });
});
