import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JitRequestRecord } from '../../src/approvals/types.js';
import type { PipelineGrant } from '../../src/pipelines/grants.js';
import { ALEX, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { callApi, factoryToken, jitBody, waitForStatus } from './fixture.js';

/**
 * Must show: an in-policy request runs under the caller's standing approval (card thread first), a retry creates nothing
 * new, release tears everything down at once; a request outside policy waits for an approver's click (or a denial).
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
}, 60_000);
afterAll(async () => h?.close());

const token = () => factoryToken(h);
const jitTokens = () => h.clouds.handles.databricks.workspace('ws-prod').tokens().filter((t) => /^keywarden-jit:/.test(t.comment));
const grant = (id: string) => h.store.get<PipelineGrant>('approvals', `pipeline:${id}`)!.value;

describe('pipeline JIT grants', () => {
  it('auto-approves within the standing approval, answers a retry with the same grant, and releases everything at once', async () => {
    const runId = '7d0c6f0e-1111-4a5b-9c9d-000000000001';
    const first = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId));
    expect(first.status).toBe(202);
    const id = String(first.body.id);
    expect(first.headers.get('location')).toBe(`${h.botUrl}/api/jit/${id}/wait`);
    expect(first.body).toMatchObject({ approval: { kind: 'standing', id: 'standing:pipeline-jit:adf-analytics' }, pipelineRunId: runId });

    const retry = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId));
    expect(retry.body).toMatchObject({ id, retried: true });
    const ready = await waitForStatus(h, id, 'ready', token);
    expect(ready.body).toMatchObject({ tokenSecretName: `adf-jit-${runId}-token`, poolSecretName: `adf-jit-${runId}-pool`, vault: 'kv-prod' });
    const again = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId));
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id, status: 'ready', retried: true });
    expect(h.jobs()).toHaveLength(1);
    expect(jitTokens()).toHaveLength(1);

    const differs = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId, { durationMinutes: 90 }));
    expect(differs.status).toBe(409);
    expect(differs.body).toMatchObject({ error: { code: 'run_already_granted' } });

    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const pool = h.clouds.handles.databricks.workspace('ws-prod').pools().find((p) => p.custom_tags['keywarden-request'] === id)!;
    expect(pool).toMatchObject({ min_idle_instances: 0, max_capacity: 2, idle_instance_autotermination_minutes: 10 });
    expect(kv.readStoredValue(`adf-jit-${runId}-pool`)).toBe(pool.instance_pool_id);
    expect(kv.readStoredValue(`adf-jit-${runId}-token`)).toMatch(/^dapi/);

    // The grant's thread in the support channel: who asked, which run, what was created, when it ends.
    const root = grant(id).message!.activityId!;
    const card = h.connector.activities.find((a) => a.activityId === root)!;
    expect(allText(card.attachments)).toContain(`Pipeline JIT grant ${id} for adf-analytics`);
    expect(allText(card.attachments)).toContain(runId);
    await h.connector.waitFor((a) => a.threadRootId === root && /JIT access ready/.test(a.text ?? ''));

    const released = await callApi(h, 'POST', `/api/jit/${id}/release`, token());
    expect(released.status).toBe(200);
    expect(released.body.status).toBe('released');
    expect(jitTokens()).toHaveLength(0);
    expect(h.clouds.handles.databricks.workspace('ws-prod').pools().filter((p) => p.custom_tags['keywarden-request'] === id)).toHaveLength(0);
    expect(kv.versions(`adf-jit-${runId}-token`).every((v) => !v.enabled)).toBe(true);
    expect(kv.versions(`adf-jit-${runId}-pool`).every((v) => !v.enabled)).toBe(true);
    await h.connector.waitFor((a) => a.threadRootId === root && /released early by adf-analytics/.test(a.text ?? ''));
    const releasedAgain = await callApi(h, 'POST', `/api/jit/${id}/release`, token());
    expect(releasedAgain.body.status).toBe('released');
    const noLeak = allText(h.connector.activities.map((a) => a.activity));
    expect(noLeak).not.toMatch(/dapi[0-9a-f]{32}/);
    expect(h.store.listAudit().some((e) => e.action === 'standing-approval.declared' && e.subject === 'standing:pipeline-jit:adf-analytics')).toBe(true);
  });

  it('puts a request outside the policy on a JIT request card and waits for an approver', async () => {
    const runId = '7d0c6f0e-1111-4a5b-9c9d-000000000002';
    const asked = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId, { durationMinutes: 300 }));
    expect(asked.status).toBe(202);
    const id = String(asked.body.id);
    expect(asked.body).toMatchObject({ status: 'pending', approval: { kind: 'approver' } });
    expect(String(asked.body.reason)).toMatch(/5 h is longer than the 4 h allowed/);
    const wait = await callApi(h, 'GET', `/api/jit/${id}/wait`, token());
    expect(wait.status).toBe(202);
    expect(wait.headers.get('retry-after')).toBe('10');
    expect(h.jobs().filter((j) => j.plan.facts.requestId === id)).toHaveLength(0);

    const request = h.store.get<JitRequestRecord>('approvals', `jitreq:${id}`)!.value;
    const cardId = request.message!.activityId!;
    const card = h.connector.activities.find((a) => a.activityId === cardId)!;
    expect(allText(card.attachments)).toContain('"verb":"jitApprove"');
    expect(allText(card.attachments)).toContain(`kv-prod/adf-jit-${runId}-token`);
    const approved = await h.click('jitApprove', { requestId: id, nonce: request.nonce }, cardId, MEGAN);
    expect(allText(approved.card)).toContain('JIT access in progress — approved by Megan Bowen');
    const ready = await waitForStatus(h, id, 'ready', token);
    expect(ready.body.tokenSecretName).toBe(`adf-jit-${runId}-token`);
    const done = await callApi(h, 'POST', `/api/jit/${id}/release`, token());
    expect(done.body.status).toBe('released');
  });

  it('reports a denial with who denied it', async () => {
    const runId = '7d0c6f0e-1111-4a5b-9c9d-000000000003';
    const asked = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId, { pool: { nodeType: 'Standard_E64s_v3', maxCapacity: 2 } }));
    const id = String(asked.body.id);
    expect(String(asked.body.reason)).toMatch(/node type Standard_E64s_v3/);
    const request = h.store.get<JitRequestRecord>('approvals', `jitreq:${id}`)!.value;
    await h.click('jitDeny', { requestId: id, nonce: request.nonce, justification: 'too big for a backfill' }, request.message!.activityId!, ALEX);
    const denied = await waitForStatus(h, id, 'denied', token);
    expect(denied.body.reason).toBe('too big for a backfill — denied by Alex Wilber in the support channel');
    const wait = await callApi(h, 'GET', `/api/jit/${id}/wait`, token());
    expect(wait.status).toBe(403);
    expect(wait.body).toMatchObject({ error: { code: 'denied' } });
    expect(jitTokens()).toHaveLength(0);
  });

  it('lets only the caller that asked see or release a grant', async () => {
    const other = h.clouds.handles.entra.issueToken(h.clouds.seeds.entra.apps['etl-ingest']!.appId, 'api://keywarden');
    const some = h.store.list<PipelineGrant>('approvals', { prefix: 'pipeline:' })[0]!.value;
    const res = await callApi(h, 'GET', `/api/jit/${some.requestId}`, other);
    expect(res.status).toBe(403);
    const unknown = await callApi(h, 'GET', '/api/jit/000000000000', token());
    expect(unknown.status).toBe(404);
  });
});
