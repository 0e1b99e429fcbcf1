import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineGrant } from '../../src/pipelines/grants.js';
import { submittedRuns } from '../../src/sandbox/databricks/routes-jobs.js';
import { ADF_API_VERSION } from '../../src/sandbox/datafactory/index.js';
import { JIT_FACTORY, JIT_PIPELINE } from '../../src/sandbox/datafactory/jit-pipeline.js';
import { SANDBOX_RESOURCE_GROUP, SANDBOX_SUBSCRIPTION_ID } from '../../src/sandbox/datafactory/seed.js';
import { allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Must show, end to end: the Data Factory emulator runs docs/adf/keywarden-jit-pipeline.json (createRun) — the Web
 * activity asks Keywarden with the factory's managed-identity token, the Until loop polls, the notebook activity reads the
 * token through its Key Vault linked service and runs on the JIT pool, and the final activity releases; afterwards the
 * token is revoked, the pool deleted, the secrets disabled, and the support channel has the grant's thread.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
}, 60_000);
afterAll(async () => h?.close());

const factoryPath = `/subscriptions/${SANDBOX_SUBSCRIPTION_ID}/resourceGroups/${SANDBOX_RESOURCE_GROUP}/providers/Microsoft.DataFactory/factories/${JIT_FACTORY}`;

async function arm(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = h.clouds.handles.entra.issueToken(h.clouds.seeds.entra.keywarden.clientId, 'https://management.azure.com/');
  const res = await fetch(`${h.clouds.urls.arm}${factoryPath}${path}?api-version=${ADF_API_VERSION}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function runToEnd(parameters: Record<string, unknown>): Promise<{ runId: string; run: Record<string, unknown>; activities: Array<Record<string, unknown>> }> {
  const created = await arm('POST', `/pipelines/${JIT_PIPELINE}/createRun`, parameters);
  expect(created.status).toBe(200);
  const runId = String(created.body.runId);
  let run: Record<string, unknown> = {};
  for (let i = 0; i < 600; i++) {
    run = (await arm('GET', `/pipelineruns/${runId}`)).body;
    if (run.status === 'Succeeded' || run.status === 'Failed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const activities = (await arm('POST', `/pipelineruns/${runId}/queryActivityruns`, {})).body.value as Array<Record<string, unknown>>;
  return { runId, run, activities };
}

describe('the emulated Data Factory pipeline', () => {
  it('mints, uses and releases a JIT PAT + pool', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const { runId, run, activities } = await runToEnd({
      keywardenUrl: h.botUrl, workspaceUrl: h.clouds.urls.workspaces['ws-prod'], vaultUrl: `${h.clouds.urls.vaults['kv-prod']}/`, durationMinutes: 60,
    });
    expect(run.message).toBe('');
    expect(run).toMatchObject({ status: 'Succeeded', pipelineName: JIT_PIPELINE, runId });
    const byName = Object.fromEntries(activities.map((a) => [a.activityName, a]));
    for (const name of ['Request JIT access', 'Wait until granted', 'Granted?', 'Read pool id', 'Run notebook', 'Release JIT access']) {
      expect(byName[name]?.status, name).toBe('Succeeded');
    }
    expect((byName['Release JIT access']!.output as { status: string }).status).toBe('released');

    // The notebook ran with the JIT token on the JIT pool.
    const grant = h.store.list<PipelineGrant>('approvals', { prefix: 'pipeline:' }).map((r) => r.value).find((g) => g.request?.pipelineRunId === runId)!;
    expect(grant.request).toMatchObject({ tokenSecretName: `adf-jit-${runId}-token`, poolSecretName: `adf-jit-${runId}-pool` });
    const job = h.jobs().find((j) => j.id === grant.jobId)!;
    const runs = submittedRuns(ws.model);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ notebookPath: '/Shared/etl/backfill', instancePoolId: job.facts.poolId });

    // Afterwards: token revoked, pool deleted, secrets disabled.
    expect(job.state).toBe('done');
    expect(ws.tokens().filter((t) => t.tokenId === job.facts.tokenId)).toHaveLength(0);
    expect(ws.pools().filter((p) => p.instance_pool_id === job.facts.poolId)).toHaveLength(0);
    expect(kv.versions(`adf-jit-${runId}-token`).every((v) => !v.enabled)).toBe(true);
    expect(kv.versions(`adf-jit-${runId}-pool`).every((v) => !v.enabled)).toBe(true);

    // The support channel has the grant's thread: the card, ready, and the end.
    const root = grant.message!.activityId!;
    expect(allText(h.connector.activities.find((a) => a.activityId === root)!.attachments)).toContain(`run ${runId}`);
    await h.connector.waitFor((a) => a.threadRootId === root && /released early by adf-analytics/.test(a.text ?? ''));
    expect(h.connector.repliesTo(root).some((a) => /JIT access ready/.test(a.text ?? ''))).toBe(true);
    expect(allText(h.connector.activities.map((a) => a.activity))).not.toMatch(/dapi[0-9a-f]{32}/);
  });

  it('fails the run with the reason when Keywarden refuses, and creates nothing', async () => {
    const before = h.jobs().length;
    const { run, activities } = await runToEnd({
      keywardenUrl: h.botUrl, workspaceUrl: h.clouds.urls.workspaces['ws-prod'], vaultUrl: `${h.clouds.urls.vaults['kv-prod']}/`, vault: 'kv-dev',
    });
    expect(run.status).toBe('Failed');
    expect(String(run.message)).toMatch(/Request JIT access failed: .*403.*secret_not_allowed/);
    expect(activities.find((a) => a.activityName === 'Run notebook')!.status).toBe('Skipped');
    expect(h.jobs()).toHaveLength(before);
  });
});
