import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * The bot never waits on a scan (issue 14): while a scan runs against slow clouds, a click on a card is answered
 * over the protocol before the scan finishes, and the rescan's alerts post nothing new.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  // The scan runs on its own thread, as in production.
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 }, scanner: { thread: true } } });
  await h.scanAndDeliver();
}, 120_000);
afterAll(async () => {
  await h?.close();
});

describe('a click during a scan', () => {
  it('is answered while the scan is still running, and the unchanged rescan posts nothing', async () => {
    const alert = h.store.list<{ id: string; credentialId: string; message?: unknown; state: string }>('alerts')
      .map((r) => r.value).find((a) => a.message && a.state !== 'resolved')!;
    expect(alert).toBeDefined();
    const fresh = await h.freshAlert(alert.credentialId);
    const cardId = h.cardActivityId(alert.credentialId);
    const posted = h.connector.lastSeq;

    // Every vault answers slowly: the scan is in flight for seconds.
    for (const vault of h.clouds.handles.keyVault.vaults.values()) vault.server.setLatency(400);
    let finished = false;
    const scan = h.scanner.runScan('command').finally(() => { finished = true; });
    try {
      const answer = await h.click('details', { alertId: fresh.id, nonce: fresh.nonce }, cardId, ALEX);
      expect(answer).toBeDefined();
      expect(finished).toBe(false);
    } finally {
      for (const vault of h.clouds.handles.keyVault.vaults.values()) vault.server.setLatency(0);
    }
    const result = await scan;
    expect(result.changes).toEqual({ added: [], removed: [], changed: [] });
    await h.alerts.drain();
    // The details went to the card's thread; the rescan itself sent no new card or digest.
    const after = h.connector.activities.filter((a) => a.seq > posted && !a.threadRootId && a.op === 'post');
    expect(after).toEqual([]);
  }, 60_000);
});
