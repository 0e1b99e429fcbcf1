import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import type { PipelineGrant } from '../../src/pipelines/grants.js';
import { JIT_FACTORY_PRINCIPAL_ID } from '../../src/sandbox/datafactory/jit-pipeline.js';
import { allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { callApi, factoryToken, jitBody, waitForStatus } from './fixture.js';

/**
 * Must show: a pipeline that never releases (it failed midway) still loses its token, pool and secrets at the TTL —
 * after a restart too — and the sweeper disables caller-named JIT secrets the journal lost track of.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
}, 60_000);
afterAll(async () => h?.close());

describe('pipeline grants without a release', () => {
  it('are torn down at their time to live, across a restart', async () => {
    const token = () => factoryToken(h);
    const runId = 'run-never-released';
    const asked = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId, { durationMinutes: 30 }));
    const id = String(asked.body.id);
    await waitForStatus(h, id, 'ready', token);
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    // A caller-named secret whose job record is gone: only its TTL tag says it is Keywarden's JIT secret.
    kv.seedSecret('adf-jit-orphan-token', { value: 'not-a-real-token', tags: { 'managed-by': 'keywarden', 'keywarden-request': 'lost', 'keywarden-expires': new Date(h.clock.now() + 10 * MINUTE_MS).toISOString() } });

    await h.restart();
    h.clock.advance(HOUR_MS);
    const expired = await waitForStatus(h, id, 'expired', token, 30_000);
    expect(expired.body).not.toHaveProperty('tokenSecretName');
    const grant = h.store.get<PipelineGrant>('approvals', `pipeline:${id}`)!.value;
    const job = h.jobs().find((j) => j.id === grant.jobId)!;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    expect(ws.tokens().filter((t) => t.tokenId === job.facts.tokenId)).toHaveLength(0);
    expect(ws.pools().filter((p) => p.instance_pool_id === job.facts.poolId)).toHaveLength(0);
    expect(kv.versions(`adf-jit-${runId}-token`).every((v) => !v.enabled)).toBe(true);
    for (let i = 0; i < 200 && kv.versions('adf-jit-orphan-token').some((v) => v.enabled); i++) await new Promise((r) => setTimeout(r, 25));
    expect(kv.versions('adf-jit-orphan-token').every((v) => !v.enabled)).toBe(true);
    const released = await callApi(h, 'POST', `/api/jit/${id}/release`, token());
    expect(released.body.status).toBe('expired');
  });
});

describe('a pipeline grant a crash interrupted', () => {
  it('is carried on at the next start: one card, one job, and the pipeline sees it ready', async () => {
    const token = () => factoryToken(h);
    const runId = 'run-interrupted';
    // What the process had journaled when it died: the run claimed, the grant recorded, nothing posted or started.
    const requestId = 'abcdef012345';
    const body = { workspace: 'ws-prod', vault: 'kv-prod', tokenSecretName: `adf-jit-${runId}-token`, poolSecretName: `adf-jit-${runId}-pool`, nodeType: 'Standard_DS3_v2', maxCapacity: 2, idleAutoTerminationMinutes: 10, hours: 1, pipelineRunId: runId, justification: 'interrupted run' };
    h.store.insert('approvals', `pipeline-run:${JIT_FACTORY_PRINCIPAL_ID}:${runId}`, { requestId });
    h.store.insert<PipelineGrant>('approvals', `pipeline:${requestId}`, {
      id: `pipeline:${requestId}`, requestId, caller: { objectId: JIT_FACTORY_PRINCIPAL_ID, name: 'adf-analytics' }, request: body,
      standingApprovalId: 'standing:pipeline-jit:adf-analytics', outside: [], createdAt: h.clock.now(),
    });
    const before = await callApi(h, 'GET', `/api/jit/${requestId}`, token());
    expect(before.body.status).toBe('creating');
    await h.restart();
    await waitForStatus(h, requestId, 'ready', token);
    const retried = await callApi(h, 'POST', '/api/jit', token(), jitBody(runId));
    expect(retried.body).toMatchObject({ id: requestId, retried: true });
    expect(h.jobs().filter((j) => j.plan.facts.requestId === requestId)).toHaveLength(1);
    expect(h.connector.activities.filter((a) => a.op === 'post' && allText(a.attachments).includes(`Pipeline JIT grant ${requestId}`))).toHaveLength(1);
    expect((await callApi(h, 'POST', `/api/jit/${requestId}/release`, token())).body.status).toBe('released');
  });
});
