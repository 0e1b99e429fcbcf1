/**
 * The body of POST /api/jit, checked field by field. The secret names are the caller's choice, so they are held to
 * Key Vault's naming rules, the caller's configured vaults and its name prefix: a pipeline can never name (and so
 * overwrite) anyone else's secret.
 */
import { cleanText } from '../approvals/rules.js';
import type { KeywardenConfig, PipelineCallerConfig } from '../config/schema.js';

export interface PipelineJitBody {
  workspace: string;
  vault: string;
  tokenSecretName: string;
  poolSecretName: string;
  nodeType: string;
  maxCapacity: number;
  idleAutoTerminationMinutes: number;
  hours: number;
  pipelineRunId: string;
  justification: string;
}

export type Parsed = { ok: true; value: PipelineJitBody } | { ok: false; status: 400 | 403; code: string; problems: string[] };

const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const RUN_ID = /^[0-9A-Za-z-]{1,64}$/;
const NODE_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function numberField(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+(?:\.\d+)?$/.test(v.trim())) return Number(v);
  return undefined;
}

export function parsePipelineJitBody(raw: unknown, caller: PipelineCallerConfig, config: KeywardenConfig): Parsed {
  if (!isObject(raw)) return { ok: false, status: 400, code: 'bad_request', problems: ['send a JSON object body (Content-Type: application/json)'] };
  const problems: string[] = [];
  const forbidden: string[] = [];
  const jit = config.workflows.jit;
  const pool = isObject(raw.pool) ? raw.pool : {};

  const workspace = typeof raw.workspace === 'string' ? raw.workspace : '';
  const workspaces = config.databricks.workspaces.map((w) => w.name);
  if (!workspaces.includes(workspace)) problems.push(`workspace: "${workspace.slice(0, 64)}" is not a configured workspace (one of: ${workspaces.join(', ')})`);

  const vault = typeof raw.vault === 'string' ? raw.vault : caller.vaults.length === 1 ? caller.vaults[0]! : '';
  if (!vault) problems.push(`vault: name the Key Vault for the secrets (one of: ${caller.vaults.join(', ')})`);
  else if (!caller.vaults.includes(vault) || !config.keyVault.vaults.some((v) => v.name === vault)) {
    forbidden.push(`vault: ${vault.slice(0, 64)} is not a vault this caller may write to (allowed: ${caller.vaults.join(', ')})`);
  }

  const names: string[] = [];
  for (const key of ['tokenSecretName', 'poolSecretName'] as const) {
    const name = typeof raw[key] === 'string' ? raw[key] : '';
    names.push(name);
    if (!SECRET_NAME.test(name)) problems.push(`${key}: "${name.slice(0, 64)}" is not a Key Vault secret name (1–127 letters, digits and "-")`);
    else if (!name.toLowerCase().startsWith(caller.secretPrefix.toLowerCase())) forbidden.push(`${key}: "${name}" does not start with this caller's prefix "${caller.secretPrefix}"`);
  }
  if (names[0] && names[0].toLowerCase() === names[1]?.toLowerCase()) problems.push('poolSecretName: must differ from tokenSecretName');

  const nodeType = typeof pool.nodeType === 'string' ? pool.nodeType : jit.defaultNodeType;
  if (!NODE_TYPE.test(nodeType)) problems.push(`pool.nodeType: "${nodeType.slice(0, 64)}" is not a node type (e.g. Standard_DS3_v2)`);
  const maxCapacity = numberField(pool.maxCapacity) ?? 1;
  if (!Number.isInteger(maxCapacity) || maxCapacity < 1 || maxCapacity > jit.maxCapacity) problems.push(`pool.maxCapacity: a whole number from 1 to ${jit.maxCapacity} (workflows.jit.maxCapacity)`);
  const minIdle = numberField(pool.minIdleInstances) ?? 0;
  if (minIdle !== 0) problems.push('pool.minIdleInstances: must be 0 (a JIT pool keeps no idle instances)');
  const idle = numberField(pool.idleAutoTerminationMinutes) ?? 10;
  if (!Number.isInteger(idle) || idle < 1 || idle > 120) problems.push('pool.idleAutoTerminationMinutes: a whole number from 1 to 120');

  const minutes = numberField(raw.durationMinutes);
  const hours = minutes !== undefined ? minutes / 60 : numberField(raw.hours) ?? NaN;
  if (!Number.isFinite(hours) || hours * 60 < 10 || hours > jit.maxHours) problems.push(`durationMinutes: from 10 to ${jit.maxHours * 60} (workflows.jit.maxHours)`);

  const pipelineRunId = typeof raw.pipelineRunId === 'string' ? raw.pipelineRunId : '';
  if (!RUN_ID.test(pipelineRunId)) problems.push('pipelineRunId: the pipeline run id (@pipeline().RunId), letters, digits and "-"');

  const justification = cleanText(raw.justification) ?? `Data Factory pipeline run ${pipelineRunId}`;
  if (problems.length) return { ok: false, status: 400, code: 'bad_request', problems };
  if (forbidden.length) return { ok: false, status: 403, code: 'secret_not_allowed', problems: forbidden };
  return {
    ok: true,
    value: {
      workspace, vault, tokenSecretName: names[0]!, poolSecretName: names[1]!, nodeType, maxCapacity,
      idleAutoTerminationMinutes: idle, hours: Math.round(hours * 1000) / 1000, pipelineRunId, justification,
    },
  };
}

/** Whether a retried request asks for the same thing (then it gets the same grant). */
export function sameRequest(a: PipelineJitBody, b: PipelineJitBody): boolean {
  const keys: Array<keyof PipelineJitBody> = ['workspace', 'vault', 'tokenSecretName', 'poolSecretName', 'nodeType', 'maxCapacity', 'idleAutoTerminationMinutes', 'hours'];
  return keys.every((k) => String(a[k]).toLowerCase() === String(b[k]).toLowerCase());
}
