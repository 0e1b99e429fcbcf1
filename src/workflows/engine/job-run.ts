/**
 * One claimed job, run step by step under its lease: each step is journaled "started" before it acts and its
 * outcome is journaled before the next one starts; failures retry with backoff or compensate; a finished job is
 * audited before the thread hears about it.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logging/logger.js';
import type { AuditEntry, Store } from '../../store/store.js';
import { errorCode, errorText, isRetryable } from './errors.js';
import type { SecretHandoff } from './handoff.js';
import { auditJob } from './job-record.js';
import { discardLostStep, LeaseLostError, type JobBox, type JobLease } from './lease.js';
import { planHash } from '../../domain/plan.js';
import { TERMINAL_STATES, type JobRecord, type StepName } from '../../domain/job.js';
import type { JobEvent, Milestone, StepContext, StepOutcome, WorkflowDefinition } from './workflow.js';

/** What a run needs from its engine. */
export interface JobRunEnvironment {
  store: Store;
  clock: Clock;
  logger?: Logger;
  lease: JobLease;
  handoff: SecretHandoff;
  /** The engine is stopping: hand the job back instead of starting another step. */
  stopped(): boolean;
  backoffMs(attempt: number): number;
  maxAttempts?: number;
  maxRedos?: number;
  onEvent?: (event: JobEvent) => Promise<void>;
}

export class JobRun {
  constructor(
    private readonly env: JobRunEnvironment,
    private readonly box: JobBox,
    private readonly wf: WorkflowDefinition,
  ) {}

  private get lease(): JobLease {
    return this.env.lease;
  }

  private now(): number {
    return this.env.clock.now();
  }

  private audit(job: JobRecord, action: string, result: AuditEntry['result'], details: Record<string, unknown> = {}): void {
    auditJob(this.env.store, job, action, result, details);
  }

  async loop(): Promise<void> {
    for (;;) {
      if (this.env.stopped()) {
        this.lease.write(this.box, () => undefined, false); // hand the job back
        return;
      }
      const job = this.box.rec.value;
      if (TERMINAL_STATES.includes(job.state)) return;
      if (job.state === 'compensating') return this.compensate();
      const index = job.steps.findIndex((s) => s.status !== 'done');
      if (index === -1) return this.finish('done');
      // The plan that runs must be the plan that was approved (its hash was shown on the card and stored).
      if (planHash(job.plan) !== job.planHash) {
        await this.apply(index, { kind: 'stop', reason: 'the stored plan does not match the approved plan hash; nothing was done — approve again' });
        return;
      }
      const before = job.steps[index]!;
      const resumed = before.status === 'started' || before.status === 'failed';
      // Journal first: the step is "started" (with its attempt number) before anything touches a cloud.
      this.lease.write(this.box, (j) => {
        const s = j.steps[index]!;
        s.status = 'started';
        s.attempts += 1;
        s.startedAt = this.now();
        j.state = 'running';
        j.dueAt = undefined;
        j.waitingFor = undefined;
      });
      const step = this.box.rec.value.steps[index]!;
      this.audit(this.box.rec.value, `job.step.${step.name}.started`, 'info', { attempt: step.attempts, resumed });
      const held = this.lease.hold(this.box);
      const ctx: StepContext = {
        job: this.box.rec.value, step, resumed, signal: held.signal, handoff: this.env.handoff,
        now: () => this.now(),
        checkpoint: (facts, note) => {
          this.lease.write(this.box, (j) => {
            Object.assign(j.facts, facts);
            if (note) (j.steps[index]!.notes ??= []).push(note);
          });
        },
      };
      let outcome: StepOutcome;
      try {
        outcome = await this.wf.run(step.name, ctx);
      } catch (err) {
        if (err instanceof LeaseLostError || held.lost()) throw new LeaseLostError(this.box.rec.id);
        if (this.env.stopped()) return this.handBack(`job.step.${step.name}.interrupted`, err);
        const max = this.wf.maxAttempts?.[step.name] ?? this.env.maxAttempts ?? 5;
        const message = errorText(err);
        const attempts = this.box.rec.value.steps[index]!.attempts;
        if (isRetryable(err) && attempts < max && !this.env.stopped()) {
          const delay = (err as { options?: { retryAfterMs?: number } }).options?.retryAfterMs ?? this.env.backoffMs(attempts);
          this.lease.write(this.box, (j) => {
            const s = j.steps[index]!;
            s.status = 'failed';
            s.error = message;
            j.state = 'waiting';
            j.dueAt = this.now() + delay;
            j.waitingFor = `retry ${attempts + 1} of ${max} (${step.name}: ${message})`;
          }, false);
          this.audit(this.box.rec.value, `job.step.${step.name}.failed`, 'failed', { attempt: attempts, error: message, retryInMs: delay });
          return;
        }
        this.lease.write(this.box, (j) => {
          const s = j.steps[index]!;
          s.status = 'failed';
          s.error = message;
          s.finishedAt = this.now();
          j.state = 'compensating';
          j.error = { step: step.name, message, code: errorCode(err) };
          j.compensation = { status: 'started', attempts: 0 };
        });
        this.audit(this.box.rec.value, `job.step.${step.name}.failed`, 'failed', { attempt: attempts, error: message, final: true });
        continue;
      } finally {
        held.release();
      }
      if (held.lost()) {
        await this.discard(step.name, outcome);
        throw new LeaseLostError(this.box.rec.id);
      }
      if (await this.apply(index, outcome)) return;
    }
  }

