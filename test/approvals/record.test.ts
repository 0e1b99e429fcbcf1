import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordApproval, releaseSubject, type ApprovalRequest } from '../../src/approvals/record.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { planHash, type ActionPlan } from '../../src/domain/plan.js';
import type { JobRecord } from '../../src/domain/job.js';

/** Exactly once across replicas: two processes' worth of store handles on one SQLite file. */

const opened: Store[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const plan: ActionPlan = { kind: 'revoke', subject: 'databricks-pat:ws-prod:t1', title: 'Revoke t1', facts: { nativeId: 't1' }, parameters: {}, operations: ['finish: revoke'] };

function request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id: 'alert:a1:n1', action: 'revoke', subject: plan.subject, scope: 'ws-prod', nonce: 'n1', required: 1,
    approver: { aadObjectId: 'u-alex', name: 'Alex', at: 1 }, plan, planHash: planHash(plan), jobKind: 'revoke', steps: ['finish'],
    jobId: `job-${Math.random().toString(16).slice(2)}`, now: 1, ...over,
  };
}

function replicas(n: number): Store[] {
  const dir = mkdtempSync(join(tmpdir(), 'kw-record-'));
  dirs.push(dir);
  const stores = Array.from({ length: n }, () => openSqliteStore({ path: join(dir, 'kw.db') }));
  opened.push(...stores);
  return stores;
}

describe('recordApproval', () => {
  it('starts one job however many replicas record the same click', () => {
    const stores = replicas(4);
    const outcomes = stores.flatMap((s) => [recordApproval(s, request()), recordApproval(s, request())]);
    expect(outcomes.filter((o) => o.kind === 'started')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'exists')).toHaveLength(7);
    expect(stores[0]!.list<JobRecord>('jobs')).toHaveLength(1);
  });

  it('never starts a second job on a subject while one is running, even from another card', () => {
    const [a, b] = replicas(2) as [Store, Store];
    const first = recordApproval(a, request());
    expect(first.kind).toBe('started');
    expect(recordApproval(b, request({ id: 'alert:a1:n2', nonce: 'n2' }))).toMatchObject({ kind: 'busy', jobId: first.kind === 'started' ? first.job.id : '' });
    if (first.kind === 'started') {
      const rec = a.get<JobRecord>('jobs', first.job.id)!;
      a.compareAndSet('jobs', rec.id, rec.version, { ...rec.value, state: 'done' });
      releaseSubject(a, plan.subject, first.job.id);
    }
    expect(recordApproval(b, request({ id: 'alert:a1:n3', nonce: 'n3' })).kind).toBe('started');
  });

  it('N-of-M: distinct approvers only, and another action never counts as a vote', () => {
    const [store] = replicas(1) as [Store];
    const two = request({ required: 2 });
    expect(recordApproval(store, two).kind).toBe('pending');
    expect(recordApproval(store, two).kind).toBe('already-voted');
    expect(recordApproval(store, { ...two, action: 'rotate', jobKind: 'rotate-pat', approver: { aadObjectId: 'u-megan', name: 'Megan', at: 2 } }).kind).toBe('exists');
    const done = recordApproval(store, { ...two, approver: { aadObjectId: 'u-megan', name: 'Megan', at: 2 } });
    expect(done.kind).toBe('started');
    if (done.kind === 'started') expect(done.job.approvedBy.map((a) => a.name)).toEqual(['Alex', 'Megan']);
    expect(store.list('jobs')).toHaveLength(1);
  });

  it('rolls back everything when onApproved says the world moved', () => {
    const [store] = replicas(1) as [Store];
    const outcome = recordApproval(store, request({ onApproved: () => { store.put('settings', 'side-effect', { x: 1 }); return false; } }));
    expect(outcome.kind).toBe('busy');
    expect(store.get('settings', 'side-effect')).toBeUndefined();
    expect(store.list('approvals')).toHaveLength(0);
  });
});
