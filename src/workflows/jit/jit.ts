/**
 * Just-in-time Databricks access: an OBO PAT whose Databricks lifetime is the TTL plus an instance pool (min idle 0,
 * capped, idle auto-termination, tagged with the request id and expiry), both published in Key Vault secrets named
 * after the request. The thread only ever gets the secret names. Teardown at TTL is the journaled finish step, so it
 * survives restarts; an extension (after a new approval) re-runs create → set → test with a new token generation.
 */
import { HOUR_MS, MINUTE_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import { KV_TAGS, MANAGED_BY_VALUE } from '../../domain/credential.js';
import { WorkflowError, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { findVersionTagged, listVersionsOrEmpty, tail } from '../engine/keyvault-steps.js';
import { filledInLater, formatTime, type ActionPlan } from '../../domain/plan.js';
import type { WorkflowDeps, WorkflowProviders } from '../engine/providers.js';
import { FOUR_STEPS, discardCreated, dispatchSteps, num, str } from '../rotate/rotation-common.js';
import type { JobFacts, JobRecord } from '../../domain/job.js';

export const JIT_TAG_REQUEST = 'keywarden-request';
export const JIT_TAG_EXPIRES = 'keywarden-expires';
export const JIT_POOL_AUTOTERMINATION_MINUTES = 10;

export const jitTokenSecret = (requestId: string) => `jit-${requestId}-token`;
export const jitPoolSecret = (requestId: string) => `jit-${requestId}-pool`;
export const jitPoolName = (requestId: string) => `keywarden-jit-${requestId}`;
/** Comment on every JIT token; the sweeper parses the expiry out of it. */
export const jitComment = (requestId: string, generation: number, expiresAt: number) => `keywarden-jit:${requestId}:g${generation}:exp=${expiresAt}`;
export const JIT_COMMENT_PATTERN = /keywarden-jit:([A-Za-z0-9_-]+):g(\d+):exp=(\d+)/;

export interface JitRequestInput {
  requestId: string;
  workspace: string;
  hours: number;
  nodeType: string;
  maxCapacity: number;
  /** Idle auto-termination of the pool (default JIT_POOL_AUTOTERMINATION_MINUTES). */
  idleMinutes?: number;
  /** Secret names the caller chose (a pipeline); default jit-<id>-token / jit-<id>-pool in workflows.jit.vault. */
  secrets?: { vault: string; tokenSecret: string; poolSecret: string };
  /** Who asked when it was not a person in chat: the pipeline, its run, and the standing approval it ran under. */
  pipeline?: { caller: string; callerObjectId: string; runId: string; standingApprovalId?: string };
}

export function jitVault(config: KeywardenConfig): string | undefined {
  return config.workflows.jit.vault ?? config.keyVault.vaults[0]?.name;
}

export function jitApplicationId(config: KeywardenConfig): string | undefined {
  return config.workflows.jit.applicationId ?? config.azure.credential.clientId;
}

export function planJit(input: JitRequestInput, options: { config: KeywardenConfig; expiresAt: number }): ActionPlan {
  const vault = input.secrets?.vault ?? jitVault(options.config) ?? '(no vault configured)';
  const app = jitApplicationId(options.config) ?? '(no service principal configured)';
  const tokenSecret = input.secrets?.tokenSecret ?? jitTokenSecret(input.requestId);
  const poolSecret = input.secrets?.poolSecret ?? jitPoolSecret(input.requestId);
  const p = input.pipeline;
  return {
    kind: 'jit',
    subject: `jit:${input.requestId}`,
    title: `Just-in-time access to ${input.workspace} for ${input.hours} h${p ? ` for pipeline ${p.caller} (run ${p.runId})` : ''}`,
    facts: {
      requestId: input.requestId, workspace: input.workspace, applicationId: app, vault, tokenSecret, poolSecret,
      ...(p ? { pipelineCaller: p.caller, pipelineCallerObjectId: p.callerObjectId, pipelineRunId: p.runId, standingApprovalId: p.standingApprovalId ?? null } : {}),
    },
    parameters: { hours: input.hours, nodeType: input.nodeType, maxCapacity: input.maxCapacity, expiresAt: options.expiresAt, ...(input.idleMinutes ? { idleMinutes: input.idleMinutes } : {}) },
    operations: [
      `create: an on-behalf-of token for the service principal ${app} in ${input.workspace} with lifetime = ${input.hours} h (Databricks enforces the expiry), and an instance pool "${jitPoolName(input.requestId)}" (node ${input.nodeType}, min idle 0, max capacity ${input.maxCapacity}, idle auto-termination ${input.idleMinutes ?? JIT_POOL_AUTOTERMINATION_MINUTES} min, tags ${JIT_TAG_REQUEST}=${input.requestId}, ${JIT_TAG_EXPIRES}=${filledInLater('expiry time')})`,
      `set: Key Vault ${vault}/${tokenSecret} = the token, ${vault}/${poolSecret} = the pool id, both expiring at the TTL`,
      'test: call the workspace with the new token',
      `finish: at ${formatTime(options.expiresAt)}${p ? ' or when the pipeline releases it, whichever is first,' : ''} revoke the token, delete the pool and disable both secrets (also after a restart; a sweeper removes anything tagged past its TTL)`,
    ],
  };
}

function expiresAtOf(job: JobRecord): number {
  const extended = num(job.facts.expiresAt);
  return Number.isNaN(extended) ? num(job.plan.parameters.expiresAt) : extended;
}
const generationOf = (job: JobRecord): number => (typeof job.facts.generation === 'number' ? job.facts.generation : 0);

function jitTags(job: JobRecord, credentialId: string, kind: string): Record<string, string> {
  const f = job.plan.facts;
  return {
    [KV_TAGS.managedBy]: MANAGED_BY_VALUE,
    [KV_TAGS.credentialKind]: kind,
    [KV_TAGS.credentialId]: credentialId,
    [KV_TAGS.workspace]: str(f.workspace),
    [KV_TAGS.rotationId]: job.id,
    [JIT_TAG_REQUEST]: str(f.requestId),
    [JIT_TAG_EXPIRES]: new Date(expiresAtOf(job)).toISOString(),
    'jit-generation': `${str(f.requestId)}:${generationOf(job)}`,
  };
}

/** Removes everything a JIT request created: every token generation, the pool, and enabled secret versions. */
export async function tearDownJit(providers: WorkflowProviders, facts: JobFacts, signal: AbortSignal): Promise<JobFacts> {
  const client = providers.databricks(str(facts.workspace));
  const requestId = str(facts.requestId);
  let tokens = 0;
  for (const t of await client.listTokens({ signal })) {
    if (JIT_COMMENT_PATTERN.exec(t.comment)?.[1] === requestId && (await client.deleteToken(t.tokenId, { signal }))) tokens += 1;
  }
  let pools = 0;
  for (const p of await client.listInstancePools({ signal })) {
    if ((p.name === jitPoolName(requestId) || p.customTags?.[JIT_TAG_REQUEST] === requestId) && (await client.deleteInstancePool(p.instancePoolId, { signal }))) pools += 1;
  }
  let secrets = 0;
  const kv = providers.keyVault(str(facts.vault));
  for (const name of [str(facts.tokenSecret), str(facts.poolSecret)]) {
    for (const v of await listVersionsOrEmpty(kv, name, signal)) {
      // Only this request's versions: a pipeline may reuse a secret name for its next run.
      if (v.enabled && v.version && (v.tags[JIT_TAG_REQUEST] ?? requestId) === requestId) {
        await kv.updateSecretProperties(name, v.version, { enabled: false, signal });
        secrets += 1;
      }
    }
  }
  return { tokensRevoked: tokens, poolsDeleted: pools, secretVersionsDisabled: secrets };
}

export function createJit(deps: WorkflowDeps): WorkflowDefinition {
  const { providers } = deps;
  const ws = (job: JobRecord) => providers.databricks(str(job.plan.facts.workspace));
  const kv = (job: JobRecord) => providers.keyVault(str(job.plan.facts.vault));

  async function create(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const f = job.plan.facts;
    const p = job.plan.parameters;
    const expiresAt = expiresAtOf(job);
    const generation = generationOf(job);
    const comment = jitComment(str(f.requestId), generation, expiresAt);
    const client = ws(job);
    const lifetimeSeconds = Math.floor((expiresAt - ctx.now()) / 1000);
    if (lifetimeSeconds < 60) return { kind: 'stop', reason: `the requested window already ended at ${formatTime(expiresAt)}; request again` };
    const mine = (await client.listTokens({ signal })).filter((t) => t.comment === comment);
    const value = ctx.handoff.get(job.id, 'token');
    const known = mine.find((t) => t.tokenId === job.facts.tokenId);
    let token: { tokenId: string; expiryTime: number } | undefined = known && value ? known : undefined;
    if (!token) {
      for (const orphan of mine) await client.deleteToken(orphan.tokenId, { signal });
      ctx.checkpoint({ marker: comment }, 'creating the JIT token (marker journaled first)');
      try {
        const created = await client.createOboToken({ applicationId: str(f.applicationId), lifetimeSeconds, comment, signal });
        ctx.handoff.put(job.id, 'token', created.tokenValue);
        token = created.tokenInfo;
        // Journal the id at once: a crash before the pool exists must still be able to revoke this token.
        ctx.checkpoint({ tokenId: token.tokenId, tokenExpiry: token.expiryTime });
      } catch (err) {
        throw providerError(err, 'could not create the JIT token');
      }
    }
    const idleMinutes = num(p.idleMinutes) || JIT_POOL_AUTOTERMINATION_MINUTES;
    const tags = { [JIT_TAG_REQUEST]: str(f.requestId), [JIT_TAG_EXPIRES]: new Date(expiresAt).toISOString(), 'managed-by': MANAGED_BY_VALUE };
    const existing = (await client.listInstancePools({ signal })).find((pool) => pool.name === jitPoolName(str(f.requestId)));
    let poolId: string;
    if (existing) {
      poolId = existing.instancePoolId;
      if (existing.customTags?.[JIT_TAG_EXPIRES] !== tags[JIT_TAG_EXPIRES]) {
        await client.editInstancePool({
          instancePoolId: poolId, name: existing.name, nodeTypeId: existing.nodeTypeId, minIdleInstances: 0,
          maxCapacity: num(p.maxCapacity), idleInstanceAutoterminationMinutes: idleMinutes, customTags: tags, signal,
        });
      }
    } else {
      try {
        poolId = (await client.createInstancePool({
          name: jitPoolName(str(f.requestId)), nodeTypeId: str(p.nodeType), minIdleInstances: 0, maxCapacity: num(p.maxCapacity),
          idleInstanceAutoterminationMinutes: idleMinutes, customTags: tags, signal,
        })).instancePoolId;
      } catch (err) {
        throw providerError(err, 'could not create the JIT instance pool');
      }
    }
    return { kind: 'done', facts: { tokenId: token.tokenId, tokenExpiry: token.expiryTime, poolId } };
  }

  async function set(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const f = job.plan.facts;
    const vault = kv(job);
    const gen = `${str(f.requestId)}:${generationOf(job)}`;
    const expiresOn = expiresAtOf(job);
    let tokenVersion = (await findVersionTagged(vault, str(f.tokenSecret), 'jit-generation', gen, signal))?.version;
    if (!tokenVersion) {
      const value = ctx.handoff.get(job.id, 'token');
      if (!value) {
        await ws(job).deleteToken(str(job.facts.tokenId), { signal });
        return { kind: 'redo', from: 'create', note: `the JIT token ${tail(job.facts.tokenId)} was created but its value was lost in a restart; revoked it, creating another`, facts: { tokenId: null } };
      }
      tokenVersion = (await vault.setSecret(str(f.tokenSecret), value, { signal, expiresOn, tags: jitTags(job, str(job.facts.tokenId), 'databricks-pat') })).version;
    }
    let poolVersion = (await findVersionTagged(vault, str(f.poolSecret), 'jit-generation', gen, signal))?.version;
    if (!poolVersion) {
      poolVersion = (await vault.setSecret(str(f.poolSecret), str(job.facts.poolId), { signal, expiresOn, tags: jitTags(job, str(job.facts.poolId), 'databricks-instance-pool') })).version;
    }
    return { kind: 'done', facts: { tokenKvVersion: tokenVersion ?? null, poolKvVersion: poolVersion ?? null } };
  }

  async function test(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const value = ctx.handoff.get(job.id, 'token')
      ?? (await kv(job).readSecretValue(str(job.plan.facts.tokenSecret), str(job.facts.tokenKvVersion), { signal })).value;
    let own;
    try {
      own = await ws(job).withToken(value).listOwnTokens({ signal });
    } catch (err) {
      throw providerError(err, 'the JIT token did not work');
    }
    if (!own.some((t) => t.tokenId === job.facts.tokenId)) throw new WorkflowError('the workspace does not list the JIT token as its own', 'VERIFY_MISMATCH');
    ctx.handoff.clear(job.id);
    const facts: JobFacts = { readyAt: ctx.now() };
    // After an extension the previous generation's token is replaced: revoke it now that the new one works.
    if (typeof job.facts.previousTokenId === 'string') {
      await ws(job).deleteToken(job.facts.previousTokenId, { signal });
      facts.previousTokenId = null;
    }
    return { kind: 'done', facts };
  }

  async function finish(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const expiresAt = expiresAtOf(job);
    const released = typeof job.facts.releasedAt === 'number' && job.facts.releasedAt <= ctx.now();
    if (ctx.now() < expiresAt && !released) {
      return { kind: 'wait', until: expiresAt, reason: `time to live: teardown at ${formatTime(expiresAt)}`, milestone: { key: `ready:${generationOf(job)}`, text: readyText(job, expiresAt) } };
    }
    return { kind: 'done', facts: { ...(await tearDownJit(providers, job.plan.facts, signal)), tornDownAt: ctx.now() } };
  }

  return {
    kind: 'jit',
    steps: FOUR_STEPS,
    maxAttempts: { finish: 20 },
    run: dispatchSteps({ create, set, test, finish }),
    // The pool is found by name by whoever runs the job; only the token (whose value is lost) is this runner's own.
    discard: discardCreated('tokenId', async (tokenId, { job, signal }) => ({ revokedUnjournaledToken: await ws(job).deleteToken(tokenId, { signal }) })),
    async compensate(ctx) {
      ctx.handoff.clear(ctx.job.id);
      return tearDownJit(providers, ctx.job.plan.facts, ctx.signal);
    },
    summarize(job) {
      const f = job.plan.facts;
      if (job.state === 'done') {
        const how = typeof job.facts.releasedAt === 'number' ? ` (released early by ${str(job.facts.releasedBy) || 'the requester'})` : '';
        return `JIT request ${str(f.requestId)} ended at ${formatTime(num(job.facts.tornDownAt))}${how}: token revoked, pool deleted (${String(job.facts.poolsDeleted ?? 0)}), Key Vault secrets ${str(f.vault)}/${str(f.tokenSecret)} and ${str(f.poolSecret)} disabled`;
      }
      if (job.state === 'cancelled') return `JIT request ${str(f.requestId)} not started: ${job.error?.message ?? 'cancelled'}`;
      const undo = job.compensation?.status === 'done' ? 'everything it created was removed' : `cleanup FAILED (${job.compensation?.error ?? 'unknown'}) — the sweeper will retry; check ${str(f.workspace)} by hand`;
      return `JIT request ${str(f.requestId)} failed at ${job.error?.step ?? 'a step'}: ${job.error?.message ?? 'unknown error'}; ${undo}`;
    },
  };
}

function readyText(job: JobRecord, expiresAt: number): string {
  const f = job.plan.facts;
  return `JIT access ready in ${str(f.workspace)}: token in Key Vault secret ${str(f.vault)}/${str(f.tokenSecret)}, instance pool id in ${str(f.vault)}/${str(f.poolSecret)} (pool ${str(job.facts.poolId)}). Everything is removed at ${formatTime(expiresAt)}.`;
}

function providerError(err: unknown, what: string): Error {
  const status = statusOf(err);
  const code = (err as { code?: string }).code ?? 'PROVIDER_ERROR';
  return new WorkflowError(`${what}: ${(err as Error).message}`, code, { retryable: status === undefined || status === 429 || status >= 500, statusCode: status });
}

/** New TTL for an extension: bounded so the whole window never exceeds config.workflows.jit.maxHours from activation. */
export function extendedExpiry(job: JobRecord, extraHours: number, maxHours: number): { expiresAt: number } | { refusal: string } {
  const start = num(job.facts.readyAt) || job.createdAt;
  const current = expiresAtOf(job);
  const next = current + extraHours * HOUR_MS;
  if (next - start > maxHours * HOUR_MS + MINUTE_MS) {
    return { refusal: `an extension of ${extraHours} h would make the access last longer than the ${maxHours} h maximum (workflows.jit.maxHours)` };
  }
  return { expiresAt: next };
}
