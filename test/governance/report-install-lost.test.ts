import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE_MS } from '../../src/clock.js';
import { installationUpdateActivity } from '../helpers/bot.js';
import { ALEX, allText, startWorkflowHarness, SUPPORT_CHANNEL, type WorkflowHarness } from '../workflows/harness.js';

/**
 * The first governance report rides on the install reply. When Teams loses that reply, the report must not count as
 * posted: a later scan posts the first report (not a week later, with a baseline nobody saw).
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

const reports = () => h.connector.postsIn(SUPPORT_CHANNEL.id).filter((a) => allText((a.activity as { attachments?: unknown[] })?.attachments).includes('Governance report'));

describe('a first governance report whose install reply Teams did not take', () => {
  it('is not recorded as posted, and the first scan after the claim lapses posts it', async () => {
    h.connector.injectFault({ kind: 'conversation-not-found', conversationId: SUPPORT_CHANNEL.id, op: 'post', times: 10 });
    const activity = installationUpdateActivity(h.connector.serviceUrl, 'add', { kind: 'channel', conversationId: SUPPORT_CHANNEL.id, user: ALEX });
    await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
    h.connector.clearFaults();
    expect(reports()).toHaveLength(0);
    expect(h.store.listAudit().filter((r) => r.action === 'governance.report.posted')).toHaveLength(0);

    // The install's claim is held for 10 minutes (another replica may be posting); then the next scan posts it.
    h.clock.advance(11 * MINUTE_MS);
    await h.scanAndDeliver();
    const posted = reports();
    expect(posted).toHaveLength(1);
    expect(allText((posted[0]!.activity as { attachments?: unknown[] }).attachments)).toContain('the first for this channel');
    expect(h.store.listAudit().filter((r) => r.action === 'governance.report.posted').map((r) => r.details?.via)).toEqual(['schedule']);
  });
});
