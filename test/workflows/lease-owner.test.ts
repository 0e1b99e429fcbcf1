import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock, MINUTE_MS } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { JobEngine, newJobRecord } from '../../src/workflows/engine/journal.js';
import { formatLeaseOwner, ownerIsGone, parseLeaseOwner, processSpace, thisProcess, type ProcessIdentity } from '../../src/workflows/engine/lease-owner.js';
import { planHash } from '../../src/domain/plan.js';
import type { JobRecord } from '../../src/domain/job.js';

/**
 * When a job lease may be taken over before it expires: only when its owner ran in this very pid space (same host,
 * same boot, same pid namespace) and its pid is gone. Two containers sharing a hostname and a volume have separate
 * pid namespaces: a pid missing here says nothing about a runner there, so its live lease is waited out.
 */

const SPACE = 'boot:2b1e0c9a-7d3f-4c55-9d7e-0a1b2c3d4e5f/pidns:4026531836';
const me: ProcessIdentity = { host: 'kw-pod', pid: 100, space: SPACE };
const gone = () => false;
const alive = () => true;

describe('lease owner identity', () => {
  it('round-trips host, pid, nonce and pid space', () => {
    const owner = formatLeaseOwner({ host: 'kw-pod', pid: 4242, space: SPACE }, 'abcd1234');
    expect(owner).toBe(`kw-pod|4242|abcd1234|${SPACE}`);
    expect(parseLeaseOwner(owner)).toEqual({ host: 'kw-pod', pid: 4242, nonce: 'abcd1234', space: SPACE });
    // An owner written by an older version has no pid space.
    expect(parseLeaseOwner('kw-pod|4242|abcd1234')).toEqual({ host: 'kw-pod', pid: 4242, nonce: 'abcd1234', space: undefined });
    expect(parseLeaseOwner('garbage')).toBeUndefined();
  });

  it('a dead pid in this very pid space: taken over at once', () => {
    expect(ownerIsGone(formatLeaseOwner({ host: 'kw-pod', pid: 4242, space: SPACE }), me, gone)).toBe(true);
  });

  it('a live pid in this pid space: not gone', () => {
    expect(ownerIsGone(formatLeaseOwner({ host: 'kw-pod', pid: 4242, space: SPACE }), me, alive)).toBe(false);
  });

  it('same hostname, another pid namespace (a second container on the same volume): waited out even when the pid is missing here', () => {
    const otherContainer = { host: 'kw-pod', pid: 4242, space: 'boot:2b1e0c9a-7d3f-4c55-9d7e-0a1b2c3d4e5f/pidns:4026532999' };
    expect(ownerIsGone(formatLeaseOwner(otherContainer), me, gone)).toBe(false);
  });

  it('same hostname and namespace inode, another boot (another machine or a reboot): waited out', () => {
    const otherBoot = { host: 'kw-pod', pid: 4242, space: 'boot:99999999-7d3f-4c55-9d7e-0a1b2c3d4e5f/pidns:4026531836' };
    expect(ownerIsGone(formatLeaseOwner(otherBoot), me, gone)).toBe(false);
  });

  it('another host, an owner without a pid space (older version), this very pid, or a space this process cannot tell: waited out', () => {
    expect(ownerIsGone(formatLeaseOwner({ host: 'kw-other', pid: 4242, space: SPACE }), me, gone)).toBe(false);
    expect(ownerIsGone('kw-pod|4242|abcd1234', me, gone)).toBe(false);
    expect(ownerIsGone(formatLeaseOwner({ host: 'kw-pod', pid: 100, space: SPACE }), me, gone)).toBe(false);
    const unknown: ProcessIdentity = { host: 'kw-pod', pid: 100, space: undefined };
    expect(ownerIsGone(formatLeaseOwner({ host: 'kw-pod', pid: 4242, space: undefined }), unknown, gone)).toBe(false);
  });

  it.runIf(process.platform === 'linux')('on Linux, the pid space is the boot id and the pid namespace inode', () => {
    expect(processSpace()).toMatch(/^boot:[0-9a-f-]{36}\/pidns:\d+$/);
    expect(processSpace('darwin')).toBe('darwin');
  });

  it('a process of this pid space that exited is seen as gone by the real check; this process is not', () => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(child.stdout);
    expect(pid).toBeGreaterThan(0);
    expect(ownerIsGone(formatLeaseOwner({ ...thisProcess(), pid }))).toBe(thisProcess().space !== undefined);
    expect(ownerIsGone(formatLeaseOwner(thisProcess()))).toBe(false);
  });
});

describe('the job engine and a live lease with a dead pid', () => {
  const stores: Store[] = [];
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });

  function jobLeasedBy(owner: string) {
    const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 4, 4, 12) });
    const store = openSqliteStore({ path: ':memory:', clock });
    stores.push(store);
    const plan = { kind: 'rotate-pat' as const, subject: 's', title: 't', facts: {}, parameters: {}, operations: [] };
    const job = newJobRecord({ id: 'job-1', kind: 'rotate-pat', subject: 's', steps: ['create'], approvalId: 'a', plan, planHash: planHash(plan), approvedBy: [], now: clock.now() });
    store.insert<JobRecord>('jobs', 'job-1', { ...job, state: 'running', lease: { owner, until: clock.now() + 2 * MINUTE_MS } });
    store.put('approvals', 'active:s', { jobId: 'job-1' }); // the subject lock every job holds (approvals/record.ts)
    const engine = new JobEngine({ store, clock, workflows: [] });
    return { clock, engine };
  }

  const deadPid = () => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(child.stdout);
  };

  it.runIf(thisProcess().space !== undefined)('takes the job at once when the owner ran in this pid space and is gone', () => {
    const { engine } = jobLeasedBy(formatLeaseOwner({ ...thisProcess(), pid: deadPid() }));
    expect(engine.dueJobIds()).toEqual(['job-1']);
  });

  it('waits for the lease to expire when the owner ran under the same hostname in another pid namespace', () => {
    const me = thisProcess();
    const { clock, engine } = jobLeasedBy(formatLeaseOwner({ host: me.host, pid: deadPid(), space: 'boot:00000000-0000-0000-0000-000000000000/pidns:1' }));
    expect(engine.dueJobIds()).toEqual([]);
    clock.advance(2 * MINUTE_MS + 1);
    expect(engine.dueJobIds()).toEqual(['job-1']);
  });
});
