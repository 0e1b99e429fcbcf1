/**
 * The job engine. Every step is journaled (status "started", attempt count) in the job record BEFORE it acts,
 * and its result is journaled before the next one starts. A runner holds a lease (owner + expiry) taken by
 * compare-and-set and renewed while a step runs; a crashed runner's job is picked up by `resumeJobs()` at start, or
 * by any replica once the lease expires (or at once when the lease's process on this host is gone). A runner that
 * loses its lease mid-step aborts the step, and undoes what the step created but could not journal. Steps reconcile with real state
 * when they are entered again. Retries are bounded and back off on the injected clock; a permanent failure
 * runs the workflow's compensation.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import type { Logger } from '../logging/logger.js';
import type { AuditEntry, Store, StoredRecord } from '../store/store.js';
import { errorCode, errorText, isRetryable } from './errors.js';
import { SecretHandoff } from './handoff.js';
import { planHash } from './plan.js';
import { TERMINAL_STATES, type JobKind, type JobRecord, type StepName } from './types.js';
import type { JobEvent, Milestone, StepContext, StepOutcome, WorkflowDefinition } from './workflow.js';

export type { CompensationContext, JobEvent, Milestone, StepContext, StepOutcome, WorkflowDefinition } from './workflow.js';
export { newJobRecord } from './job-record.js';

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
  /** Test hook (KEYWARDEN_TEST_CRASH_AFTER): after journaling this step's result, announce and hang until killed. */
  testCrashAfter?: StepName;
  handoff?: SecretHandoff;
  /** How long stop() waits for running steps (real ms, default 10 s). */
  stopTimeoutMs?: number;
  /** Real-time period of the lease renewal while a step runs (default a quarter of leaseMs, at least 1 s). */
  heartbeatMs?: number;
}

