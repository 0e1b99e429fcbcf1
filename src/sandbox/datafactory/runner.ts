import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { ExpressionError, resolveValue, type ExpressionScope } from './expressions.js';
import type { FactoryRecord } from './state.js';

/**
 * Runs a pipeline the way Data Factory would, for the activity types the sandbox pipelines use: WebActivity (with
 * managed-identity auth, 202 + Location polling unless turnOffAsync), SetVariable, Until, IfCondition, Fail, Wait and
 * DatabricksNotebook (its linked service's Key Vault access token read at run time, then Jobs API runs/submit).
 * Activities follow dependsOn conditions (Succeeded / Failed / Skipped / Completed).
 */

export type ActivityStatus = 'Succeeded' | 'Failed' | 'Skipped';

export interface ActivityRun {
  activityRunId: string;
  activityName: string;
  activityType: string;
  status: ActivityStatus;
  activityRunStart: string;
  activityRunEnd: string;
  /** Kept out when the activity's policy says secureOutput. */
  output: unknown;
  error: { errorCode: string; message: string; failureType: string; target: string } | Record<string, never>;
}

export interface PipelineRun {
  runId: string;
  pipelineName: string;
  factory: string;
  parameters: Record<string, unknown>;
  status: 'Queued' | 'InProgress' | 'Succeeded' | 'Failed';
  message: string;
  runStart: number;
  runEnd?: number;
  activities: ActivityRun[];
  done: Promise<void>;
}

export interface RunnerDeps {
  clock: Clock;
  /** A token for the factory's managed identity (the Entra emulator's issueManagedIdentityToken). */
  identityToken(principalId: string, resource: string): string;
  /** Real milliseconds one Wait-activity second or one Retry-After second takes in the sandbox (default 20). */
  msPerSecond?: number;
}

type Activity = Record<string, unknown> & { name: string; type: string; dependsOn?: Array<{ activity: string; dependencyConditions: string[] }>; typeProperties?: Record<string, unknown>; policy?: { secureOutput?: boolean } };

