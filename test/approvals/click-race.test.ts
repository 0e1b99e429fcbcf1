import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Concurrent clicks: the losers of a race must not put a stale card (one offering Rotate again) over the winner's
 * "in progress" card — neither through their own answers nor through the alert outbox.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

const verbsIn = (value: unknown) => [...allText(value).matchAll(/"verb":"([^"]+)"/g)].map((m) => m[1]);

describe('three concurrent Rotate clicks', () => {
  it('leave the in-progress card as the last update of the card, never a stale card offering Rotate', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    const before = h.connector.lastSeq;
    // Databricks answers slowly, so the rotation is still running while the losing clicks arrive.
    h.clouds.handles.databricks.workspace('ws-prod').setLatency(1500);
    try {
      const users = [ALEX, MEGAN, ALEX];
      const answers = await Promise.all(users.map((u) => h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, u)));
      expect(answers.filter((a) => allText(a.card).includes('Rotation in progress — approved by'))).toHaveLength(1);
      // The slowest clicks of the race arrive after the winner changed the card (their nonce is now out of date).
      const late = await Promise.all([MEGAN, ALEX].map((u) => h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, u)));
      for (const answer of [...answers, ...late]) expect(verbsIn(answer.card)).not.toContain('rotate');
      // The alert outbox must not put the alert card (with Rotate) back over the in-progress card either.
      await h.alerts.tick();
      await h.alerts.delivery.idle();

      const updates = h.connector.since(before).filter((a) => a.op === 'update' && a.activityId === cardId);
      expect(updates.length).toBeGreaterThan(0);
      for (const u of updates) expect(verbsIn(u.attachments)).not.toContain('rotate');
      expect(allText(updates.at(-1)!.attachments)).toMatch(/Rotation (already )?in progress — approved by Alex Wilber|Rotation (already )?in progress — approved by Megan Bowen/);
      expect(h.jobs().filter((j) => j.subject === credentialId)).toHaveLength(1);
    } finally {
      h.clouds.handles.databricks.workspace('ws-prod').setLatency(0);
    }
  }, 60_000);
});