/** This runner lost its lease (another replica took the job): it stops touching the job at once. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly code = 'LEASE_LOST';
  constructor(jobId: string) {
    super(`job ${jobId} is now run by another Keywarden process; this one stopped working on it`);
  }
}

export const TEST_CRASH_MARKER = 'KEYWARDEN_TEST_CRASH_POINT';

interface Box {
  rec: StoredRecord<JobRecord>;
}

export class JobEngine {
  readonly owner = `${hostname()}|${process.pid}|${randomUUID().slice(0, 8)}`;
  readonly handoff: SecretHandoff;
  private readonly workflows = new Map<JobKind, WorkflowDefinition>();
  private readonly inFlight = new Map<string, Promise<JobRecord | undefined>>();
  private readonly periodic: Array<{ name: string; everyMs: number; lastAt: number | undefined; run: (signal: AbortSignal) => Promise<void> }> = [];
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;

  constructor(private readonly options: JobEngineOptions) {
    for (const wf of options.workflows) this.workflows.set(wf.kind, wf);
    this.handoff = options.handoff ?? new SecretHandoff();
  }

  private get store(): Store {
    return this.options.store;
  }

  private now(): number {
    return this.options.clock.now();
  }

  private get leaseMs(): number {
    return this.options.leaseMs ?? 120_000;
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
    return this.store.list<JobRecord>('jobs')
      .filter((r) => !TERMINAL_STATES.includes(r.value.state) && this.claimable(r.value, now))
      .map((r) => r.id);
  }

  /** One timer pass: due jobs, then periodic tasks whose clock time has come. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      await Promise.all(this.dueJobIds().map((id) => this.run(id)));
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
    if (rec.value.lease && rec.value.lease.until > this.now() && !this.ownerIsGone(rec.value.lease.owner)) return undefined;
    const next = change(structuredClone(rec.value));
    if (!next) return undefined;
    return this.store.compareAndSet('jobs', jobId, rec.version, { ...next, lease: undefined })?.value;
  }

  // ---- claiming -------------------------------------------------------------------------------------------

  private claimable(job: JobRecord, now: number): boolean {
    if (TERMINAL_STATES.includes(job.state)) return false;
    if (job.lease && job.lease.owner !== this.owner && job.lease.until > now && !this.ownerIsGone(job.lease.owner)) return false;
    if ((job.state === 'waiting' || job.state === 'compensating' || job.state === 'queued') && job.dueAt !== undefined && job.dueAt > now) return false;
    return true;
  }

  /** A lease whose process on this host no longer exists can be taken at once (a crash, not a slow peer). */
  private ownerIsGone(owner: string): boolean {
    const [host, pidText] = owner.split('|');
    const pid = Number(pidText);
    if (host !== hostname() || !Number.isInteger(pid) || pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  private claim(jobId: string): StoredRecord<JobRecord> | undefined {
    const rec = this.store.get<JobRecord>('jobs', jobId);
    if (!rec || !this.claimable(rec.value, this.now())) return undefined;
    const next: JobRecord = { ...rec.value, lease: { owner: this.owner, until: this.now() + this.leaseMs } };
    return this.store.compareAndSet('jobs', jobId, rec.version, next);
  }

  /** Journal write under the lease: compare-and-set on the version this runner last wrote. */
  private write(box: Box, mutate: (job: JobRecord) => void, keepLease = true): StoredRecord<JobRecord> {
    const job = structuredClone(box.rec.value);
    mutate(job);
    job.lease = keepLease ? { owner: this.owner, until: this.now() + this.leaseMs } : undefined;
    const out = this.store.compareAndSet('jobs', box.rec.id, box.rec.version, job);
    if (!out) throw new LeaseLostError(box.rec.id);
    box.rec = out;
    return out;
  }

  private audit(job: JobRecord, action: string, result: AuditEntry['result'], details: Record<string, unknown> = {}): void {
    this.store.appendAudit({
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

  // ---- running --------------------------------------------------------------------------------------------

  private async runClaimed(jobId: string): Promise<JobRecord | undefined> {
    if (this.stopped) return this.store.get<JobRecord>('jobs', jobId)?.value;
    const claimed = this.claim(jobId);
    if (!claimed) return this.store.get<JobRecord>('jobs', jobId)?.value;
    const box: Box = { rec: claimed };
    const wf = this.workflows.get(claimed.value.kind);
    try {
      if (!wf) {
        this.write(box, (j) => {
          j.state = 'failed';
          j.error = { message: `no workflow for job kind "${j.kind}" in this Keywarden version — upgrade or run it from a newer replica`, code: 'UNKNOWN_KIND' };
        }, false);
        return box.rec.value;
      }
      await this.loop(box, wf);
    } catch (err) {
      if (err instanceof LeaseLostError) {
        this.options.logger?.warn({ jobId }, err.message);
      } else {
        this.options.logger?.error({ err, jobId }, 'job engine error; the job will be resumed');
        // Release the lease so the timer (or another replica) resumes it after the backoff.
        try {
          this.write(box, (j) => {
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

  private async loop(box: Box, wf: WorkflowDefinition): Promise<void> {
    for (;;) {
      if (this.stopped) {
        this.write(box, () => undefined, false); // hand the job back
        return;
      }
      const job = box.rec.value;
      if (TERMINAL_STATES.includes(job.state)) return;
      if (job.state === 'compensating') return this.compensate(box, wf);
      const index = job.steps.findIndex((s) => s.status !== 'done');
      if (index === -1) return this.finish(box, wf, 'done');
      // The plan that runs must be the plan that was approved (its hash was shown on the card and stored).
      if (planHash(job.plan) !== job.planHash) {
        await this.apply(box, wf, index, { kind: 'stop', reason: 'the stored plan does not match the approved plan hash; nothing was done — approve again' });
        return;
      }
      const before = job.steps[index]!;
      const resumed = before.status === 'started' || before.status === 'failed';
      // Journal first: the step is "started" (with its attempt number) before anything touches a cloud.
      this.write(box, (j) => {
        const s = j.steps[index]!;
        s.status = 'started';
        s.attempts += 1;
        s.startedAt = this.now();
        j.state = 'running';
        j.dueAt = undefined;
        j.waitingFor = undefined;
      });
      const step = box.rec.value.steps[index]!;
      this.audit(box.rec.value, `job.step.${step.name}.started`, 'info', { attempt: step.attempts, resumed });
      const held = this.holdLease(box);
      const ctx: StepContext = {
        job: box.rec.value, step, resumed, signal: held.signal, handoff: this.handoff,
        now: () => this.now(),
        checkpoint: (facts, note) => {
          this.write(box, (j) => {
            Object.assign(j.facts, facts);
            if (note) (j.steps[index]!.notes ??= []).push(note);
          });
        },
      };
      let outcome: StepOutcome;
      try {
        outcome = await wf.run(step.name, ctx);
      } catch (err) {
        if (err instanceof LeaseLostError || held.lost()) throw new LeaseLostError(box.rec.id);
        const max = wf.maxAttempts?.[step.name] ?? this.options.maxAttempts ?? 5;
        const message = errorText(err);
        const attempts = box.rec.value.steps[index]!.attempts;
        if (isRetryable(err) && attempts < max && !this.stopped) {
          const delay = (err as { options?: { retryAfterMs?: number } }).options?.retryAfterMs ?? this.backoffMs(attempts);
          this.write(box, (j) => {
            const s = j.steps[index]!;
            s.status = 'failed';
            s.error = message;
            j.state = 'waiting';
            j.dueAt = this.now() + delay;
            j.waitingFor = `retry ${attempts + 1} of ${max} (${step.name}: ${message})`;
          }, false);
          this.audit(box.rec.value, `job.step.${step.name}.failed`, 'failed', { attempt: attempts, error: message, retryInMs: delay });
          return;
        }
        this.write(box, (j) => {
          const s = j.steps[index]!;
          s.status = 'failed';
          s.error = message;
          s.finishedAt = this.now();
          j.state = 'compensating';
          j.error = { step: step.name, message, code: errorCode(err) };
          j.compensation = { status: 'started', attempts: 0 };
        });
        this.audit(box.rec.value, `job.step.${step.name}.failed`, 'failed', { attempt: attempts, error: message, final: true });
        continue;
      } finally {
        held.release();
      }
      if (held.lost()) {
        await this.discard(box, wf, step.name, outcome);
        throw new LeaseLostError(box.rec.id);
      }
      if (await this.apply(box, wf, index, outcome)) return;
    }
  }

  /**
   * Renews the lease while a step runs (a slow step must not look like a dead runner). When the renewal finds the
   * job taken, the step's signal aborts at once: another runner owns the job now.
   */
  private holdLease(box: Box): { signal: AbortSignal; lost(): boolean; release(): void } {
    const step = new AbortController();
    let lost = false;
    const onStop = () => step.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const beat = setInterval(() => {
      try {
        this.write(box, () => undefined);
      } catch (err) {
        if (!(err instanceof LeaseLostError)) return; // a busy store: try again at the next beat
        lost = true;
        clearInterval(beat);
        step.abort(err);
      }
    }, this.options.heartbeatMs ?? Math.max(1000, this.leaseMs / 4));
    beat.unref();
    return {
      signal: step.signal,
      lost: () => lost,
      release: () => {
        clearInterval(beat);
        this.abort.signal.removeEventListener('abort', onStop);
      },
    };
  }

  /**
   * This runner lost the job while its step ran (it stalled past its lease): what the step created was never
   * journaled, and the runner that took over cannot use it (it never saw the value), so undo it here.
   */
  private async discard(box: Box, wf: WorkflowDefinition, step: StepName, outcome: StepOutcome): Promise<void> {
    const facts = outcome.kind === 'done' ? outcome.facts : undefined;
    this.handoff.clear(box.rec.id);
    if (!facts || !wf.discard) return;
    try {
      const undone = await wf.discard(step, facts, { job: box.rec.value, signal: AbortSignal.timeout(60_000) });
      this.audit(box.rec.value, `job.step.${step}.discarded`, 'info', { reason: 'another runner took the job over while this step ran', facts: undone });
      this.options.logger?.warn({ jobId: box.rec.id, step, undone }, 'another Keywarden process took this job over while the step ran; undid what the step created');
    } catch (err) {
      this.audit(box.rec.value, `job.step.${step}.discarded`, 'failed', { error: errorText(err), facts });
      this.options.logger?.error({ err, jobId: box.rec.id, step, facts }, 'lost the job mid-step and could not undo what the step created — check it by hand');
    }
  }

  /** Journals a step's outcome. Returns true when the runner should stop (waiting or terminal). */
  private async apply(box: Box, wf: WorkflowDefinition, index: number, outcome: StepOutcome): Promise<boolean> {
    const name = box.rec.value.steps[index]!.name;
    switch (outcome.kind) {
      case 'done': {
        try {
          this.write(box, (j) => {
            const s = j.steps[index]!;
            s.status = 'done';
            s.finishedAt = this.now();
            s.error = undefined;
            if (outcome.facts) s.result = { ...outcome.facts };
            if (outcome.note) (s.notes ??= []).push(outcome.note);
            Object.assign(j.facts, outcome.facts ?? {});
          });
        } catch (err) {
          if (err instanceof LeaseLostError) await this.discard(box, wf, name, outcome);
          throw err;
        }
        this.audit(box.rec.value, `job.step.${name}.done`, 'ok', { facts: outcome.facts ?? {}, note: outcome.note });
        if (this.options.testCrashAfter === name) await this.hangForTest(name);
        if (outcome.milestone) await this.emitMilestone(box, outcome.milestone);
        return false;
      }
      case 'wait': {
        this.write(box, (j) => {
          const s = j.steps[index]!;
          s.status = 'pending';
          if (outcome.note) (s.notes ??= []).push(outcome.note);
          Object.assign(j.facts, outcome.facts ?? {});
          j.state = 'waiting';
          j.dueAt = outcome.until;
          j.waitingFor = outcome.reason;
        }, false);
        this.audit(box.rec.value, `job.waiting`, 'info', { step: name, until: outcome.until, reason: outcome.reason });
        if (outcome.milestone) await this.emitMilestone(box, outcome.milestone, false);
        return true;
      }
      case 'redo': {
        const from = box.rec.value.steps.findIndex((s) => s.name === outcome.from);
        const redos = Number(box.rec.value.facts.redos ?? 0) + 1;
        if (from < 0 || from > index || redos > (this.options.maxRedos ?? 3)) {
          this.write(box, (j) => {
            j.state = 'compensating';
            j.error = { step: name, message: `${outcome.note} — gave up after ${redos - 1} redo(s)`, code: 'TOO_MANY_REDOS' };
            j.compensation = { status: 'started', attempts: 0 };
          });
          return false;
        }
        this.write(box, (j) => {
          Object.assign(j.facts, outcome.facts ?? {}, { redos });
          for (let i = from; i <= index; i++) {
            const s = j.steps[i]!;
            s.status = 'pending';
            s.result = undefined;
            (s.notes ??= []).push(i === index ? outcome.note : `redo requested by ${name}: ${outcome.note}`);
          }
        });
        this.audit(box.rec.value, `job.step.${name}.redo`, 'info', { from: outcome.from, note: outcome.note });
        return false;
      }
      case 'stop': {
        this.write(box, (j) => {
          const s = j.steps[index]!;
          s.status = 'failed';
          s.error = outcome.reason;
          s.finishedAt = this.now();
          Object.assign(j.facts, outcome.facts ?? {});
          j.error = { step: name, message: outcome.reason, code: 'STOPPED' };
        });
        await this.finish(box, wf, 'cancelled');
        return true;
      }
    }
  }

  private async compensate(box: Box, wf: WorkflowDefinition): Promise<void> {
    const resumed = box.rec.value.compensation?.status === 'started' && (box.rec.value.compensation.attempts ?? 0) > 0;
    this.write(box, (j) => {
      j.compensation = { ...(j.compensation ?? { status: 'started', attempts: 0 }), status: 'started', attempts: (j.compensation?.attempts ?? 0) + 1 };
      j.dueAt = undefined;
    });
    const attempts = box.rec.value.compensation!.attempts;
    this.audit(box.rec.value, 'job.compensation.started', 'info', { attempt: attempts, reason: box.rec.value.error?.message });
    const held = this.holdLease(box);
    try {
      const result = await wf.compensate({ job: box.rec.value, resumed, signal: held.signal, handoff: this.handoff, now: () => this.now() }).finally(() => held.release());
      if (held.lost()) throw new LeaseLostError(box.rec.id);
      this.write(box, (j) => {
        j.compensation = { status: 'done', attempts, result };
      });
      this.audit(box.rec.value, 'job.compensation.done', 'ok', { facts: result });
      await this.finish(box, wf, 'compensated');
    } catch (err) {
      if (err instanceof LeaseLostError || held.lost()) throw new LeaseLostError(box.rec.id);
      const message = errorText(err);
      if (isRetryable(err) && attempts < (this.options.maxAttempts ?? 5) && !this.stopped) {
        this.write(box, (j) => {
          j.compensation = { status: 'started', attempts, error: message };
          j.dueAt = this.now() + this.backoffMs(attempts);
          j.waitingFor = `compensation retry ${attempts + 1} (${message})`;
        }, false);
        this.audit(box.rec.value, 'job.compensation.failed', 'failed', { attempt: attempts, error: message, retrying: true });
        return;
      }
      this.write(box, (j) => {
        j.compensation = { status: 'failed', attempts, error: message };
      });
      this.audit(box.rec.value, 'job.compensation.failed', 'failed', { attempt: attempts, error: message, final: true });
      await this.finish(box, wf, 'failed');
    }
  }

  private async finish(box: Box, wf: WorkflowDefinition, state: 'done' | 'compensated' | 'failed' | 'cancelled'): Promise<void> {
    this.write(box, (j) => {
      j.state = state;
      j.finishedAt = this.now();
      j.dueAt = undefined;
      j.waitingFor = undefined;
    }, false);
    this.handoff.clear(box.rec.id);
    const job = box.rec.value;
    const text = wf.summarize(job);
    // Audit first: the thread never says "done" before the audit log does.
    this.audit(job, `job.${state}`, state === 'done' ? 'ok' : state === 'cancelled' ? 'refused' : 'failed', {
      facts: job.facts, error: job.error?.message, summary: text,
    });
    await this.emit({ type: 'finished', job, text }, box, 'finished');
  }

  private async emitMilestone(box: Box, milestone: Milestone, keepLease = true): Promise<void> {
    if (box.rec.value.posted.includes(milestone.key)) return;
    await this.emit({ type: 'milestone', job: box.rec.value, milestone }, box, milestone.key, keepLease);
  }

  private async emit(event: JobEvent, box: Box, key: string, keepLease = false): Promise<void> {
    if (!this.options.onEvent) return;
    try {
      await this.options.onEvent(event);
    } catch (err) {
      this.options.logger?.warn({ err, jobId: box.rec.id }, 'could not post the job update to the thread');
      return;
    }
    // Remember what was posted; a lost write here only risks a duplicate message, never a duplicate action.
    const fresh = this.store.get<JobRecord>('jobs', box.rec.id);
    if (!fresh || fresh.value.posted.includes(key)) return;
    const next = { ...fresh.value, posted: [...fresh.value.posted, key] };
    if (keepLease && fresh.value.lease?.owner === this.owner) next.lease = { owner: this.owner, until: this.now() + this.leaseMs };
    const out = this.store.compareAndSet('jobs', box.rec.id, fresh.version, next);
    if (out && fresh.version === box.rec.version) box.rec = out;
  }

  private async hangForTest(step: StepName): Promise<never> {
    process.stderr.write(`${TEST_CRASH_MARKER} after=${step}\n`);
    // Waits to be killed: the journal already holds the step's result, the next step has not started.
    return new Promise<never>(() => undefined);
  }
}

