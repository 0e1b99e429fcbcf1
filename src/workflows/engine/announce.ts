/**
 * Job results that never reached their thread: Teams refused the post (an outage at that moment), or the process
 * died between the job's last journal write and the post. A finished job keeps its subject lock until the reporter
 * has told the thread (reporter.ts frees it last), so the locks lead to these jobs without reading every job.
 * Each timer pass posts them again, backing off per job; after a day it gives up, frees the lock and says so.
 */
import { releaseSubject } from '../../approvals/record.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, type Clock } from '../../clock.js';
import { TERMINAL_STATES, type JobKind, type JobRecord } from '../../domain/job.js';
import type { Logger } from '../../logging/logger.js';
import type { Store } from '../../store/store.js';
import { auditJob } from './job-record.js';
import { leaseIsLive } from './lease.js';
import { SUBJECT_LOCK_PREFIX } from './open-jobs.js';
import type { JobEvent, WorkflowDefinition } from './workflow.js';

const GIVE_UP_AFTER_MS = DAY_MS;

export interface AnnouncerOptions {
  store: Store;
  clock: Clock;
  logger?: Logger;
  workflows: ReadonlyMap<JobKind, WorkflowDefinition>;
  onEvent?: (event: JobEvent) => Promise<void>;
  /** A job a runner of this process holds right now (its own finish is still posting). */
  running: (jobId: string) => boolean;
}

export class ResultAnnouncer {
  private readonly retries = new Map<string, { attempts: number; nextAt: number }>();

  constructor(private readonly options: AnnouncerOptions) {}

  /** Finished jobs whose result was not posted, each at most once per pass and when its backoff allows. */
  async pass(): Promise<void> {
    const { store, clock } = this.options;
    if (!this.options.onEvent) return;
    for (const lock of store.list<{ jobId?: string }>('approvals', { prefix: SUBJECT_LOCK_PREFIX })) {
      const jobId = lock.value.jobId;
      if (typeof jobId !== 'string' || this.options.running(jobId)) continue;
      const job = store.get<JobRecord>('jobs', jobId)?.value;
      if (!job || !TERMINAL_STATES.includes(job.state)) continue;
      const subject = lock.id.slice(SUBJECT_LOCK_PREFIX.length);
      if (job.posted.includes('finished')) {
        releaseSubject(store, subject, jobId); // a lock an older version left behind
        continue;
      }
      const now = clock.now();
      // A runner (here or on another replica) still holds the job: it is posting the result itself.
      if (leaseIsLive(job.lease, now)) continue;
      if ((this.retries.get(jobId)?.nextAt ?? 0) > now) continue;
      if (now - (job.finishedAt ?? now) > GIVE_UP_AFTER_MS) {
        this.giveUp(job, subject);
        continue;
      }
      await this.announce(job);
    }
  }

  private async announce(job: JobRecord): Promise<void> {
    const { store, clock, logger } = this.options;
    const wf = this.options.workflows.get(job.kind);
    if (!wf) return;
    const text = wf.summarize(job);
    const card = wf.finishCard?.(job);
    try {
      await this.options.onEvent!({ type: 'finished', job, text, again: true, ...(card ? { card } : {}) });
    } catch (err) {
      const attempts = (this.retries.get(job.id)?.attempts ?? 0) + 1;
      this.retries.set(job.id, { attempts, nextAt: clock.now() + Math.min(HOUR_MS, MINUTE_MS * 2 ** (attempts - 1)) });
      logger?.warn({ err, jobId: job.id, attempts }, 'could not post the job result to the thread again; will retry');
      return;
    }
    this.retries.delete(job.id);
    const fresh = store.get<JobRecord>('jobs', job.id);
    if (fresh && !fresh.value.posted.includes('finished')) store.compareAndSet('jobs', job.id, fresh.version, { ...fresh.value, posted: [...fresh.value.posted, 'finished'] });
    logger?.info({ jobId: job.id }, 'posted a job result that had not reached its thread');
  }

  private giveUp(job: JobRecord, subject: string): void {
    const { store, logger } = this.options;
    releaseSubject(store, subject, job.id);
    this.retries.delete(job.id);
    auditJob(store, job, 'job.result.unposted', 'failed', { reason: 'the result could not be posted to the thread for a day' });
    logger?.error({ jobId: job.id }, 'gave up posting a job result to its thread after a day; the audit log has it (keywarden audit)');
  }
}
