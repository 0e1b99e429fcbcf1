import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock, HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { WorkflowError } from '../../src/workflows/engine/errors.js';
import { JobEngine, newJobRecord, type StepContext, type StepOutcome, type WorkflowDefinition } from '../../src/workflows/engine/journal.js';
import { planHash } from '../../src/domain/plan.js';
import type { JobRecord, StepName } from '../../src/domain/job.js';

/**
 * The engine with a small workflow written for the test: the "cloud" is a counter of actions, which is exactly
 * what the engine promises about (each step acts once per success, journaled first, compensated on failure).
 */

const stores: Store[] = [];
const engines: JobEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
  for (const s of stores.splice(0)) s.close();
});

function setup(behaviour: Partial<Record<StepName, (ctx: StepContext) => Promise<StepOutcome>>> = {}) {
  const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 4, 4, 12) });
  const store = openSqliteStore({ path: ':memory:', clock });
  stores.push(store);
  const acted: string[] = [];
  const seenStatus: Record<string, string> = {};
  const compensations: number[] = [];
  const workflow: WorkflowDefinition = {
    kind: 'rotate-pat',
    steps: ['create', 'set', 'test', 'finish'],
    async run(step, ctx) {
      // What the journal said at the moment the step acts.
      const stored = store.get<JobRecord>('jobs', ctx.job.id)!.value.steps.find((s) => s.name === step)!;
      seenStatus[`${step}#${stored.attempts}`] = stored.status;
      const custom = behaviour[step];
      if (custom) return custom(ctx);
      acted.push(step);
      return { kind: 'done', facts: { [`${step}Id`]: `${step}-1` } };
    },
    async compensate() {
      compensations.push(clock.now());
      return { undone: acted.join(',') };
    },
    summarize: (job) => `job ${job.id} ${job.state}`,
  };
  const events: string[] = [];
  const make = (options: { leaseMs?: number } = {}) => {
    const engine = new JobEngine({
      store, clock, workflows: [workflow], leaseMs: options.leaseMs ?? 5 * MINUTE_MS, backoff: { baseMs: 1000, maxMs: 10_000 }, maxAttempts: 3,
      onEvent: async (e) => { events.push(e.type === 'finished' ? `finished:${e.job.state}` : `milestone:${e.milestone.key}`); },
    });
    engines.push(engine);
    return engine;
  };
  const plan = { kind: 'rotate-pat' as const, subject: 'databricks-pat:ws-prod:abc', title: 't', facts: {}, parameters: {}, operations: [] };
  // As approvals/record.ts does: the job and the lock on its subject (how the engine finds the jobs at work).
  const insertJob = (id = 'job-1') => store.transaction(() => {
    store.put('approvals', `active:${plan.subject}`, { jobId: id });
    return store.insert<JobRecord>('jobs', id, newJobRecord({
      id, kind: 'rotate-pat', subject: plan.subject, steps: workflow.steps, approvalId: 'a-1',
      plan, planHash: planHash(plan), approvedBy: [{ aadObjectId: 'u1', name: 'Alex' }], now: clock.now(),
    }))!;
  });
  return { clock, store, acted, seenStatus, compensations, events, make, insertJob };
}

