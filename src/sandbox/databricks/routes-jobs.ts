import type { EmulatorResponse } from '../emulator.js';
import type { WorkspaceModel } from './model.js';
import { apiError, ok } from './responses.js';
import type { RouteContext } from './routes-tokens.js';
import { readBody } from './routes-tokens.js';

/**
 * Jobs API 2.1, one-time runs only (what ADF's Databricks Notebook activity calls): runs/submit and runs/get. A run
 * "succeeds" at once when its notebook task names a path and its new cluster a live instance pool.
 */

export interface SubmittedRun {
  runId: bigint;
  runName: string;
  creator: string;
  notebookPath: string;
  instancePoolId?: string;
  submittedAt: number;
}

const runsByWorkspace = new WeakMap<WorkspaceModel, SubmittedRun[]>();
let nextRunId = 700_000_000_000_000n;

export function submittedRuns(ws: WorkspaceModel): SubmittedRun[] {
  let runs = runsByWorkspace.get(ws);
  if (!runs) runsByWorkspace.set(ws, (runs = []));
  return runs;
}

function runJson(ws: WorkspaceModel, r: SubmittedRun): Record<string, unknown> {
  return {
    run_id: r.runId, run_name: r.runName, creator_user_name: r.creator, start_time: r.submittedAt, end_time: r.submittedAt,
    state: { life_cycle_state: 'TERMINATED', result_state: 'SUCCESS', state_message: '' },
    tasks: [{ task_key: 'notebook', notebook_task: { notebook_path: r.notebookPath }, new_cluster: r.instancePoolId ? { instance_pool_id: r.instancePoolId } : {} }],
    run_page_url: `https://${ws.name}.azuredatabricks.net/#job/runs/${r.runId}`,
  };
}

export function routeJobs(ctx: RouteContext, now: () => number): EmulatorResponse | undefined {
  const { ws, req, caller, path } = ctx;
  if (path === '/api/2.1/jobs/runs/get' && req.method === 'GET') {
    const id = req.url.searchParams.get('run_id') ?? '';
    const run = submittedRuns(ws).find((r) => r.runId.toString() === id);
    return run ? ok(runJson(ws, run)) : apiError(404, 'RESOURCE_DOES_NOT_EXIST', `Run ${id} does not exist.`);
  }
  if (path !== '/api/2.1/jobs/runs/submit' || req.method !== 'POST') return undefined;
  const parsed = readBody(req);
  if (parsed.error) return parsed.error;
  const tasks = Array.isArray(parsed.body.tasks) ? parsed.body.tasks as Array<Record<string, unknown>> : [];
  const task = tasks[0];
  const notebook = task?.notebook_task as { notebook_path?: unknown } | undefined;
  if (!task || typeof notebook?.notebook_path !== 'string') return apiError(400, 'INVALID_PARAMETER_VALUE', 'Missing required field: tasks[0].notebook_task.notebook_path');
  const cluster = (task.new_cluster ?? {}) as { instance_pool_id?: unknown };
  const poolId = typeof cluster.instance_pool_id === 'string' ? cluster.instance_pool_id : undefined;
  if (poolId !== undefined && !ws.livePool(poolId)) return apiError(400, 'INVALID_PARAMETER_VALUE', `Instance pool ${poolId} does not exist or was deleted.`);
  const run: SubmittedRun = {
    runId: nextRunId++, runName: typeof parsed.body.run_name === 'string' ? parsed.body.run_name : 'Untitled', creator: caller.principal.userName,
    notebookPath: notebook.notebook_path, ...(poolId ? { instancePoolId: poolId } : {}), submittedAt: now(),
  };
  submittedRuns(ws).push(run);
  return ok({ run_id: run.runId });
}
