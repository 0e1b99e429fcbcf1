/**
 * The job engine. Every step is journaled (status "started", attempt count) in the job record BEFORE it acts,
 * and its result is journaled before the next one starts. A runner holds a lease (owner + expiry) taken by
 * compare-and-set and renewed while a step runs; a crashed runner's job is picked up by `resumeJobs()` at start, or
 * by any replica once the lease expires (or at once when its process is provably gone). A runner that
 * loses its lease mid-step aborts the step, and undoes what the step created but could not journal. Steps reconcile with real state
 * when they are entered again. Retries are bounded and back off on the injected clock; a permanent failure
 * runs the workflow's compensation.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logging/logger.js';
import type { Store, StoredRecord } from '../../store/store.js';
import { STORE_FENCED } from '../../store/fenced.js';
import { errorText } from './errors.js';
import { SecretHandoff } from './handoff.js';
import { JobRun } from './job-run.js';
import { ResultAnnouncer } from './announce.js';
import { JobLease, LeaseLostError, type JobBox } from './lease.js';
import { lockedJobRecords } from './open-jobs.js';
import { TERMINAL_STATES, type JobKind, type JobRecord } from '../../domain/job.js';
import type { JobEvent, WorkflowDefinition } from './workflow.js';

export type { CompensationContext, JobEvent, Milestone, StepContext, StepOutcome, WorkflowDefinition } from './workflow.js';
export { newJobRecord } from './job-record.js';
export { LeaseLostError } from './lease.js';

export interface JobEngineOptions {
  store: Store;
  clock: Clock;
  logger?: Logger;
  workflows: WorkflowDefinition[];
  /** Lease length on the clock (default 2 min); renewed at every journal write. */
  leaseMs?: number;
  /** Real-time period of the timer that runs due jobs (default 1 s). */
  pollMs?: number;
  /** Attempts per step before compensating (default 5). */
  maxAttempts?: number;
  /** Backoff between attempts on the clock: base × 2^(attempt-1), capped (default 2 s … 60 s). */
  backoff?: { baseMs: number; maxMs: number };
  /** Redo loops allowed per job before it fails (default 3). */
  maxRedos?: number;
  /** Called after an event is journaled: posts to the thread. Audit entries are written before this. */
  onEvent?: (event: JobEvent) => Promise<void>;
  handoff?: SecretHandoff;
  /** How long stop() waits for running steps (real ms, default 10 s). */
  stopTimeoutMs?: number;
  /** Real-time period of the lease renewal while a step runs (default a quarter of leaseMs, at least 1 s). */
  heartbeatMs?: number;
  /** With several replicas only the leader's timer picks up due jobs and runs periodic tasks (default: always). */
  isLeader?: () => boolean;
}
/**
 * Runs jobs: claims them (see lease.ts), runs each claimed one step by step (see job-run.ts), resumes interrupted
 * ones at start and from a timer, and runs periodic tasks on the clock.
 */
export class JobEngine {
  readonly handoff: SecretHandoff;
  private readonly lease: JobLease;
  private readonly workflows = new Map<JobKind, WorkflowDefinition>();
  private readonly inFlight = new Map<string, Promise<JobRecord | undefined>>();
  private readonly periodic: Array<{ name: string; everyMs: number; lastAt: number | undefined; run: (signal: AbortSignal) => Promise<void> }> = [];
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;

  private readonly announcer: ResultAnnouncer;

  constructor(private readonly options: JobEngineOptions) {
    for (const wf of options.workflows) this.workflows.set(wf.kind, wf);
    this.announcer = new ResultAnnouncer({
      store: options.store, clock: options.clock, logger: options.logger, workflows: this.workflows, onEvent: options.onEvent, running: (id) => this.inFlight.has(id),
    });
    this.handoff = options.handoff ?? new SecretHandoff();
    this.lease = new JobLease({
      store: options.store, clock: options.clock, leaseMs: options.leaseMs ?? 120_000, heartbeatMs: options.heartbeatMs, stopSignal: this.abort.signal,
    });
  }

  /** This runner's lease owner: host, pid, nonce and pid space. */
  get owner(): string {
    return this.lease.owner;
  }

  private get store(): Store {
    return this.options.store;
  }

  private now(): number {
    return this.options.clock.now();
  }

  register(workflow: WorkflowDefinition): void {
    this.workflows.set(workflow.kind, workflow);
  }

  /** Runs `run` every `everyMs` of clock time from the timer (e.g. the JIT sweeper). */
  every(name: string, everyMs: number, run: (signal: AbortSignal) => Promise<void>): void {
    this.periodic.push({ name, everyMs, lastAt: undefined, run });
  }

  /** Runs a job now in the background (after a click). Errors are logged, never thrown. */
  kick(jobId: string): void {
    void this.run(jobId).catch((err) => this.options.logger?.error({ err, jobId }, 'job runner failed'));
  }

  /**
   * Claims the job and runs steps until it waits or ends. Returns the job as left, or the stored job untouched
   * when someone else holds it or it is not due.
   */
  run(jobId: string): Promise<JobRecord | undefined> {
    const running = this.inFlight.get(jobId);
    if (running) return running;
    const p = this.runClaimed(jobId).finally(() => this.inFlight.delete(jobId));
    this.inFlight.set(jobId, p);
    return p;
  }

  /** At start-up: picks up every unfinished job that is due or was interrupted, and runs it. */
  async resumeJobs(): Promise<JobRecord[]> {
    const due = this.dueJobIds();
    const results = await Promise.all(due.map((id) => this.run(id)));
    return results.filter((j): j is JobRecord => j !== undefined);
  }