  /** Lost the job mid-step: undo what the step created (the runner that took over never saw it). */
  private discard(step: StepName, outcome: StepOutcome): Promise<void> {
    return discardLostStep({ store: this.env.store, logger: this.env.logger, handoff: this.env.handoff, box: this.box, workflow: this.wf, step, outcome });
  }

  /** Journals a step's outcome. Returns true when the runner should stop (waiting or terminal). */
  private async apply(index: number, outcome: StepOutcome): Promise<boolean> {
    const name = this.box.rec.value.steps[index]!.name;
    switch (outcome.kind) {
      case 'done': {
        try {
          this.lease.write(this.box, (j) => {
            const s = j.steps[index]!;
            s.status = 'done';
            s.finishedAt = this.now();
            s.error = undefined;
            if (outcome.facts) s.result = { ...outcome.facts };
            if (outcome.note) (s.notes ??= []).push(outcome.note);
            Object.assign(j.facts, outcome.facts ?? {});
          });
        } catch (err) {
          if (err instanceof LeaseLostError) await this.discard(name, outcome);
          throw err;
        }
        this.audit(this.box.rec.value, `job.step.${name}.done`, 'ok', { facts: outcome.facts ?? {}, note: outcome.note });
        if (outcome.milestone) await this.emitMilestone(outcome.milestone);
        return false;
      }
      case 'wait': {
        this.lease.write(this.box, (j) => {
          const s = j.steps[index]!;
          s.status = 'pending';
          if (outcome.note) (s.notes ??= []).push(outcome.note);
          Object.assign(j.facts, outcome.facts ?? {});
          j.state = 'waiting';
          j.dueAt = outcome.until;
          j.waitingFor = outcome.reason;
        }, false);
        this.audit(this.box.rec.value, `job.waiting`, 'info', { step: name, until: outcome.until, reason: outcome.reason });
        if (outcome.milestone) await this.emitMilestone(outcome.milestone, false);
        return true;
      }
      case 'redo': {
        const from = this.box.rec.value.steps.findIndex((s) => s.name === outcome.from);
        const redos = Number(this.box.rec.value.facts.redos ?? 0) + 1;
        if (from < 0 || from > index || redos > (this.env.maxRedos ?? 3)) {
          this.lease.write(this.box, (j) => {
            j.state = 'compensating';
            j.error = { step: name, message: `${outcome.note} — gave up after ${redos - 1} redo(s)`, code: 'TOO_MANY_REDOS' };
            j.compensation = { status: 'started', attempts: 0 };
          });
          return false;
        }
        this.lease.write(this.box, (j) => {
          Object.assign(j.facts, outcome.facts ?? {}, { redos });
          for (let i = from; i <= index; i++) {
            const s = j.steps[i]!;
            s.status = 'pending';
            s.result = undefined;
            (s.notes ??= []).push(i === index ? outcome.note : `redo requested by ${name}: ${outcome.note}`);
          }
        });
        this.audit(this.box.rec.value, `job.step.${name}.redo`, 'info', { from: outcome.from, note: outcome.note });
        return false;
      }
      case 'stop': {
        this.lease.write(this.box, (j) => {
          const s = j.steps[index]!;
          s.status = 'failed';
          s.error = outcome.reason;
          s.finishedAt = this.now();
          Object.assign(j.facts, outcome.facts ?? {});
          j.error = { step: name, message: outcome.reason, code: 'STOPPED' };
        });
        await this.finish('cancelled');
        return true;
      }
    }
  }

