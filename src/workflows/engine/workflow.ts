/**
 * What a workflow is to the job engine: named steps (create → set → test → finish), what a step may answer,
 * and how a failure is undone. Each workflow file (rotate-pat, rotate-entra, revoke, rollback, jit) exports one.
 */
import type { AdaptiveCard } from '../../domain/chat.js';
import type { SecretHandoff } from './handoff.js';
import type { JobFacts, JobKind, JobRecord, StepName, StepRecord } from '../../domain/job.js';

/** A message for the card's thread at a point in the job ("verified; old token revoked at …"). */
export interface Milestone {
  /** Stable key so a resumed job does not post it twice. */
  key: string;
  text: string;
  /** People @mentioned in `text` (as `<at>name</at>`), e.g. token owners before a batch revocation. */
  mentions?: Array<{ aadObjectId: string; name: string }>;
  /** A card posted with the text (e.g. "Keep this token" buttons). */
  card?: import('../../domain/chat.js').AdaptiveCard;
}

export interface StepContext {
  readonly job: JobRecord;
  readonly step: StepRecord;
  /** The step was entered before and did not finish (crash, timeout, error): check real state before acting. */
  readonly resumed: boolean;
  readonly signal: AbortSignal;
  readonly handoff: SecretHandoff;
  now(): number;
  /** Journals facts immediately (e.g. the marker a create is about to use), before a call that may not return. */
  checkpoint(facts: JobFacts, note?: string): void;
}

export type StepOutcome =
  | { kind: 'done'; facts?: JobFacts; note?: string; milestone?: Milestone }
  /** Park the job until `until` (grace window, time to live); the same step runs again then. */
  | { kind: 'wait'; until: number; reason: string; facts?: JobFacts; note?: string; milestone?: Milestone }
  /** Go back to an earlier step (e.g. the new value was lost in a crash and the orphan was revoked). */
  | { kind: 'redo'; from: StepName; note: string; facts?: JobFacts }
  /** Stop without acting (plan drift); nothing was created, so nothing is compensated. */
  | { kind: 'stop'; reason: string; facts?: JobFacts };

export interface CompensationContext {
  readonly job: JobRecord;
  readonly resumed: boolean;
  readonly signal: AbortSignal;
  readonly handoff: SecretHandoff;
  now(): number;
}

export interface WorkflowDefinition {
  readonly kind: JobKind;
  readonly steps: readonly StepName[];
  /** Attempts per step before the job compensates (default: the engine's maxAttempts). */
  readonly maxAttempts?: Partial<Record<StepName, number>>;
  run(step: StepName, ctx: StepContext): Promise<StepOutcome>;
  /** Undoes what the job created; must be idempotent (it may run again after a crash). Returns what it did. */
  compensate(ctx: CompensationContext): Promise<JobFacts>;
  /**
   * Undoes what one step just created when its result could not be journaled because another runner took the job
   * over meanwhile (this one stalled past its lease). The other runner never saw the value, so it never uses it.
   */
  discard?(step: StepName, facts: JobFacts, ctx: { job: JobRecord; signal: AbortSignal }): Promise<JobFacts>;
  /** The thread's final message for a job in a terminal state. */
  summarize(job: JobRecord): string;
  /** A card to post with that message (e.g. a Rollback offer), when the workflow has one. */
  finishCard?(job: JobRecord): AdaptiveCard | undefined;
}

export type JobEvent =
  | { type: 'milestone'; job: JobRecord; milestone: Milestone }
  /** `again`: the result is posted again, because it did not reach the thread the first time (announce.ts). */
  | { type: 'finished'; job: JobRecord; text: string; card?: AdaptiveCard; again?: boolean };

