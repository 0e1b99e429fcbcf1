/**
 * The job lease: one runner at a time owns a job. It is taken by compare-and-set, renewed at every journal write and
 * by a timer while a step runs, and when a renewal finds the job taken the step is aborted and what it created is
 * undone (the runner that took over never saw it). A lease whose process is provably gone is taken at once.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logging/logger.js';
import type { Store, StoredRecord } from '../../store/store.js';
import { errorText } from './errors.js';
import type { SecretHandoff } from './handoff.js';
import { auditJob } from './job-record.js';
import { formatLeaseOwner, ownerIsGone, thisProcess } from './lease-owner.js';
import { finishPointersFor, writeFinishPointers } from './open-jobs.js';
import type { JobRecord, StepName } from '../../domain/job.js';
import type { StepOutcome, WorkflowDefinition } from './workflow.js';

/** A lease that still keeps others out: not expired, and its process not provably gone. */
export function leaseIsLive(lease: JobRecord['lease'], now: number): boolean {
  return lease !== undefined && lease.until > now && !ownerIsGone(lease.owner);
}

/** This runner lost its lease (another replica took the job): it stops touching the job at once. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly code = 'LEASE_LOST';
  constructor(jobId: string) {
    super(`job ${jobId} is now run by another Keywarden process; this one stopped working on it`);
  }
}

/** The job as this runner last wrote it (each journal write moves it on). */
export interface JobBox {
  rec: StoredRecord<JobRecord>;
}

/** A lease being renewed while a step runs. */
export interface HeldLease {
  /** Aborts when the lease is lost or the engine stops. */
  signal: AbortSignal;
  lost(): boolean;
  release(): void;
}

export interface JobLeaseOptions {
  store: Store;
  clock: Clock;
  /** Lease length on the clock. */
  leaseMs: number;
  /** Real-time period of the renewal while a step runs (default a quarter of leaseMs, at least 1 s). */
  heartbeatMs?: number;
  /** The engine's stop signal: a held lease's step aborts with it. */
  stopSignal: AbortSignal;
}

export class JobLease {
  /** This runner: host, pid, a nonce (two engines in one process differ) and the pid space. */
  readonly owner = formatLeaseOwner(thisProcess());

  constructor(private readonly options: JobLeaseOptions) {}

  private now(): number {
    return this.options.clock.now();
  }

  /** A lease that still keeps others out: not expired, and its process not provably gone. */
  isLive(lease: JobRecord['lease'], now = this.now()): boolean {
    return leaseIsLive(lease, now);
  }

  /** Someone else holds a live lease on the job. */
  heldByOther(job: JobRecord, now = this.now()): boolean {
    return job.lease !== undefined && job.lease.owner !== this.owner && this.isLive(job.lease, now);
  }

  /** Takes the job by compare-and-set on the version read; undefined when someone else wrote it meanwhile. */
  take(rec: StoredRecord<JobRecord>): StoredRecord<JobRecord> | undefined {
    const next: JobRecord = { ...rec.value, lease: { owner: this.owner, until: this.now() + this.options.leaseMs } };
    return this.options.store.compareAndSet('jobs', rec.id, rec.version, next);
  }

  /** Journal write under the lease: compare-and-set on the version this runner last wrote. */
  write(box: JobBox, mutate: (job: JobRecord) => void, keepLease = true): StoredRecord<JobRecord> {
    const job = structuredClone(box.rec.value);
    mutate(job);
    job.lease = keepLease ? this.renewed() : undefined;
    const { store } = this.options;
    const before = box.rec.value.state;
    // A job that just finished leaves its pointers in the same transaction (open-jobs.ts): readers never list the jobs.
    // Other journal writes stay a single compare-and-set (on Azure Tables a transaction would read the row first).
    const out = !finishPointersFor(before, job) ? store.compareAndSet('jobs', box.rec.id, box.rec.version, job) : store.transaction(() => {
      const written = store.compareAndSet('jobs', box.rec.id, box.rec.version, job);
      if (written) writeFinishPointers(store, before, written.value);
      return written;
    });
    if (!out) throw new LeaseLostError(box.rec.id);
    box.rec = out;
    return out;
  }

  /** This runner's lease from now on. */
  renewed(): { owner: string; until: number } {
    return { owner: this.owner, until: this.now() + this.options.leaseMs };
  }

  /**
   * Renews the lease while a step runs (a slow step must not look like a dead runner). When the renewal finds the
   * job taken, the step's signal aborts at once: another runner owns the job now.
   */
  hold(box: JobBox): HeldLease {
    const step = new AbortController();
    const stop = this.options.stopSignal;
    let lost = false;
    const onStop = () => step.abort(stop.reason);
    stop.addEventListener('abort', onStop, { once: true });
    const beat = setInterval(() => {
      try {
        this.write(box, () => undefined);
      } catch (err) {
        if (!(err instanceof LeaseLostError)) return; // a busy store: try again at the next beat
        lost = true;
        clearInterval(beat);
        step.abort(err);
      }
    }, this.options.heartbeatMs ?? Math.max(1000, this.options.leaseMs / 4));
    beat.unref();
    return {
      signal: step.signal,
      lost: () => lost,
      release: () => {
        clearInterval(beat);
        stop.removeEventListener('abort', onStop);
      },
    };
  }
}

/**
 * This runner lost the job while its step ran (it stalled past its lease): what the step created was never
 * journaled, and the runner that took over cannot use it (it never saw the value), so undo it here.
 */
export async function discardLostStep(input: {
  store: Store;
  logger?: Logger;
  handoff: SecretHandoff;
  box: JobBox;
  workflow: WorkflowDefinition;
  step: StepName;
  outcome: StepOutcome;
}): Promise<void> {
  const { store, logger, box, workflow, step, outcome } = input;
  const facts = outcome.kind === 'done' ? outcome.facts : undefined;
  input.handoff.clear(box.rec.id);
  if (!facts || !workflow.discard) return;
  try {
    const undone = await workflow.discard(step, facts, { job: box.rec.value, signal: AbortSignal.timeout(60_000) });
    auditJob(store, box.rec.value, `job.step.${step}.discarded`, 'info', { reason: 'another runner took the job over while this step ran', facts: undone });
    logger?.warn({ jobId: box.rec.id, step, undone }, 'another Keywarden process took this job over while the step ran; undid what the step created');
  } catch (err) {
    auditJob(store, box.rec.value, `job.step.${step}.discarded`, 'failed', { error: errorText(err), facts });
    logger?.error({ err, jobId: box.rec.id, step, facts }, 'lost the job mid-step and could not undo what the step created — check it by hand');
  }
}
