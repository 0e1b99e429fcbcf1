/**
 * Jobs: the journal of an approved action. A job record lives in the `jobs` collection and is only changed
 * by compare-and-set, so a second process (or a second click) can never run a step twice.
 * Nothing here ever holds a secret value: results are ids, versions, expiry times and hashes.
 */
import type { PostedMessage } from './chat.js';

export type JobKind =
  | 'rotate-pat' | 'rotate-entra' | 'revoke' | 'jit' | 'rollback'
  /** Governance remedies (issue 13): a pipeline moved off a person's PAT, workspace-conf lifetime, token ACL, bulk retire. */
  | 'move-to-sp' | 'max-lifetime' | 'restrict-tokens' | 'retire-unused';

/** Step names follow AWS Secrets Manager's rotation contract: create → set → test → finish. */
export type StepName = 'create' | 'set' | 'test' | 'finish';

export type JobState =
  /** Recorded, not yet picked up by a runner. */
  | 'queued'
  /** A runner holds the lease and is executing a step. */
  | 'running'
  /** Parked until `dueAt` (grace window, retry backoff, JIT time-to-live). */
  | 'waiting'
  | 'done'
  /** A step failed and compensation is undoing what was created. */
  | 'compensating'
  /** Failed, and everything it created was undone. */
  | 'compensated'
  /** Failed and compensation failed too: a person must look (the thread says what is left). */
  | 'failed'
  /** Stopped on purpose (rollback during the grace window, drift before acting). */
  | 'cancelled';

export const TERMINAL_STATES: readonly JobState[] = ['done', 'compensated', 'failed', 'cancelled'];

export type StepStatus = 'pending' | 'started' | 'done' | 'failed';

/** Metadata only; the store refuses nothing, so this type is the guard. */
export type JobFacts = Record<string, string | number | boolean | null>;

export interface StepRecord {
  name: StepName;
  status: StepStatus;
  /** How many times the step was entered (a value > 1 means: reconcile with the real state first). */
  attempts: number;
  startedAt?: number;
  finishedAt?: number;
  result?: JobFacts;
  error?: string;
  /** Lines that explain what the step decided (e.g. "found the token by its marker; not creating again"). */
  notes?: string[];
}

export interface JobActor {
  aadObjectId: string;
  name: string;
}

export interface JobRecord {
  id: string;
  kind: JobKind;
  /** Credential id (rotate / revoke / rollback) or JIT request id. */
  subject: string;
  state: JobState;
  /** Approval that authorized the job (approvals collection). */
  approvalId: string;
  /** Plan facts and parameters; their hash was shown to and approved by the approvers. */
  plan: import('./plan.js').ActionPlan;
  planHash: string;
  steps: StepRecord[];
  requestedBy?: JobActor;
  approvedBy: JobActor[];
  /** Card whose thread receives progress and the result; absent for jobs started outside chat. */
  message?: PostedMessage;
  /** Alert whose card is updated after the job. */
  alertId?: string;
  /** Who may run it now: a lease with an expiry, taken and renewed by compare-and-set. */
  lease?: { owner: string; until: number };
  /** Earliest time the next step may run (epoch ms). */
  dueAt?: number;
  /** What `dueAt` waits for, in words ("grace window", "retry 2 of 5", "time to live"). */
  waitingFor?: string;
  /** Facts accumulated across steps (new token id, KV version...). */
  facts: JobFacts;
  /** Compensation journal: what was undone (or is still left) after a failure. */
  compensation?: { status: 'started' | 'done' | 'failed'; attempts: number; result?: JobFacts; error?: string };
  /** Milestones already posted to the thread, so a resumed job does not post them twice. */
  posted: string[];
  error?: { step?: StepName; message: string; code?: string };
  createdAt: number;
  finishedAt?: number;
}
