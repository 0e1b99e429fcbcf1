import { TERMINAL_STATES, type JobRecord } from '../../domain/job.js';
import type { Store, StoredRecord } from '../../store/store.js';

/**
 * Issue 14: the 'jobs' collection keeps every job ever run, so nothing that runs every engine tick, scan or probe may
 * read it whole. The jobs at work are found through the lock each holds on its subject (`active:<subject>` in
 * approvals, taken in the transaction that inserts the job and freed once its result reached the thread:
 * approvals/record.ts, autorotate/fire.ts, engine/reporter.ts). What a reader needs of finished jobs is kept in small
 * pointer records written in the transaction that finishes the job (lease.ts): `failed-job:<jobId>` (readiness) and
 * `done-job:<kind>:<subject>` (the last job of that kind to finish done for the subject).
 */

export const SUBJECT_LOCK_PREFIX = 'active:';
export const FAILED_JOB_PREFIX = 'failed-job:';
const DONE_JOB_PREFIX = 'done-job:';
/** Marks a store whose finished jobs all have their pointers; stores from before get them once (ensureJobPointers). */
const POINTERS_MARKER = 'job-pointers-v1';

export interface DoneJobPointer {
  jobId: string;
  approvalId: string;
  createdAt: number;
  finishedAt?: number;
  approvedBy: JobRecord['approvedBy'];
}

/** Ids of the jobs holding a subject lock: every unfinished job, and finished ones whose result is not posted yet. */
export function lockedJobIds(store: Store): string[] {
  const ids = new Set<string>();
  for (const lock of store.list<{ jobId?: unknown }>('approvals', { prefix: SUBJECT_LOCK_PREFIX })) {
    if (typeof lock.value.jobId === 'string') ids.add(lock.value.jobId);
  }
  return [...ids];
}

/** The jobs holding a subject lock, as stored records. */
export function lockedJobRecords(store: Store): StoredRecord<JobRecord>[] {
  return lockedJobIds(store).flatMap((id) => {
    const rec = store.get<JobRecord>('jobs', id);
    return rec ? [rec] : [];
  });
}

export function lockedJobs(store: Store): JobRecord[] {
  return lockedJobRecords(store).map((r) => r.value);
}

/** The unfinished jobs (queued, running, waiting out a grace window, compensating). */
export function openJobs(store: Store): JobRecord[] {
  return lockedJobs(store).filter((j) => !TERMINAL_STATES.includes(j.state));
}

export const doneJobId = (kind: JobRecord['kind'], subject: string): string => `${DONE_JOB_PREFIX}${kind}:${subject}`;

/** The last job of `kind` that finished done for `subject` (undefined when none did since pointers were kept). */
export function lastDoneJob(store: Store, kind: JobRecord['kind'], subject: string): DoneJobPointer | undefined {
  return store.get<DoneJobPointer>('approvals', doneJobId(kind, subject))?.value;
}

/** How many jobs failed and need a person, counting at most `cap` (ids only). */
export function failedJobCount(store: Store, cap: number): number {
  return store.listIds('approvals', { prefix: FAILED_JOB_PREFIX, limit: cap }).length;
}

/** Whether a job going from `before` to `job` leaves pointers (it just finished done or failed). */
export function finishPointersFor(before: JobRecord['state'], job: JobRecord): boolean {
  return before !== job.state && (job.state === 'failed' || job.state === 'done');
}

/** Writes the pointers of a job that just became `job` (call inside the transaction that wrote it). */
export function writeFinishPointers(store: Store, before: JobRecord['state'], job: JobRecord): void {
  if (!finishPointersFor(before, job)) return;
  if (job.state === 'failed') store.put('approvals', `${FAILED_JOB_PREFIX}${job.id}`, { jobId: job.id, subject: job.subject, kind: job.kind, at: job.finishedAt ?? job.createdAt });
  if (job.state === 'done') store.put<DoneJobPointer>('approvals', doneJobId(job.kind, job.subject), pointerOf(job));
}

function pointerOf(job: JobRecord): DoneJobPointer {
  return { jobId: job.id, approvalId: job.approvalId, createdAt: job.createdAt, ...(job.finishedAt !== undefined ? { finishedAt: job.finishedAt } : {}), approvedBy: job.approvedBy };
}

/**
 * Gives a store from before the pointers its pointers, once: pages through the jobs (the only whole read left, and
 * only on a store never done), then leaves a marker.
 */
export function ensureJobPointers(store: Store, now: number, pageSize = 200): number {
  if (store.get('settings', POINTERS_MARKER)) return 0;
  let after: string | undefined;
  let written = 0;
  for (;;) {
    const page = store.list<JobRecord>('jobs', { limit: pageSize, ...(after !== undefined ? { after } : {}) });
    if (page.length === 0) break;
    after = page.at(-1)!.id;
    for (const { value: job } of page) {
      if (job.state === 'failed' && store.insert('approvals', `${FAILED_JOB_PREFIX}${job.id}`, { jobId: job.id, subject: job.subject, kind: job.kind, at: job.finishedAt ?? job.createdAt })) written++;
      if (job.state !== 'done') continue;
      const id = doneJobId(job.kind, job.subject);
      const cur = store.get<DoneJobPointer>('approvals', id);
      if (cur && cur.value.createdAt >= job.createdAt) continue;
      if (cur ? store.compareAndSet('approvals', id, cur.version, pointerOf(job)) : store.insert('approvals', id, pointerOf(job))) written++;
    }
  }
  store.insert('settings', POINTERS_MARKER, { builtAt: now, written });
  return written;
}
