import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/** Plan first: Details on a rotatable card shows the exact operations an approval would run. */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('Details on an SP-owned PAT card', () => {
  it('posts the facts and the rotation plan in the card thread, and changes nothing', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    const tokensBefore = h.clouds.handles.databricks.workspace('ws-prod').tokens({ includeRevoked: true }).length;

    await h.click('details', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const deadline = Date.now() + 10_000;
    let thread = h.thread(cardId);
    while (thread.length < 2 && Date.now() < deadline) {
      await h.alerts.tick();
      await new Promise((r) => setTimeout(r, 100));
      thread = h.thread(cardId);
    }
    const text = allText(thread.map((a) => a.attachments));
    expect(text).toMatch(/on-behalf-of/i);
    expect(text).toContain('adb-prod-etl-token');
    expect(text).toMatch(/revoke/i);
    expect(text).toMatch(/Plan hash [0-9a-f]{6,}/);
    expect(h.clouds.handles.databricks.workspace('ws-prod').tokens({ includeRevoked: true }).length).toBe(tokensBefore);
    expect(text).not.toContain(seeded.tokenValue);
  });
});