class ActivityFailure extends Error {
  constructor(readonly errorCode: string, message: string) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEY_VAULT_RESOURCE = 'https://vault.azure.net';

export function startPipelineRun(deps: RunnerDeps, factory: FactoryRecord, pipelineName: string, definition: Record<string, unknown>, given: Record<string, unknown>): PipelineRun {
  const declared = (definition.parameters ?? {}) as Record<string, { defaultValue?: unknown }>;
  const parameters: Record<string, unknown> = Object.fromEntries(Object.entries(declared).map(([k, v]) => [k, v.defaultValue]));
  Object.assign(parameters, given);
  const run: PipelineRun = {
    runId: randomUUID(), pipelineName, factory: factory.name, parameters, status: 'Queued', message: '', runStart: deps.clock.now(), activities: [], done: Promise.resolve(),
  };
  const variables = new Map<string, unknown>(Object.entries((definition.variables ?? {}) as Record<string, { defaultValue?: unknown }>).map(([k, v]) => [k, v.defaultValue ?? null]));
  const outputs = new Map<string, { output: unknown; status: ActivityStatus; error?: unknown }>();
  const scope = (linkedService?: Record<string, unknown>): ExpressionScope => ({
    pipeline: { parameters, RunId: run.runId, Pipeline: pipelineName, DataFactory: factory.name, TriggerType: 'Manual', TriggerTime: new Date(run.runStart).toISOString() },
    activity: (name) => {
      const o = outputs.get(name);
      if (!o) throw new ExpressionError(`activity '${name}' has not run`);
      return { output: o.output, status: o.status, error: o.error ?? null };
    },
    variables: (name) => {
      if (!variables.has(name)) throw new ExpressionError(`the variable '${name}' is not declared`);
      return variables.get(name);
    },
    linkedService,
    now: () => deps.clock.now(),
  });
  const msPerSecond = deps.msPerSecond ?? 20;

  async function web(a: Activity): Promise<unknown> {
    const tp = resolveValue(a.typeProperties ?? {}, scope()) as Record<string, unknown>;
    const auth = tp.authentication as { type?: string; resource?: string } | undefined;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(tp.headers as Record<string, string> | undefined) };
    if (auth?.type === 'MSI') headers.authorization = `Bearer ${deps.identityToken(factory.principalId, String(auth.resource ?? ''))}`;
    const method = String(tp.method ?? 'GET').toUpperCase();
    let res = await fetch(String(tp.url), { method, headers, ...(method === 'GET' ? {} : { body: typeof tp.body === 'string' ? tp.body : JSON.stringify(tp.body ?? {}) }) });
    for (let polls = 0; res.status === 202 && res.headers.get('location') && tp.turnOffAsync !== true && polls < 1000; polls++) {
      await sleep(Number(res.headers.get('retry-after') ?? 1) * msPerSecond);
      res = await fetch(res.headers.get('location')!, { headers });
    }
    const text = await res.text();
    if (res.status >= 400) throw new ActivityFailure(String(res.status), `${method} ${String(tp.url).replace(/\?.*$/, '')} failed with ${res.status}: ${text.slice(0, 500)}`);
    let body: unknown;
    try {
      body = JSON.parse(text || '{}');
    } catch {
      body = undefined;
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ActivityFailure('2108', 'Response Content is not a valid JObject.');
    return body;
  }

  async function keyVaultSecret(ref: Record<string, unknown>, ls: Record<string, unknown>): Promise<string> {
    const storeName = String((ref.store as { referenceName?: string } | undefined)?.referenceName ?? '');
    const store = factory.children.linkedservices.get(storeName);
    const baseUrl = String((store?.typeProperties as { baseUrl?: string } | undefined)?.baseUrl ?? '');
    if (!baseUrl) throw new ActivityFailure('2103', `the Key Vault linked service ${storeName} was not found`);
    const name = String(resolveValue(ref.secretName, scope(ls)));
    const res = await fetch(`${baseUrl.replace(/\/?$/, '/')}secrets/${encodeURIComponent(name)}?api-version=7.4`, {
      headers: { authorization: `Bearer ${deps.identityToken(factory.principalId, KEY_VAULT_RESOURCE)}` },
    });
    if (!res.ok) throw new ActivityFailure('2103', `Failed to get the secret ${name} from Azure Key Vault ${storeName}: ${res.status} ${(await res.text()).slice(0, 200)}`);
    return String(((await res.json()) as { value?: unknown }).value ?? '');
  }

  async function notebook(a: Activity): Promise<unknown> {
    const ref = (a.linkedServiceName ?? {}) as { referenceName?: string; parameters?: Record<string, unknown> };
    const def = factory.children.linkedservices.get(String(ref.referenceName));
    if (!def) throw new ActivityFailure('2103', `the linked service ${String(ref.referenceName)} was not found`);
    const lsParams = resolveValue(ref.parameters ?? {}, scope()) as Record<string, unknown>;
    const raw = (def.typeProperties ?? {}) as Record<string, unknown>;
    const { accessToken, ...rest } = raw;
    const ls = resolveValue(rest, scope(lsParams)) as Record<string, unknown>;
    const token = accessToken && typeof accessToken === 'object' && (accessToken as { type?: string }).type === 'AzureKeyVaultSecret'
      ? await keyVaultSecret(accessToken as Record<string, unknown>, lsParams)
      : String(resolveValue(accessToken, scope(lsParams)) ?? '');
    const tp = resolveValue(a.typeProperties ?? {}, scope()) as { notebookPath?: string; baseParameters?: Record<string, string> };
    const domain = String(ls.domain ?? '').replace(/\/+$/, '');
    const cluster = { spark_version: ls.newClusterVersion ?? '15.4.x-scala2.12', num_workers: Number(ls.newClusterNumOfWorker ?? 1), ...(ls.instancePoolId ? { instance_pool_id: ls.instancePoolId } : {}) };
    const submit = await fetch(`${domain}/api/2.1/jobs/runs/submit`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ run_name: `ADF_${factory.name}_${pipelineName}_${a.name}_${run.runId}`, tasks: [{ task_key: 'notebook', notebook_task: { notebook_path: tp.notebookPath, base_parameters: tp.baseParameters ?? {} }, new_cluster: cluster }] }),
    });
    const text = await submit.text();
    if (!submit.ok) throw new ActivityFailure('3200', `Databricks refused the run (${submit.status}): ${text.slice(0, 300)}`);
    const runId = /"run_id"\s*:\s*(\d+)/.exec(text)?.[1] ?? '';
    const got = await fetch(`${domain}/api/2.1/jobs/runs/get?run_id=${runId}`, { headers: { authorization: `Bearer ${token}` } });
    const state = got.ok ? ((await got.json()) as { state?: { result_state?: string }; run_page_url?: string }) : {};
    if (state.state?.result_state !== 'SUCCESS') throw new ActivityFailure('3204', `the notebook run ${runId} did not succeed`);
    return { runId, runPageUrl: state.run_page_url, instancePoolId: cluster.instance_pool_id ?? null };
  }

  async function execute(a: Activity): Promise<unknown> {
    const tp = a.typeProperties ?? {};
    switch (a.type) {
      case 'WebActivity': return web(a);
      case 'DatabricksNotebook': return notebook(a);
      case 'SetVariable':
        variables.set(String(tp.variableName), resolveValue(tp.value, scope()));
        return { name: tp.variableName, value: variables.get(String(tp.variableName)) };
      case 'Wait':
        await sleep(Number(resolveValue(tp.waitTimeInSeconds, scope()) ?? 1) * msPerSecond);
        return {};
      case 'Fail':
        throw new ActivityFailure(String(resolveValue(tp.errorCode, scope()) ?? 'Fail'), String(resolveValue(tp.message, scope())));
      case 'IfCondition': {
        const yes = Boolean(resolveValue(tp.expression, scope()));
        if (!(await runGraph((yes ? tp.ifTrueActivities : tp.ifFalseActivities) as Activity[] | undefined ?? []))) {
          throw new ActivityFailure('2012', 'Activity failed because an inner activity failed');
        }
        return { ifTrue: yes };
      }
      case 'Until': {
        for (let i = 0; i < 2000; i++) {
          await runGraph((tp.activities as Activity[] | undefined) ?? []);
          if (resolveValue(tp.expression, scope())) return { iterations: i + 1 };
        }
        throw new ActivityFailure('2010', 'Until timed out (the emulator stops after 2000 passes)');
      }
      default: throw new ActivityFailure('2001', `the emulator cannot run activities of type ${a.type}`);
    }
  }

  /** Runs a container's activities; false when one of them failed. */
  async function runGraph(activities: Activity[]): Promise<boolean> {
    const pending = [...activities];
    const local = new Map<string, ActivityStatus>();
    while (pending.length) {
      const next = pending.findIndex((a) => (a.dependsOn ?? []).every((d) => local.has(d.activity)));
      if (next < 0) throw new ActivityFailure('2002', `dependsOn names activities that are not in the same container: ${pending.map((a) => a.name).join(', ')}`);
      const a = pending.splice(next, 1)[0]!;
      const met = (a.dependsOn ?? []).every((d) => {
        const s = local.get(d.activity)!;
        return d.dependencyConditions.some((c) => c === s || (c === 'Completed' && s !== 'Skipped'));
      });
      const start = new Date(deps.clock.now()).toISOString();
      let status: ActivityStatus = 'Skipped';
      let output: unknown = {};
      let error: ActivityRun['error'] = {};
      if (met) {
        try {
          output = await execute(a);
          status = 'Succeeded';
        } catch (err) {
          status = 'Failed';
          const code = err instanceof ActivityFailure ? err.errorCode : '2011';
          error = { errorCode: code, message: (err as Error).message, failureType: 'UserError', target: a.name };
        }
      }
      local.set(a.name, status);
      outputs.set(a.name, { output, status, error });
      run.activities.push({
        activityRunId: randomUUID(), activityName: a.name, activityType: a.type, status, activityRunStart: start, activityRunEnd: new Date(deps.clock.now()).toISOString(),
        output: a.policy?.secureOutput ? { secureOutput: true } : output, error,
      });
    }
    return ![...local.values()].includes('Failed');
  }

  run.done = (async () => {
    run.status = 'InProgress';
    try {
      await runGraph((definition.activities as Activity[] | undefined) ?? []);
      const failed = run.activities.filter((x) => x.status === 'Failed');
      run.status = failed.length ? 'Failed' : 'Succeeded';
      run.message = failed.map((f) => `Operation on target ${f.activityName} failed: ${(f.error as { message?: string }).message ?? ''}`).join('\n');
    } catch (err) {
      run.status = 'Failed';
      run.message = (err as Error).message;
    }
    run.runEnd = deps.clock.now();
  })();
  return run;
}
