/**
 * Exactly once: an approval is claimed by inserting `approvals/<id>` (one id per card nonce), and the job is
 * inserted in the same IMMEDIATE transaction, together with a per-subject lock so two cards (or two replicas)
 * can never start two jobs on one credential. A second click, a retry or another replica finds the record.
 */
import type { Store } from '../store/store.js';
import { newJobRecord } from '../workflows/engine/journal.js';
import type { ActionPlan } from '../domain/plan.js';
import { TERMINAL_STATES, type JobActor, type JobKind, type JobRecord, type StepName } from '../domain/job.js';
import type { ApprovalAction, ApprovalRecord, ApproverVote } from './types.js';

export interface ApprovalRequest {
  id: string;
  action: ApprovalAction;
  subject: string;
  scope: string;
  nonce: string;
  required: number;
  approver: ApproverVote;
  plan: ActionPlan;
  planHash: string;
  jobKind: JobKind;
  steps: readonly StepName[];
  jobId: string;
  alertId?: string;
  requestId?: string;
  requestedBy?: JobActor;
  justification?: string;
  overrideReason?: string;
  message?: ApprovalRecord['message'];
  now: number;
  /** Runs inside the transaction when the approval completes; false = the world moved, do not start the job. */
  onApproved?: (job: JobRecord) => boolean;
}

export type ApprovalOutcome =
  | { kind: 'started'; approval: ApprovalRecord; job: JobRecord }
  | { kind: 'pending'; approval: ApprovalRecord }
  /** This card state was already approved / denied / is pending (a second click, a replay, another replica). */
  | { kind: 'exists'; approval: ApprovalRecord; job?: JobRecord }
  /** Another job is running on the same subject, or onApproved said no. */
  | { kind: 'busy'; jobId?: string }
  | { kind: 'already-voted'; approval: ApprovalRecord };

const lockId = (subject: string) => `active:${subject}`;

/** The job currently holding the subject's lock, when it is still running. */
function activeJob(store: Store, subject: string): JobRecord | undefined {
  const lock = store.get<{ jobId: string }>('approvals', lockId(subject));
  if (!lock) return undefined;
  const job = store.get<JobRecord>('jobs', lock.value.jobId)?.value;
  return job && !TERMINAL_STATES.includes(job.state) ? job : undefined;
}

/** Thrown inside the transaction so its writes (including onApproved's) roll back. */
class NotStarted extends Error {
  constructor(readonly jobId?: string) {
    super('not started');
  }
}

function startJob(store: Store, req: ApprovalRequest, approval: ApprovalRecord): JobRecord {
  const job = newJobRecord({
    id: req.jobId, kind: req.jobKind, subject: req.subject, steps: req.steps, approvalId: approval.id,
    plan: req.plan, planHash: req.planHash, approvedBy: approval.approvers.map(({ aadObjectId, name }) => ({ aadObjectId, name })),
    requestedBy: req.requestedBy, message: req.message, alertId: req.alertId, now: req.now,
  });
  // onApproved first: a rollback ends the rotation that holds the subject before the rollback takes it.
  if (req.onApproved && !req.onApproved(job)) throw new NotStarted();
  const busy = activeJob(store, req.subject);
  if (busy) throw new NotStarted(busy.id);
  if (!store.insert<JobRecord>('jobs', job.id, job)) throw new NotStarted();
  store.put('approvals', lockId(req.subject), { jobId: job.id });
  return job;
}

/** Claims the approval for one card state and, when enough approvers agree, inserts the job. */
export function recordApproval(store: Store, req: ApprovalRequest): ApprovalOutcome {
  try {
    return claim(store, req);
  } catch (err) {
    if (err instanceof NotStarted) return { kind: 'busy', jobId: err.jobId };
    throw err;
  }
}

function claim(store: Store, req: ApprovalRequest): ApprovalOutcome {
  return store.transaction((): ApprovalOutcome => {
    const existing = store.get<ApprovalRecord>('approvals', req.id);
    if (existing) {
      const approval = existing.value;
      // A vote counts only for the same action: a Rotate click never confirms a pending Revoke.
      if (approval.state === 'pending' && approval.action === req.action) return addVote(store, req, existing.version, approval);
      return { kind: 'exists', approval, job: approval.jobId ? store.get<JobRecord>('jobs', approval.jobId)?.value : undefined };
    }
    const approval: ApprovalRecord = {
      id: req.id, action: req.action, subject: req.subject, scope: req.scope, nonce: req.nonce,
      state: 'pending', required: req.required, approvers: [req.approver], plan: req.plan, planHash: req.planHash,
      createdAt: req.now,
      ...(req.alertId ? { alertId: req.alertId } : {}),
      ...(req.requestId ? { requestId: req.requestId } : {}),
      ...(req.requestedBy ? { requestedBy: req.requestedBy } : {}),
      ...(req.justification ? { justification: req.justification } : {}),
      ...(req.overrideReason ? { overrideReason: req.overrideReason } : {}),
      ...(req.message ? { message: req.message } : {}),
    };
    if (req.required > 1) {
      store.insert('approvals', req.id, approval);
      return { kind: 'pending', approval };
    }
    const job = startJob(store, req, { ...approval, state: 'approved' });
    const approved: ApprovalRecord = { ...approval, state: 'approved', jobId: job.id, decidedAt: req.now };
    store.insert('approvals', req.id, approved);
    return { kind: 'started', approval: approved, job };
  });
}

/** N-of-M: a distinct approver adds a vote; the last needed vote starts the job. */
function addVote(store: Store, req: ApprovalRequest, version: number, approval: ApprovalRecord): ApprovalOutcome {
  if (approval.approvers.some((a) => a.aadObjectId === req.approver.aadObjectId)) return { kind: 'already-voted', approval };
  const approvers = [...approval.approvers, req.approver];
  if (approvers.length < approval.required) {
    const next = { ...approval, approvers };
    return store.compareAndSet('approvals', approval.id, version, next) ? { kind: 'pending', approval: next } : { kind: 'busy' };
  }
  // The job runs the plan the first approver approved (its hash), with every approver recorded.
  const job = startJob(store, { ...req, plan: approval.plan, planHash: approval.planHash, justification: approval.justification }, { ...approval, approvers });
  const approved: ApprovalRecord = { ...approval, approvers, state: 'approved', jobId: job.id, decidedAt: req.now };
  if (!store.compareAndSet('approvals', approval.id, version, approved)) throw new Error(`approval ${approval.id} changed inside its own transaction`);
  return { kind: 'started', approval: approved, job };
}

/** Frees the subject once its job ended (called by the reporter; a stale lock is also ignored by activeJob). */
export function releaseSubject(store: Store, subject: string, jobId: string): void {
  const lock = store.get<{ jobId: string }>('approvals', lockId(subject));
  if (lock?.value.jobId === jobId) store.delete('approvals', lockId(subject), lock.version);
}