  private async compensate(): Promise<void> {
    const resumed = this.box.rec.value.compensation?.status === 'started' && (this.box.rec.value.compensation.attempts ?? 0) > 0;
    this.lease.write(this.box, (j) => {
      j.compensation = { ...(j.compensation ?? { status: 'started', attempts: 0 }), status: 'started', attempts: (j.compensation?.attempts ?? 0) + 1 };
      j.dueAt = undefined;
    });
    const attempts = this.box.rec.value.compensation!.attempts;
    this.audit(this.box.rec.value, 'job.compensation.started', 'info', { attempt: attempts, reason: this.box.rec.value.error?.message });
    const held = this.lease.hold(this.box);
    try {
      const result = await this.wf.compensate({ job: this.box.rec.value, resumed, signal: held.signal, handoff: this.env.handoff, now: () => this.now() }).finally(() => held.release());
      if (held.lost()) throw new LeaseLostError(this.box.rec.id);
      this.lease.write(this.box, (j) => {
        j.compensation = { status: 'done', attempts, result };
      });
      this.audit(this.box.rec.value, 'job.compensation.done', 'ok', { facts: result });
      await this.finish('compensated');
    } catch (err) {
      if (err instanceof LeaseLostError || held.lost()) throw new LeaseLostError(this.box.rec.id);
      if (this.env.stopped()) return this.handBack('job.compensation.interrupted', err);
      const message = errorText(err);
      if (isRetryable(err) && attempts < (this.env.maxAttempts ?? 5)) {
        this.lease.write(this.box, (j) => {
          j.compensation = { status: 'started', attempts, error: message };
          j.dueAt = this.now() + this.env.backoffMs(attempts);
          j.waitingFor = `compensation retry ${attempts + 1} (${message})`;
        }, false);
        this.audit(this.box.rec.value, 'job.compensation.failed', 'failed', { attempt: attempts, error: message, retrying: true });
        return;
      }
      this.lease.write(this.box, (j) => {
        j.compensation = { status: 'failed', attempts, error: message };
      });
      this.audit(this.box.rec.value, 'job.compensation.failed', 'failed', { attempt: attempts, error: message, final: true });
      await this.finish('failed');
    }
  }

  /**
   * Keywarden is stopping and the step (or compensation) was cut short: nothing is journaled as failed. The step stays
   * "started", exactly as after a crash, and the next process resumes it; only the lease is given back, so it need not wait.
   */
  private handBack(action: string, err: unknown): void {
    this.lease.write(this.box, () => undefined, false);
    this.audit(this.box.rec.value, action, 'info', { reason: errorText(err) });
    this.env.logger?.info({ jobId: this.box.rec.id }, 'Keywarden is stopping: the job is handed back and resumes at the next start');
  }

  private async finish(state: 'done' | 'compensated' | 'failed' | 'cancelled'): Promise<void> {
    // The lease is kept until the result is posted: another replica's announcer leaves a result alone while it is held.
    this.lease.write(this.box, (j) => {
      j.state = state;
      j.finishedAt = this.now();
      j.dueAt = undefined;
      j.waitingFor = undefined;
    });
    this.env.handoff.clear(this.box.rec.id);
    const job = this.box.rec.value;
    const text = this.wf.summarize(job);
    // Audit first: the thread never says "done" before the audit log does.
    this.audit(job, `job.${state}`, state === 'done' ? 'ok' : state === 'cancelled' ? 'refused' : 'failed', {
      facts: job.facts, error: job.error?.message, summary: text,
    });
    const card = this.wf.finishCard?.(job);
    await this.emit({ type: 'finished', job, text, ...(card ? { card } : {}) }, 'finished', false, true);
  }

  private async emitMilestone(milestone: Milestone, keepLease = true): Promise<void> {
    if (this.box.rec.value.posted.includes(milestone.key)) return;
    await this.emit({ type: 'milestone', job: this.box.rec.value, milestone }, milestone.key, keepLease);
  }

  /** Posts an update and records it; `release` gives the lease back afterwards, whether or not the post went through. */
  private async emit(event: JobEvent, key: string, keepLease = false, release = false): Promise<void> {
    let posted = false;
    if (this.env.onEvent) {
      try {
        await this.env.onEvent(event);
        posted = true;
      } catch (err) {
        this.env.logger?.warn({ err, jobId: this.box.rec.id }, 'could not post the job update to the thread');
      }
    }
    // Remember what was posted; a lost write here only risks a duplicate message, never a duplicate action.
    const fresh = this.env.store.get<JobRecord>('jobs', this.box.rec.id);
    if (!fresh) return;
    const ours = fresh.value.lease?.owner === this.lease.owner;
    const record = posted && !fresh.value.posted.includes(key);
    if (!record && !(release && ours)) return;
    const next = { ...fresh.value, posted: record ? [...fresh.value.posted, key] : fresh.value.posted };
    if (release && ours) next.lease = undefined;
    else if (keepLease && ours) next.lease = this.lease.renewed();
    const out = this.env.store.compareAndSet('jobs', this.box.rec.id, fresh.version, next);
    if (out && fresh.version === this.box.rec.version) this.box.rec = out;
  }
}
