import type { AuditEntry, Store } from '../../store/store.js';
import type { JobFacts, JobKind, JobRecord, StepName } from '../../domain/job.js';

/** A new job record with its steps pending; the caller inserts it (together with the approval, in one transaction). */
export function newJobRecord(input: {
  id: string;
  kind: JobKind;
  subject: string;
  steps: readonly StepName[];
  approvalId: string;
  plan: JobRecord['plan'];
  planHash: string;
  approvedBy: JobRecord['approvedBy'];
  requestedBy?: JobRecord['requestedBy'];
  message?: JobRecord['message'];
  alertId?: string;
  facts?: JobFacts;
  now: number;
}): JobRecord {
  return {
    id: input.id,
    kind: input.kind,
    subject: input.subject,
    state: 'queued',
    approvalId: input.approvalId,
    plan: input.plan,
    planHash: input.planHash,
    steps: input.steps.map((name) => ({ name, status: 'pending', attempts: 0 })),
    approvedBy: input.approvedBy,
    ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
    ...(input.message ? { message: input.message } : {}),
    ...(input.alertId ? { alertId: input.alertId } : {}),
    facts: { ...(input.facts ?? {}) },
    posted: [],
    createdAt: input.now,
  };
}

/** An audit entry about a job, by Keywarden itself: which job, plan hash and approvers, plus what happened. */
export function auditJob(store: Store, job: JobRecord, action: string, result: AuditEntry['result'], details: Record<string, unknown> = {}): void {
  store.appendAudit({
    action,
    actor: { name: 'Keywarden' },
    subject: job.subject,
    result,
    details: {
      jobId: job.id, kind: job.kind, planHash: job.planHash,
      approvers: job.approvedBy.map((a) => ({ aadObjectId: a.aadObjectId, name: a.name })),
      ...details,
    },
  });
}
