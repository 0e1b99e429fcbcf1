/**
 * What the four-step workflows share: step dispatch and discard of a create's leftover (rotations and JIT), and the
 * Key Vault halves both rotations run the same way (publish the new value, check it is what "latest" gives, wait out
 * the grace window, undo). Each estate's own calls (Databricks tokens, Entra passwords) stay in its workflow file.
 */
import { DAY_MS, HOUR_MS } from '../../clock.js';
import type { KeyVaultSecrets } from '../../providers/keyvault/client.js';
import { checkPublished, disableStaleRotationVersions, lateRotationWrite, listVersionsOrEmpty, restorePreviousVersion, rotationTags, tail, valueWrittenFor, versionBefore } from '../engine/keyvault-steps.js';
import { formatTime } from '../../domain/plan.js';
import type { JobFacts, JobRecord, StepName } from '../../domain/job.js';
import type { CompensationContext, StepContext, StepOutcome, WorkflowDefinition } from '../engine/workflow.js';

export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);

export const FOUR_STEPS: readonly StepName[] = ['create', 'set', 'test', 'finish'];

/** run() for a workflow with one handler per step. */
export function dispatchSteps(handlers: Record<StepName, (ctx: StepContext) => Promise<StepOutcome>>): WorkflowDefinition['run'] {
  return (step, ctx) => handlers[step](ctx);
}

/** discard() when only create leaves something behind: the credential whose id create journals under `key`. */
export function discardCreated(key: string, undo: (id: string, ctx: { job: JobRecord; signal: AbortSignal }) => Promise<JobFacts>): NonNullable<WorkflowDefinition['discard']> {
  return async (step, facts, ctx) => {
    const id = facts[key];
    if (step !== 'create' || typeof id !== 'string') return {};
    return undo(id, ctx);
  };
}

/** Where a rotation publishes its new credential, and the words its messages use for it. */
export interface RotationTarget {
  /** Looked up only when needed (a vault no longer configured fails the step that uses it, not one that waits). */
  vault(): KeyVaultSecrets;
  /** The Key Vault secret's name. */
  name: string;
  /** The new credential's id (Databricks token id, Entra key id). */
  credentialId: string;
  noun: 'token' | 'secret';
}

export interface PublishInput {
  /** The new value, when this process still holds it. */
  held: string | undefined;
  expiresOn: number | undefined;
  tags: { kind: string; workspace?: string; appId?: string };
  /** The value is lost (restart between create and set): remove the new credential and answer a redo of create. */
  whenLost(): Promise<StepOutcome>;
  /** Runs with the value just before it is written (Entra: wait until the secret is accepted). */
  beforeWrite?(value: string): Promise<void>;
}

/** The set step: write the new value as this rotation's version of the secret, unless Key Vault already publishes it. */
export async function publishNewCredential(ctx: StepContext, at: RotationTarget, input: PublishInput): Promise<StepOutcome> {
  const { job, signal } = ctx;
  const { name, credentialId } = at;
  const vault = at.vault();
  // Done already only if "latest" is this rotation's version of the new credential (and its value, when known).
  const published = await checkPublished(vault, name, { rotationId: job.id, credentialId, expectedValue: input.held, signal });
  if (published.ok) return { kind: 'done', facts: { kvVersion: published.version ?? null }, note: `Key Vault already holds this rotation's new ${at.noun}` };
  // Not in this process any more: the value this rotation already wrote (a late write pushed it off "latest").
  const value = input.held ?? await valueWrittenFor(vault, name, { rotationId: job.id, credentialId, signal });
  if (!value) return input.whenLost();
  if (input.beforeWrite) await input.beforeWrite(value);
  const versions = await listVersionsOrEmpty(vault, name, signal);
  // What was current before this rotation (not a version this rotation wrote earlier): what compensation restores.
  const previous = versionBefore(versions, job.id);
  const written = await vault.setSecret(name, value, {
    signal,
    expiresOn: input.expiresOn,
    tags: rotationTags(previous?.tags ?? {}, { ...input.tags, credentialId, rotationId: job.id }),
    contentType: previous?.contentType,
  });
  const stale = await disableStaleRotationVersions(vault, name, { rotationId: job.id, keep: written.version, versions, signal });
  return { kind: 'done', facts: { kvVersion: written.version ?? null, previousKvVersion: previous?.version ?? null, ...(stale ? { staleVersionsDisabled: stale } : {}) } };
}

