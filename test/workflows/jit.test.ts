import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionOffer, JitRequestRecord } from '../../src/approvals/types.js';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/** Must show: JIT request → approval → PAT + pool + KV secrets → (restart) → teardown at TTL; nothing left behind. */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { workflows: { jit: { maxHours: 4, maxCapacity: 5, vault: 'kv-prod' } } } });
}, 60_000);
afterAll(async () => h?.close());

const JIT_TOKEN = /^keywarden-jit:/;

describe('/jit', () => {
  it('rejects bad input with the usage', async () => {
    const { replies } = await h.command('/jit ws-nowhere 2', ALEX);
    expect(replies[0]!.text).toMatch(/not a configured workspace.*Usage: \/jit/s);
    const tooLong = await h.command('/jit ws-prod 9', ALEX);
    expect(tooLong.replies[0]!.text).toMatch(/at most 4/);
  });

  it('creates a token, a pool and two Key Vault secrets on approval, extends on a new approval, and tears all down at TTL after a restart', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const { replies } = await h.command('/jit ws-prod 2 Standard_DS3_v2 3 -- backfill for INC-1234', ALEX);
    const requestCard = replies[0]!;
    const request = h.store.list<JitRequestRecord>('approvals', { prefix: 'jitreq:' })[0]!.value;
    expect(allText(requestCard.attachments)).toContain(`Just-in-time access request ${request.requestId}`);
    expect(allText(requestCard.attachments)).toContain('"verb":"jitApprove"');
    expect(ws.tokens().filter((t) => JIT_TOKEN.test(t.comment))).toHaveLength(0);

    const self = await h.click('jitApprove', { requestId: request.requestId, nonce: request.nonce }, requestCard.activityId, ALEX);
    expect(self.text).toMatch(/you requested this/);
    const lee = await h.click('jitApprove', { requestId: request.requestId, nonce: request.nonce }, requestCard.activityId, LEE);
    expect(lee.text).toMatch(/not an approver/);
    expect(h.jobs()).toHaveLength(0);

    const approved = await h.click('jitApprove', { requestId: request.requestId, nonce: request.nonce }, requestCard.activityId, MEGAN);
    expect(allText(approved.card)).toContain('JIT access in progress — approved by Megan Bowen');
    const job = await h.waitForJob((j) => j.kind === 'jit' && j.state === 'waiting' && typeof j.facts.readyAt === 'number');

    const tokens = ws.tokens().filter((t) => JIT_TOKEN.test(t.comment));
    expect(tokens).toHaveLength(1);
    const expiresAt = job.plan.parameters.expiresAt as number;
    expect(tokens[0]!.comment).toBe(`keywarden-jit:${request.requestId}:g0:exp=${expiresAt}`);
    const pools = ws.pools().filter((p) => p.custom_tags['keywarden-request'] === request.requestId);
    expect(pools).toHaveLength(1);
    expect(pools[0]).toMatchObject({ min_idle_instances: 0, max_capacity: 3, idle_instance_autotermination_minutes: 10, node_type_id: 'Standard_DS3_v2' });
    expect(pools[0]!.custom_tags['keywarden-expires']).toBe(new Date(expiresAt).toISOString());
    const tokenSecret = `jit-${request.requestId}-token`;
    const poolSecret = `jit-${request.requestId}-pool`;
    expect(kv.readStoredValue(poolSecret)).toBe(pools[0]!.instance_pool_id);
    const tokenValue = kv.readStoredValue(tokenSecret)!;
    expect(tokenValue).toMatch(/^dapi/);

    const ready = await h.connector.waitFor((a) => a.threadRootId === requestCard.activityId && /JIT access ready/.test(a.text ?? ''));
    expect(ready.text).toContain(`kv-prod/${tokenSecret}`);
    expect(ready.text).toContain(`kv-prod/${poolSecret}`);
    expect(allText(h.connector.activities.map((a) => a.activity))).not.toContain(tokenValue);

    // Extension: asked on the ready card, approved by someone else, within maxHours.
    const offer = h.store.get<ActionOffer>('approvals', `offer:${job.id}`)!.value;
    const tooMuch = await h.click('jitExtend', { jobId: job.id, nonce: offer.nonce, hours: 3 }, ready.activityId, ALEX);
    expect(tooMuch.text).toMatch(/longer than the 4 h maximum/);
    const ask = await h.click('jitExtend', { jobId: job.id, nonce: offer.nonce, hours: 1 }, ready.activityId, ALEX);
    expect(allText(ask.card)).toContain('Extension request: 1 h more');
    const pending = h.store.get<JitRequestRecord>('approvals', `jitreq:${request.requestId}`)!.value;
    const selfExtend = await h.click('jitApprove', { requestId: request.requestId, nonce: pending.nonce }, ready.activityId, ALEX);
    expect(selfExtend.text).toMatch(/you requested this/);
    const extended = await h.click('jitApprove', { requestId: request.requestId, nonce: pending.nonce }, ready.activityId, MEGAN);
    expect(extended.text).toMatch(/Extension approved by Megan Bowen/);
    const regenerated = await h.waitForJob((j) => j.id === job.id && j.state === 'waiting' && j.facts.generation === 1 && j.facts.previousTokenId === null);
    const newExpiry = regenerated.facts.expiresAt as number;
    expect(newExpiry).toBe(expiresAt + HOUR_MS);
    const live = ws.tokens().filter((t) => JIT_TOKEN.test(t.comment));
    expect(live).toHaveLength(1);
    expect(live[0]!.comment).toBe(`keywarden-jit:${request.requestId}:g1:exp=${newExpiry}`);
    expect(kv.readStoredValue(tokenSecret)).not.toBe(tokenValue);

    // A stray JIT token from a lost job: the sweeper removes it once past its TTL.
    const stray = ws.addToken({ ownerName: 'sp-etl', comment: `keywarden-jit:lost:g0:exp=${h.clock.now() - MINUTE_MS}`, expiryTime: Date.now() + HOUR_MS });

    // Restart in between; then the clock reaches the TTL.
    await h.restart();
    h.clock.advance(3 * HOUR_MS + MINUTE_MS);
    const done = await h.waitForJob((j) => j.id === job.id && j.state === 'done', 30_000);
    expect(done.facts).toMatchObject({ poolsDeleted: 1 });

    // The sweeper runs on the engine's timer right after the restart; give it its pass.
    for (let i = 0; i < 200 && ws.tokens().some((t) => t.tokenId === stray.tokenId); i++) await new Promise((r) => setTimeout(r, 25));
    expect(ws.tokens().some((t) => t.tokenId === stray.tokenId)).toBe(false);
    expect(ws.tokens().filter((t) => JIT_TOKEN.test(t.comment))).toHaveLength(0);
    expect(ws.pools().filter((p) => p.custom_tags['keywarden-request'] === request.requestId)).toHaveLength(0);
    expect(kv.versions(tokenSecret).every((v) => !v.enabled)).toBe(true);
    expect(kv.versions(poolSecret).every((v) => !v.enabled)).toBe(true);
    await h.connector.waitFor((a) => a.threadRootId === requestCard.activityId && /^JIT request .* ended/.test(a.text ?? ''));
    expect(h.store.get<JitRequestRecord>('approvals', `jitreq:${request.requestId}`)!.value.state).toBe('ended');
    expect(h.store.verifyAudit().ok).toBe(true);
  }, 90_000);
});