describe('job engine', () => {
  it('journals every step as started before it acts, then runs to done and audits each step', async () => {
    const t = setup();
    t.insertJob();
    const job = await t.make().run('job-1');
    expect(job?.state).toBe('done');
    expect(t.acted).toEqual(['create', 'set', 'test', 'finish']);
    expect(t.seenStatus).toEqual({ 'create#1': 'started', 'set#1': 'started', 'test#1': 'started', 'finish#1': 'started' });
    expect(job?.facts).toMatchObject({ createId: 'create-1', finishId: 'finish-1' });
    const actions = t.store.listAudit({ subject: 'databricks-pat:ws-prod:abc' }).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['job.step.create.started', 'job.step.create.done', 'job.step.finish.done', 'job.done']));
    expect(t.events).toEqual(['finished:done']);
    expect(t.store.verifyAudit().ok).toBe(true);
  });

  it('runs a job once however many replicas try at the same time', async () => {
    const t = setup();
    t.insertJob();
    const replicas = Array.from({ length: 20 }, () => t.make());
    await Promise.all(replicas.map((r) => r.run('job-1')));
    expect(t.acted).toEqual(['create', 'set', 'test', 'finish']);
    expect(t.events).toEqual(['finished:done']);
  });

  it('resumes an interrupted step in another process once the lease expires, telling the step to reconcile', async () => {
    let resumedFlag: boolean | undefined;
    let firstRun = true;
    const t = setup({
      set: async (ctx) => {
        if (firstRun) {
          firstRun = false;
          return new Promise<never>(() => undefined); // the process "dies" inside the step
        }
        resumedFlag = ctx.resumed;
        return { kind: 'done' };
      },
    });
    t.insertJob();
    const crashed = t.make({ leaseMs: 2 * MINUTE_MS });
    engines.splice(engines.indexOf(crashed), 1); // a dead process is never stopped
    void crashed.run('job-1');
    await vi_waitFor(() => t.store.get<JobRecord>('jobs', 'job-1')!.value.steps[1]!.status === 'started');
    const second = t.make();
    expect(second.dueJobIds()).toEqual([]); // the lease is still held
    t.clock.advance(3 * MINUTE_MS);
    const job = await second.run('job-1');
    expect(job?.state).toBe('done');
    expect(resumedFlag).toBe(true);
    expect(job?.steps[1]).toMatchObject({ status: 'done', attempts: 2 });
    expect(t.acted).toEqual(['create', 'test', 'finish']);
  });

  it('retries a transient failure with backoff on the clock, then succeeds', async () => {
    let failures = 2;
    const t = setup({
      test: async () => {
        if (failures-- > 0) throw new WorkflowError('workspace answered 503', 'UNAVAILABLE', { retryable: true, statusCode: 503 });
        return { kind: 'done' };
      },
    });
    t.insertJob();
    const engine = t.make();
    let job = await engine.run('job-1');
    expect(job?.state).toBe('waiting');
    expect(job?.waitingFor).toMatch(/retry 2 of 3/);
    expect(await engine.run('job-1')).toMatchObject({ state: 'waiting' }); // not due yet: nothing happens
    t.clock.advance(1000);
    job = await engine.run('job-1');
    expect(job?.state).toBe('waiting');
    t.clock.advance(2000);
    job = await engine.run('job-1');
    expect(job?.state).toBe('done');
    expect(job?.steps[2]?.attempts).toBe(3);
  });

  it('compensates after a permanent failure and reports it', async () => {
    const t = setup({ test: async () => { throw new WorkflowError('the new token was rejected (403)', 'FORBIDDEN', { statusCode: 403 }); } });
    t.insertJob();
    const job = await t.make().run('job-1');
    expect(job?.state).toBe('compensated');
    expect(job?.error).toMatchObject({ step: 'test', message: 'the new token was rejected (403)' });
    expect(job?.compensation).toMatchObject({ status: 'done', result: { undone: 'create,set' } });
    expect(t.events).toEqual(['finished:compensated']);
    expect(t.store.listAudit().map((a) => a.action)).toEqual(expect.arrayContaining(['job.step.test.failed', 'job.compensation.done', 'job.compensated']));
  });

  it('parks a step until its due time and runs it from the timer when the clock gets there', async () => {
    let due = 0;
    const t = setup({
      finish: async (ctx) => {
        if (ctx.now() < due) return { kind: 'wait', until: due, reason: 'grace window', milestone: { key: 'verified', text: 'verified' } };
        return { kind: 'done', facts: { revokedAt: ctx.now() } };
      },
    });
    due = t.clock.now() + 24 * HOUR_MS;
    t.insertJob();
    const engine = t.make();
    expect((await engine.run('job-1'))?.state).toBe('waiting');
    await engine.tick();
    expect(t.store.get<JobRecord>('jobs', 'job-1')!.value.state).toBe('waiting');
    t.clock.advance(24 * HOUR_MS);
    await engine.tick();
    const job = t.store.get<JobRecord>('jobs', 'job-1')!.value;
    expect(job.state).toBe('done');
    expect(t.events).toEqual(['milestone:verified', 'finished:done']);
    expect(job.posted).toEqual(['verified', 'finished']);
  });

  it('goes back to an earlier step when asked, and gives up after too many redos', async () => {
    let redos = 0;
    const t = setup({ set: async () => (redos++ < 10 ? { kind: 'redo', from: 'create', note: 'value lost' } : { kind: 'done' }) });
    t.insertJob();
    const job = await t.make().run('job-1');
    expect(job?.state).toBe('compensated');
    expect(job?.error?.code).toBe('TOO_MANY_REDOS');
    expect(t.acted.filter((a) => a === 'create')).toHaveLength(4);
  });

  it('refuses to run a plan whose hash is not the approved one', async () => {
    const t = setup();
    const rec = t.insertJob();
    t.store.compareAndSet<JobRecord>('jobs', rec.id, rec.version, { ...rec.value, plan: { ...rec.value.plan, parameters: { graceHours: 0 } } });
    const job = await t.make().run('job-1');
    expect(job?.state).toBe('cancelled');
    expect(job?.error?.message).toMatch(/approved plan hash/);
    expect(t.acted).toEqual([]);
  });

  it('cancels a parked job (rollback) but never one that is running', async () => {
    const t = setup({ finish: async (ctx) => ({ kind: 'wait', until: ctx.now() + HOUR_MS, reason: 'grace window' }) });
    t.insertJob();
    const engine = t.make();
    await engine.run('job-1');
    expect(engine.cancelWaiting('job-1', 'rolled back')?.state).toBe('cancelled');
    expect(engine.cancelWaiting('job-1', 'again')).toBeUndefined();
    t.clock.advance(2 * HOUR_MS);
    await engine.tick();
    expect(t.store.get<JobRecord>('jobs', 'job-1')!.value.state).toBe('cancelled');
  });
});

async function vi_waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