/** The test step's first half: the value consumers reading "latest" get, or a redo of set when it is not the new credential. */
export async function readPublished(ctx: StepContext, at: RotationTarget, held: string | undefined): Promise<{ value: string; version: string | undefined } | { redo: StepOutcome }> {
  const published = await checkPublished(at.vault(), at.name, { rotationId: ctx.job.id, credentialId: at.credentialId, expectedValue: held, readValue: true, signal: ctx.signal });
  if (!published.ok) return { redo: { kind: 'redo', from: 'set', note: `Key Vault does not publish the new ${at.noun}: ${published.reason}; writing it again` } };
  return { value: published.value!, version: published.version };
}

/** The test step's end: the new credential works; the grace window starts (a re-verification keeps it). */
export function verified(ctx: StepContext, kvVersion: string | undefined): StepOutcome {
  ctx.handoff.clear(ctx.job.id);
  return { kind: 'done', facts: { verifiedAt: ctx.now(), graceUntil: graceUntil(ctx.job, ctx.now()), kvVersion: kvVersion ?? null } };
}

/** When the old credential goes: the grace window from the first verification (a re-verification keeps it). */
export function graceUntil(job: JobRecord, now: number): number {
  return typeof job.facts.graceUntil === 'number' ? job.facts.graceUntil : now + num(job.plan.parameters.graceHours) * HOUR_MS;
}

/**
 * The finish step's gate before the old credential goes: wait out the grace window, then publish the new credential
 * again if a stalled runner's late write of this rotation landed after the test. Undefined: go ahead.
 */
export async function beforeOldGoes(ctx: StepContext, at: RotationTarget, old: { id: Parameters<typeof tail>[0]; removed: string; removing: string; verifiedText(until: number): string }): Promise<StepOutcome | undefined> {
  const { job, signal } = ctx;
  const until = num(job.facts.graceUntil);
  if (ctx.now() < until) {
    return { kind: 'wait', until, reason: `grace window: the old ${at.noun} ${tail(old.id)} is ${old.removed} at ${formatTime(until)}`, milestone: { key: 'verified', text: old.verifiedText(until) } };
  }
  const late = await lateRotationWrite(at.vault(), at.name, { rotationId: job.id, credentialId: at.credentialId, signal });
  if (late) return { kind: 'redo', from: 'set', note: `before ${old.removing} the old ${at.noun}: ${late}; writing the new ${at.noun} again` };
  return undefined;
}

/**
 * Undoes a rotation that failed before finish: the previous value is made current again first (the old credential
 * was never removed), then `removeNew` removes every credential carrying the rotation's marker.
 */
export async function compensateRotation(ctx: CompensationContext, vault: () => KeyVaultSecrets, removeNew: () => Promise<JobFacts>): Promise<JobFacts> {
  const { job, signal } = ctx;
  if (job.error?.step === 'finish') return { rotationStands: true };
  const restored = job.plan.facts.secret ? await restorePreviousVersion(vault(), str(job.plan.facts.secret), {
    jobId: job.id, rotationId: job.id, rotationVersion: str(job.facts.kvVersion) || undefined, previousVersion: str(job.facts.previousKvVersion) || undefined, signal,
  }) : {};
  const removed = await removeNew();
  ctx.handoff.clear(job.id);
  return { ...restored, ...removed };
}

/** "Rotation failed at test: …; undone: …; the old token still works until … (N days left)." */
export function failureText(job: JobRecord, what: string, expiresAt: number): string {
  const runway = expiresAt > 0 ? `${what} still works until ${formatTime(expiresAt)} (${Math.max(0, Math.floor((expiresAt - (job.finishedAt ?? job.createdAt)) / DAY_MS))} days left)` : `${what} was not changed`;
  if (job.state === 'cancelled') return `not done: ${job.error?.message ?? 'cancelled'}. ${runway}.`;
  const undo = job.compensation?.status === 'done'
    ? `undone: ${Object.entries(job.compensation.result ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(', ') || 'nothing was created'}`
    : `compensation FAILED (${job.compensation?.error ?? 'unknown'}) — check the new credential by hand`;
  return `failed at ${job.error?.step ?? 'a step'}: ${job.error?.message ?? 'unknown error'}; ${undo}. ${runway}.`;
}
