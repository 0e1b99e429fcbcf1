import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock, MINUTE_MS } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { JobEngine, newJobRecord, type StepContext, type WorkflowDefinition } from '../../src/workflows/engine/journal.js';
import { planHash } from '../../src/domain/plan.js';
import type { JobFacts, JobRecord, StepName } from '../../src/domain/job.js';

/**
 * The job lease while a step runs: renewed, so a slow step is not mistaken for a dead runner; and when another
 * runner takes the job anyway, the step is aborted and what it created is undone by the runner that created it.
 */

const stores: Store[] = [];
const engines: JobEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
  for (const s of stores.splice(0)) s.close();
});

function setup(create: (ctx: StepContext) => Promise<JobFacts>) {
  const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 4, 4, 12) });
  const store = openSqliteStore({ path: ':memory:', clock });
  stores.push(store);
  const discarded: Array<{ step: StepName; facts: JobFacts }> = [];
  const workflow: WorkflowDefinition = {
    kind: 'rotate-pat',
    steps: ['create', 'finish'],
    async run(step, ctx) {
      if (step === 'create') return { kind: 'done', facts: await create(ctx) };
      return { kind: 'done' };
    },
    async discard(step, facts) {
      discarded.push({ step, facts });
      return { undone: true };
    },
    compensate: async () => ({}),
    summarize: (job) => job.state,
  };
  const make = () => {
    const engine = new JobEngine({ store, clock, workflows: [workflow], leaseMs: 2 * MINUTE_MS, heartbeatMs: 10 });
    engines.push(engine);
    return engine;
  };
  const plan = { kind: 'rotate-pat' as const, subject: 's', title: 't', facts: {}, parameters: {}, operations: [] };
  store.insert<JobRecord>('jobs', 'job-1', newJobRecord({
    id: 'job-1', kind: 'rotate-pat', subject: 's', steps: workflow.steps, approvalId: 'a', plan, planHash: planHash(plan), approvedBy: [], now: clock.now(),
  }));
  store.put('approvals', 'active:s', { jobId: 'job-1' }); // the subject lock every job holds (approvals/record.ts)
  const job = () => store.get<JobRecord>('jobs', 'job-1')!;
  return { clock, store, make, job, discarded };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('job lease while a step runs', () => {
  it('is renewed, so a step slower than the lease is not taken over', async () => {
    let release!: () => void;
    const t = setup(() => new Promise((resolve) => { release = () => resolve({ created: 'x' }); }));
    const first = t.make();
    const running = first.run('job-1');
    await sleep(30);
    for (let i = 0; i < 3; i++) {
      t.clock.advance(MINUTE_MS + 30_000); // 4.5 min in all: past the 2 min lease, were it not renewed
      await sleep(40);
    }
    const second = t.make();
    expect(second.dueJobIds()).toEqual([]);
    release();
    expect((await running)?.state).toBe('done');
    expect(t.discarded).toEqual([]);
  });

  it('when another runner takes the job, the step is aborted and what it created is undone', async () => {
    let aborted = false;
    let finishCreate!: () => void;
    const t = setup(async (ctx) => {
      ctx.signal.addEventListener('abort', () => { aborted = true; });
      await new Promise<void>((resolve) => { finishCreate = resolve; });
      return { newTokenId: 'late-token' };
    });
    const first = t.make();
    const running = first.run('job-1');
    await sleep(30);
    // Another runner claims it (as after a lapsed lease).
    const rec = t.job();
    expect(t.store.compareAndSet('jobs', rec.id, rec.version, { ...rec.value, lease: { owner: 'other|1|x', until: t.clock.now() + 10 * MINUTE_MS } })).toBeDefined();
    await sleep(40);
    expect(aborted).toBe(true);
    finishCreate();
    await running;
    expect(t.discarded).toEqual([{ step: 'create', facts: { newTokenId: 'late-token' } }]);
    expect(t.job().value.lease?.owner).toBe('other|1|x');
    expect(t.job().value.steps[0]!.status).toBe('started');
    expect(t.store.listAudit().some((a) => a.action === 'job.step.create.discarded')).toBe(true);
  });
});
