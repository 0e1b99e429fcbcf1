import type { EmulatorResponse } from '../emulator.js';
import type { InstancePool } from './model.js';
import { apiError, ok, poolJson } from './responses.js';
import type { RouteContext } from './routes-tokens.js';
import { readBody } from './routes-tokens.js';

/** Instance Pools API: create / get / list / edit / delete, with ACTIVE → DELETED states. */

const EDITABLE = ['min_idle_instances', 'max_capacity', 'idle_instance_autotermination_minutes', 'custom_tags'] as const;
const missingPool = (id: string) => apiError(404, 'RESOURCE_DOES_NOT_EXIST', `Can't find an instance pool with id: ${id}.`);

function intOrUndefined(v: unknown): number | undefined | 'bad' {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 'bad';
}

function tagsProblem(tags: unknown): string | undefined {
  if (tags === undefined) return undefined;
  if (!tags || typeof tags !== 'object' || Array.isArray(tags)) return 'custom_tags must be an object of string values.';
  const entries = Object.entries(tags);
  if (entries.length > 45) return 'custom_tags can hold at most 45 tags.';
  if (entries.some(([, v]) => typeof v !== 'string')) return 'custom_tags values must be strings.';
  return undefined;
}

export function routePools(ctx: RouteContext): EmulatorResponse | undefined {
  const { ws, req, caller, path } = ctx;
  if (!path.startsWith('/api/2.0/instance-pools/')) return undefined;
  const me = caller.principal;
  const mayManage = ws.isAdmin(me) || me.entitlements.includes('allow-instance-pool-create');
  const action = path.slice('/api/2.0/instance-pools/'.length);

  if (action === 'get' && req.method === 'GET') {
    const id = req.url.searchParams.get('instance_pool_id') ?? '';
    const pool = ws.livePool(id);
    return pool ? ok(poolJson(pool)) : missingPool(id);
  }
  if (action === 'list' && req.method === 'GET') {
    const pools = [...ws.pools.values()].filter((p) => p.state !== 'DELETED');
    return ok(pools.length ? { instance_pools: pools.map(poolJson) } : {});
  }
  if (req.method !== 'POST' || !['create', 'edit', 'delete'].includes(action)) return undefined;
  if (!mayManage) return apiError(403, 'PERMISSION_DENIED', `${me.userName} does not have permission to manage instance pools (needs workspace admin or allow-instance-pool-create).`);
  const parsed = readBody(req);
  if (parsed.error) return parsed.error;
  const body = parsed.body;

  if (action === 'delete') {
    const id = String(body.instance_pool_id ?? '');
    const pool = ws.livePool(id);
    if (!pool) return missingPool(id);
    pool.state = 'DELETED';
    pool.stats = { used_count: 0, idle_count: 0, pending_used_count: 0, pending_idle_count: 0 };
    return ok({});
  }

  for (const k of ['instance_pool_name', 'node_type_id'] as const) {
    if (typeof body[k] !== 'string' || !body[k]) return apiError(400, 'INVALID_PARAMETER_VALUE', `Missing required field: ${k}`);
  }
  const name = body.instance_pool_name as string;
  if (name.length > 100) return apiError(400, 'INVALID_PARAMETER_VALUE', 'instance_pool_name must be 1–100 characters.');
  const ints: Record<string, number | undefined> = {};
  for (const k of ['min_idle_instances', 'max_capacity', 'idle_instance_autotermination_minutes'] as const) {
    const v = intOrUndefined(body[k]);
    if (v === 'bad') return apiError(400, 'INVALID_PARAMETER_VALUE', `${k} must be a non-negative integer.`);
    ints[k] = v;
  }
  const tagProblem = tagsProblem(body.custom_tags);
  if (tagProblem) return apiError(400, 'INVALID_PARAMETER_VALUE', tagProblem);
  const nameTaken = (exceptId?: string) => [...ws.pools.values()].some((p) => p.state !== 'DELETED' && p.instance_pool_name === name && p.instance_pool_id !== exceptId);

  if (action === 'create') {
    if (nameTaken()) return apiError(400, 'INVALID_PARAMETER_VALUE', `Instance pool with name ${name} already exists.`);
    const versions = body.preloaded_spark_versions;
    if (versions !== undefined && (!Array.isArray(versions) || versions.length > 1)) {
      return apiError(400, 'INVALID_PARAMETER_VALUE', 'preloaded_spark_versions may contain at most one version.');
    }
    const id = ws.newPoolId();
    const pool: InstancePool = {
      instance_pool_id: id,
      instance_pool_name: name,
      node_type_id: body.node_type_id as string,
      min_idle_instances: ints.min_idle_instances ?? 0,
      max_capacity: ints.max_capacity,
      idle_instance_autotermination_minutes: ints.idle_instance_autotermination_minutes,
      custom_tags: { ...((body.custom_tags as Record<string, string>) ?? {}) },
      default_tags: { Vendor: 'Databricks', InstancePoolCreator: me.id.toString(), InstancePoolName: name, InstancePoolId: id },
      azure_attributes: body.azure_attributes as Record<string, unknown> | undefined,
      preloaded_spark_versions: versions as string[] | undefined,
      disk_spec: body.disk_spec as Record<string, unknown> | undefined,
      enable_elastic_disk: body.enable_elastic_disk === undefined ? true : Boolean(body.enable_elastic_disk),
      state: 'ACTIVE',
      stats: { used_count: 0, idle_count: ints.min_idle_instances ?? 0, pending_used_count: 0, pending_idle_count: 0 },
      status: {},
    };
    ws.pools.set(id, pool);
    return ok({ instance_pool_id: id });
  }

  // edit: id, name and node type are required; node type cannot change; limits and tags are replaced.
  const id = String(body.instance_pool_id ?? '');
  const pool = ws.livePool(id);
  if (!pool) return missingPool(id);
  if (body.node_type_id !== pool.node_type_id) return apiError(400, 'INVALID_PARAMETER_VALUE', `node_type_id cannot be changed (pool uses ${pool.node_type_id}).`);
  if (nameTaken(id)) return apiError(400, 'INVALID_PARAMETER_VALUE', `Instance pool with name ${name} already exists.`);
  pool.instance_pool_name = name;
  pool.default_tags.InstancePoolName = name;
  for (const k of EDITABLE) {
    if (k === 'custom_tags') pool.custom_tags = { ...((body.custom_tags as Record<string, string>) ?? {}) };
    else if (k === 'min_idle_instances') pool.min_idle_instances = ints[k] ?? 0;
    else pool[k] = ints[k];
  }
  return ok({});
}