  /** Jobs whose time has come (or whose runner is gone). */
  dueJobIds(): string[] {
    const now = this.now();
    // Through the subject locks (open-jobs.ts): the finished jobs, every one ever run, are never read.
    return lockedJobRecords(this.store)
      .filter((r) => !TERMINAL_STATES.includes(r.value.state) && this.claimable(r.value, now))
      .map((r) => r.id);
  }

  /** One timer pass: due jobs, then periodic tasks whose clock time has come. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    if (this.options.isLeader && !this.options.isLeader()) return;
    this.ticking = true;
    try {
      await Promise.all(this.dueJobIds().map((id) => this.run(id)));
      await this.announcer.pass();
      const now = this.now();
      for (const task of this.periodic) {
        if (task.lastAt !== undefined && now - task.lastAt < task.everyMs) continue;
        task.lastAt = now;
        await task.run(this.abort.signal).catch((err) => this.options.logger?.warn({ err, task: task.name }, 'periodic task failed; will try again'));
      }
    } catch (err) {
      this.options.logger?.error({ err }, 'job timer pass failed; will try again');
    } finally {
      this.ticking = false;
    }
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.tick(), this.options.pollMs ?? 1000);
    this.timer.unref();
  }

  /** Stops the timer, aborts in-flight calls, waits for runners, and releases their leases. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort(new Error('Keywarden is stopping'));
    // Steps honour the abort signal; a step stuck anyway keeps its lease, which expires for the next process.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight.values()]),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.stopTimeoutMs ?? 10_000); }),
    ]);
    clearTimeout(timer);
  }

  /**
   * Stops a parked job for good (rollback during the grace window). Only a job that nobody is running can be
   * cancelled; returns the cancelled job, or undefined when it is running, finished or changed meanwhile.
   */
  cancelWaiting(jobId: string, reason: string): JobRecord | undefined {
    return this.changeWaiting(jobId, (job) => ({
      ...job, state: 'cancelled', finishedAt: this.now(), dueAt: undefined, waitingFor: undefined, error: { message: reason, code: 'CANCELLED' },
    }));
  }

  /**
   * Changes a parked job that nobody is running (e.g. a JIT extension re-opens its steps), by compare-and-set.
   * `change` returns the new job, or undefined to leave it. Returns the stored result, or undefined.
   */
  changeWaiting(jobId: string, change: (job: JobRecord) => JobRecord | undefined): JobRecord | undefined {
    const rec = this.store.get<JobRecord>('jobs', jobId);
    if (!rec || rec.value.state !== 'waiting' || this.inFlight.has(jobId)) return undefined;
    if (this.lease.isLive(rec.value.lease, this.now())) return undefined;
    const next = change(structuredClone(rec.value));
    if (!next) return undefined;
    return this.store.compareAndSet('jobs', jobId, rec.version, { ...next, lease: undefined })?.value;
  }

  private claimable(job: JobRecord, now: number): boolean {
    if (TERMINAL_STATES.includes(job.state)) return false;
    if (this.lease.heldByOther(job, now)) return false;
    if ((job.state === 'waiting' || job.state === 'compensating' || job.state === 'queued') && job.dueAt !== undefined && job.dueAt > now) return false;
    return true;
  }

  private claim(jobId: string): StoredRecord<JobRecord> | undefined {
    const rec = this.store.get<JobRecord>('jobs', jobId);
    if (!rec || !this.claimable(rec.value, this.now())) return undefined;
    return this.lease.take(rec);
  }

  private async runClaimed(jobId: string): Promise<JobRecord | undefined> {
    if (this.stopped) return this.store.get<JobRecord>('jobs', jobId)?.value;
    const claimed = this.claim(jobId);
    if (!claimed) return this.store.get<JobRecord>('jobs', jobId)?.value;
    const box: JobBox = { rec: claimed };
    const wf = this.workflows.get(claimed.value.kind);
    try {
      if (!wf) {
        this.lease.write(box, (j) => {
          j.state = 'failed';
          j.error = { message: `no workflow for job kind "${j.kind}" in this Keywarden version — upgrade or run it from a newer replica`, code: 'UNKNOWN_KIND' };
        }, false);
        return box.rec.value;
      }
      await new JobRun({
        store: this.store, clock: this.options.clock, logger: this.options.logger, lease: this.lease, handoff: this.handoff,
        stopped: () => this.stopped, backoffMs: (attempt) => this.backoffMs(attempt),
        maxAttempts: this.options.maxAttempts, maxRedos: this.options.maxRedos, onEvent: this.options.onEvent,
      }, box, wf).loop();
    } catch (err) {
      if (err instanceof LeaseLostError) {
        this.options.logger?.warn({ jobId }, err.message);
      } else if ((err as { code?: unknown })?.code === STORE_FENCED) {
        // This replica was fenced mid-step: it may write nothing more, and the newer release resumes the job.
        this.options.logger?.warn({ err, jobId }, 'job step cut short: this replica is fenced (a newer release took the store), which resumes the job from its last saved step');
      } else {
        this.options.logger?.error({ err, jobId }, 'job engine error; the job will be resumed');
        // Release the lease so the timer (or another replica) resumes it after the backoff.
        try {
          this.lease.write(box, (j) => {
            j.dueAt = this.now() + this.backoffMs(1);
            j.waitingFor = `resume after an engine error: ${errorText(err)}`;
          }, false);
        } catch { /* lost meanwhile */ }
      }
    }
    return this.store.get<JobRecord>('jobs', jobId)?.value;
  }

  private backoffMs(attempt: number): number {
    const { baseMs, maxMs } = this.options.backoff ?? { baseMs: 2000, maxMs: 60_000 };
    return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  }
}
