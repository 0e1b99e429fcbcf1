import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JitRequestRecord } from '../../src/approvals/types.js';
import { JIT_USAGE } from '../../src/commands/jit.js';
import { messageActivity } from '../helpers/bot.js';
import { ALEX, MEGAN, SUPPORT_CHANNEL, allText, startWorkflowHarness, type User, type WorkflowHarness } from './harness.js';

/** Must show (issue 10, point 14): /jit from a personal chat lands in the support channel; /help shows all of /jit. */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { workflows: { jit: { maxHours: 4, maxCapacity: 5, vault: 'kv-prod' } } } });
}, 60_000);
afterAll(async () => h?.close());

/** A message in the user's personal chat with the bot, as Teams sends it. */
async function personal(text: string, user: User) {
  const activity = messageActivity(h.connector.serviceUrl, text, { kind: 'personal', user });
  (activity.conversation as Record<string, unknown>).tenantId = h.clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: h.clouds.tenantId };
  const before = h.connector.lastSeq;
  const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  const reply = await h.connector.waitFor((a) => a.seq > before && a.replyToId === activity.id, 10_000);
  return { status: res.status, reply, conversationId: String((activity.conversation as { id: string }).id), before };
}

type Node = Record<string, unknown>;
function walk(node: unknown, out: Node[] = []): Node[] {
  if (Array.isArray(node)) node.forEach((n) => walk(n, out));
  else if (node && typeof node === 'object') {
    out.push(node as Node);
    Object.values(node).forEach((v) => walk(v, out));
  }
  return out;
}

describe('/jit from a personal chat', () => {
  it('posts the request card to the support channel, where another approver approves it', async () => {
    const asked = await personal('/jit ws-prod 2 Standard_DS3_v2 3 -- backfill for INC-4321', ALEX);
    expect(asked.status).toBe(200);
    const request = h.store.list<JitRequestRecord>('approvals', { prefix: 'jitreq:' })[0]!.value;
    expect(asked.reply.conversationId).toBe(asked.conversationId);
    expect(asked.reply.text).toContain(`Your JIT request ${request.requestId} (ws-prod, 2 h) is in the support channel "support"`);
    expect(allText(asked.reply.attachments)).not.toContain('jitApprove');

    const posted = h.connector.activities.filter((a) => a.seq > asked.before && a.conversationId === SUPPORT_CHANNEL.id && allText(a.attachments).includes('"verb":"jitApprove"'));
    expect(posted).toHaveLength(1);
    const card = posted[0]!;
    expect(allText(card.attachments)).toContain(`Just-in-time access request ${request.requestId}`);
    expect(request.conversation.conversationId).toBe(SUPPORT_CHANNEL.id);

    const approved = await h.click('jitApprove', { requestId: request.requestId, nonce: request.nonce }, card.activityId!, MEGAN);
    expect(allText(approved.card)).toContain('JIT access in progress — approved by Megan Bowen');
    await h.waitForJob((j) => j.kind === 'jit' && j.state === 'waiting' && typeof j.facts.readyAt === 'number');
    const ready = await h.connector.waitFor((a) => a.threadRootId === card.activityId && /JIT access ready/.test(a.text ?? ''));
    expect(ready.conversationId.startsWith(SUPPORT_CHANNEL.id)).toBe(true);
  }, 60_000);
});

describe('/help', () => {
  it('shows the whole /jit syntax, literally, with every argument, default and limit', async () => {
    const { replies } = await h.command('/help jit', ALEX);
    const nodes = walk(replies[0]!.attachments);
    const runs = nodes.filter((n) => n.type === 'TextRun').map((n) => String(n.text));
    // A TextRun is not markdown: "<workspace> <hours>" cannot be eaten as HTML tags the way a TextBlock's text is.
    expect(runs).toContain(JIT_USAGE);
    expect(nodes.filter((n) => n.type === 'TextBlock').some((n) => String(n.text).includes('<workspace>'))).toBe(false);
    const details = runs.find((r) => r.startsWith('<workspace>:'))!;
    for (const part of ['ws-prod', 'at most 4', 'default Standard_DS3_v2', '1 to 5', '[-- justification]', 'support channel']) expect(details).toContain(part);
    expect(allText(replies[0]!.attachments)).toContain('Example: /jit ws-prod 4 Standard_DS3_v2 4 -- backfill for INC-1234');
  });
});
