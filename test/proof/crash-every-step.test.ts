/**
 * Proof suite "crash at every step". For each workflow, one clean run counts its events — every write of the job
 * record (the journal) and every return of a call to a cloud — N of them. Then for n = 1..N, on fresh clouds and a
 * fresh store: the product runs in a real child process that SIGKILLs itself right after event n, a new child starts
 * on the same store and clouds, and the suite asserts that the job completed or compensated, that no credential exists
 * that is neither published nor revoked, that Key Vault held a working credential at every moment (a watcher reads
 * it every few ms while the children run), and that no child printed a secret (debug-level logs).
 * Prints: `crash-every-step: <workflows> workflows, <points> crash points, <orphans> orphans, …`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { systemClock, HOUR_MS } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import { patMarker } from '../../src/workflows/rotate/rotate-pat.js';
import { jitPoolName, jitPoolSecret, jitTokenSecret } from '../../src/workflows/jit/jit.js';
import { batchOf, planRetire, retireBatch } from '../../src/workflows/retire/planner.js';
import {
  approveJob, armAutoRotation, buildCrashChild, cancelRotation, postedMessages, credentialOf, entraPublishedProblem, inLanes, leaksIn, openJobs, openLab,
  passwordsOf, patPublishedProblem, planJit, planMoveOf, planOf, planRollback, runChild, type Lab,
} from './fixtures/crash-lab.js';
import { report } from './fixtures/report.js';
import { createAzureCredential } from '../../src/providers/azure-credential.js';
import { providersFromConfig } from '../../src/workflows/engine/providers.js';
import { planRestrictTokens } from '../../src/workflows/workspace-controls/plan-restrict.js';

const ETL_APP = '11111111-1111-4111-8111-000000000001';
const REPORTING_APP = '11111111-1111-4111-8111-000000000002';

interface Scenario {
  name: string;
  /** Approves the job (as a click would) on a fresh lab; returns its id (or how to find it once a child created it). */
  prepare(lab: Lab, child: string): Promise<string | (() => string | undefined)>;
  /** What must hold at every moment (Key Vault publishes a working credential); undefined = fine. */
  watch?(lab: Lab): string | undefined;
  /** What must hold once the job ended: orphans (credentials neither published nor revoked) and other problems. */
  check(lab: Lab, job: JobRecord): { orphans: string[]; problems: string[] };
}

const ETL_PAT = (lab: Lab) => credentialOf(lab, (c) => c.kind === 'databricks-pat' && c.heldIn.some((h) => h.name === 'adb-prod-etl-token'), 'PAT held in kv-prod/adb-prod-etl-token');
const PAT_WATCH = (lab: Lab) => patPublishedProblem(lab, 'kv-prod', 'adb-prod-etl-token', 'ws-prod');

/** PAT rotation: every token carrying the rotation's marker is revoked or is the one Key Vault publishes. */
function patOrphans(lab: Lab, rotationId: string): string[] {
  const ws = lab.clouds.handles.databricks.workspace('ws-prod');
  const current = lab.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-etl-token').at(-1);
  return ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(patMarker(rotationId)))
    .filter((t) => !t.revoked && current?.tags?.['credential-id'] !== t.tokenId)
    .map((t) => `token …${t.tokenId.slice(-4)} of rotation ${rotationId} is live but not in Key Vault`);
}

const ended = (job: JobRecord, allowed: string[]) => (allowed.includes(job.state) ? [] : [`job ${job.kind} ended ${job.state}: ${job.error?.message ?? job.waitingFor ?? ''}`]);

const SCENARIOS: Scenario[] = [
  {
    name: 'rotate PAT',
    async prepare(lab) {
      return approveJob(lab, { kind: 'rotate-pat', plan: planOf(lab, 'rotate', ETL_PAT(lab)), jobId: 'rot-proof' }).id;
    },
    watch: PAT_WATCH,
    check(lab, job) {
      const old = lab.clouds.handles.databricks.workspace('ws-prod').tokens().some((t) => t.tokenId === job.plan.facts.tokenId);
      return {
        orphans: patOrphans(lab, job.id),
        problems: [...ended(job, ['done', 'compensated']), ...(job.state === 'done' && old ? ['the old token survived a finished rotation'] : [])],
      };
    },
  },
  {
    name: 'rotate Entra secret',
    async prepare(lab) {
      const etl = lab.clouds.seeds.entra.etlSecret;
      const cred = credentialOf(lab, (c) => c.kind === 'entra-password' && c.nativeId === etl.keyId, 'etl-ingest client secret');
      return approveJob(lab, { kind: 'rotate-entra', plan: planOf(lab, 'rotate', cred), jobId: 'rot-proof' }).id;
    },
    watch: (lab) => entraPublishedProblem(lab, 'kv-prod', 'etl-ingest-client-secret', 'etl-ingest'),
    check(lab, job) {
      const kv = lab.clouds.handles.keyVault.vault('kv-prod');
      const current = kv.versions('etl-ingest-client-secret').at(-1)!;
      const held = kv.readStoredValue('etl-ingest-client-secret', current.version) ?? '';
      const mine = passwordsOf(lab, 'etl-ingest').filter((p) => p.displayName === `keywarden rotation ${job.id}`);
      const orphans = mine.filter((p) => current.tags?.['credential-id'] !== p.keyId || !held).map((p) => `Entra secret …${p.keyId.slice(-4)} of rotation ${job.id} is on the app but not in Key Vault`);
      const oldLeft = passwordsOf(lab, 'etl-ingest').some((p) => p.keyId === lab.clouds.seeds.entra.etlSecret.keyId);
      return { orphans, problems: [...ended(job, ['done', 'compensated']), ...(job.state === 'done' && oldLeft ? ['the old secret survived a finished rotation'] : [])] };
    },
  },
  {
    name: 'revoke',
    async prepare(lab) {
      const cred = credentialOf(lab, (c) => c.kind === 'databricks-pat' && c.where.scope === 'ws-prod' && c.owner?.kind === 'user' && c.heldIn.length === 0 && c.attributes.comment === 'stale-unused', 'user PAT stale-unused');
      return approveJob(lab, { kind: 'revoke', plan: planOf(lab, 'revoke', cred), jobId: 'rev-proof' }).id;
    },
    check(lab, job) {
      const ws = lab.clouds.handles.databricks.workspace('ws-prod');
      const live = ws.tokens().some((t) => t.tokenId === job.plan.facts.tokenId);
      const created = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes('keywarden'));
      return { orphans: created.filter((t) => !t.revoked).map((t) => `token …${t.tokenId.slice(-4)} created by a revoke`), problems: [...ended(job, ['done']), ...(live ? ['the token is still live after the revoke'] : [])] };
    },
  },
  {
    name: 'JIT create + teardown',
    async prepare(lab) {
      const plan = planJit({ requestId: 'proofjit', workspace: 'ws-prod', hours: 1, nodeType: 'Standard_DS3_v2', maxCapacity: 2 }, { config: lab.config, expiresAt: systemClock.now() + HOUR_MS });
      return approveJob(lab, { kind: 'jit', plan, jobId: 'jit-proof' }).id;
    },
    check(lab, job) {
      const ws = lab.clouds.handles.databricks.workspace('ws-prod');
      const kv = lab.clouds.handles.keyVault.vault('kv-prod');
      const orphans = [
        ...ws.tokens().filter((t) => t.comment.includes('keywarden-jit:proofjit:')).map((t) => `JIT token …${t.tokenId.slice(-4)} live after teardown`),
        ...ws.pools().filter((p) => p.instance_pool_name === jitPoolName('proofjit')).map((p) => `JIT pool ${p.instance_pool_id} not deleted`),
        ...[jitTokenSecret('proofjit'), jitPoolSecret('proofjit')].filter((s) => kv.versions(s).some((v) => v.enabled)).map((s) => `Key Vault ${s} still enabled`),
      ];
      return { orphans, problems: ended(job, ['done', 'compensated']) };
    },
  },
  {
    name: 'rollback',
    async prepare(lab, child) {
      const rotation = approveJob(lab, { kind: 'rotate-pat', plan: planOf(lab, 'rotate', ETL_PAT(lab)), jobId: 'rot-proof' });
      // The rotation runs to its grace window (a clean child), then the approver clicks Rollback.
      const setup = await runChild(child, lab, 0, { advance: false, untilParked: true });
      if (setup.code !== 0) throw new Error(`the rotation did not reach its grace window:\n${setup.output.slice(-2000)}`);
      const stored = lab.store.get<JobRecord>('jobs', rotation.id)!.value;
      return approveJob(lab, { kind: 'rollback', plan: planRollback(stored), jobId: 'rbk-proof', onApproved: () => cancelRotation(lab, rotation.id) }).id;
    },
    watch: PAT_WATCH,
    check(lab, job) {
      const kv = lab.clouds.handles.keyVault.vault('kv-prod');
      const seeded = lab.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
      const back = kv.readStoredValue('adb-prod-etl-token') === seeded.tokenValue;
      return { orphans: patOrphans(lab, 'rot-proof'), problems: [...ended(job, ['done']), ...(back ? [] : ['Key Vault does not hold the old token after the rollback'])] };
    },
  },
  {
    name: 'restrict token creation',
    async prepare(lab) {
      const providers = providersFromConfig(lab.config, { credential: createAzureCredential(lab.config.azure), clock: systemClock });
      const target = [ETL_APP, REPORTING_APP].map((principal) => ({ type: 'service-principal' as const, principal }));
      const { plan } = await planRestrictTokens({ workspace: 'ws-prod', target, providers, store: lab.store, now: systemClock.now() });
      return approveJob(lab, { kind: 'restrict-tokens', plan, jobId: 'rst-proof' }).id;
    },
    // The pipeline identities keep CAN_USE: the etl token Key Vault publishes works at every moment.
    watch: PAT_WATCH,
    check(lab, job) {
      const ws = lab.clouds.handles.databricks.workspace('ws-prod');
      const acl = ws.tokenPermissions().map((g) => g.name).sort();
      const bobLive = ws.tokens().some((t) => t.comment === 'bob-jdbc');
      return { orphans: [], problems: [...ended(job, ['done']), ...(acl.join() === [ETL_APP, REPORTING_APP].sort().join() ? [] : [`the ACL ended as ${acl.join(', ')}`]), ...(bobLive ? ['bob lost his direct grant but his token survived'] : [])] };
    },
  },
  {
    name: 'move a pipeline PAT to a service principal',
    async prepare(lab) {
      const bob = credentialOf(lab, (c) => c.kind === 'databricks-pat' && c.heldIn.some((h) => h.name === 'adb-prod-bob-pipeline'), "bob's pipeline PAT held in kv-prod/adb-prod-bob-pipeline");
      return approveJob(lab, { kind: 'move-to-sp', plan: planMoveOf(lab, bob), jobId: 'mov-proof' }).id;
    },
    watch: (lab) => patPublishedProblem(lab, 'kv-prod', 'adb-prod-bob-pipeline', 'ws-prod'),
    check(lab, job) {
      const ws = lab.clouds.handles.databricks.workspace('ws-prod');
      const sp = lab.clouds.seeds.entra.apps['etl-ingest']!.appId;
      const current = lab.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-bob-pipeline').at(-1);
      const marked = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(patMarker(job.id)));
      const live = marked.filter((t) => !t.revoked);
      const versions = lab.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-bob-pipeline').filter((v) => v.tags?.['rotation-id'] === job.id && v.enabled);
      const bob = ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === job.plan.facts.tokenId)!;
      return {
        orphans: live.filter((t) => current?.tags?.['credential-id'] !== t.tokenId).map((t) => `token …${t.tokenId.slice(-4)} of move ${job.id} is live but not in Key Vault`),
        problems: [
          ...ended(job, ['done']),
          ...(live.length === 1 && live[0]!.ownerName === sp ? [] : [`${live.length} live SP tokens after the move (owners ${live.map((t) => t.ownerName).join(', ')}), expected one of sp-etl`]),
          ...(versions.length === 1 ? [] : [`${versions.length} enabled Key Vault versions of the move, expected one`]),
          ...(bob.revoked ? [] : ["bob's token survived a finished move"]),
        ],
      };
    },
  },
  {
    name: 'automatic rotation under a rule',
    async prepare(lab) {
      // No click: the child's start-up scan finds the credential past the rule's firing day and starts the job.
      armAutoRotation(lab, ETL_PAT(lab), { id: 'r9', name: 'R9' });
      return () => lab.store.list<JobRecord>('jobs').find((r) => r.value.approvalId === 'standing:auto-rotation:r9')?.id;
    },
    watch: PAT_WATCH,
    check(lab, job) {
      const ws = lab.clouds.handles.databricks.workspace('ws-prod');
      const created = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(patMarker(job.id)) && !t.revoked);
      const versions = lab.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-etl-token').filter((v) => v.enabled && v.tags?.['rotation-id'] === job.id);
      const runs = lab.store.list<JobRecord>('jobs').filter((r) => r.value.approvalId === 'standing:auto-rotation:r9');
      const said = postedMessages(lab).filter((m) => /^Rotated automatically under rule R9 approved by Alex Wilber and Megan Bowen\./.test(m.text));
      const old = ws.tokens().some((t) => t.tokenId === job.plan.facts.tokenId);
      return {
        orphans: patOrphans(lab, job.id),
        problems: [
          ...ended(job, ['done']),
          ...(runs.length === 1 ? [] : [`${runs.length} automatic jobs ran`]),
          ...(created.length === 1 ? [] : [`${created.length} live new tokens`]),
          ...(versions.length === 1 ? [] : [`${versions.length} enabled Key Vault versions of the rotation`]),
          ...(old ? ['the old token survived a finished rotation'] : []),
          ...(said.length === 1 ? [] : [`${said.length} "Rotated automatically" messages`]),
        ],
      };
    },
  },
  {
    name: 'retire unused tokens',
    async prepare(lab) {
      // Two ws-prod PATs idle for a day or more: owners told (no chat here), the wait passes, each revoked.
      const options = { scope: 'ws-prod', unusedDays: 1, waitDays: 7, maxBatch: 2, now: systemClock.now() };
      const plan = planRetire(retireBatch({ credentials: lab.credentials }, lab.config, options), options);
      if (batchOf(plan).length !== 2) throw new Error(`expected a batch of 2, got ${batchOf(plan).length}`);
      return approveJob(lab, { kind: 'retire-unused', plan, jobId: 'ret-proof' }).id;
    },
    check(lab, job) {
      const ws = lab.clouds.handles.databricks.workspace('ws-prod');
      const live = batchOf(job.plan).filter((t) => ws.tokens().some((x) => x.tokenId === t.tokenId)).map((t) => `token "${t.comment}" is still live after the batch`);
      const twice = batchOf(job.plan).filter((t) => ws.requests().filter((r) => r.method === 'DELETE' && r.path.endsWith(`/${t.tokenId}`) && r.status === 200).length > 1)
        .map((t) => `token "${t.comment}" was deleted twice`);
      return { orphans: [], problems: [...ended(job, ['done']), ...live, ...twice] };
    },
  },
];

let child: string;
beforeAll(async () => {
  child = await buildCrashChild();
}, 60_000);
afterAll(() => {
  if (child) rmSync(child, { force: true });
});

interface PointResult { orphans: string[]; problems: string[]; leaks: string[] }

/** One crash point (0 = the counting run): fresh lab, child killed at `crashAt`, restart, checks. */
async function crashPoint(scn: Scenario, crashAt: number): Promise<PointResult & { events: string[] }> {
  const lab = await openLab();
  const watched = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  try {
    const prepared = await scn.prepare(lab, child);
    if (scn.watch) timer = setInterval(() => { const p = scn.watch!(lab); if (p) watched.add(p); }, 5);
    const t0 = Date.now();
    const first = await runChild(child, lab, crashAt);
    if (process.env.PROOF_DEBUG) console.log(`point ${crashAt}: first child ${Date.now() - t0} ms`);
    const problems: string[] = [];
    const outputs: Record<string, string> = { 'the first child': first.output };
    if (crashAt > 0) {
      if (first.signal !== 'SIGKILL') problems.push(`the child was not killed at event ${crashAt} (exit ${first.code}, ${first.settled ?? 'not settled'})`);
      const second = await runChild(child, lab, 0);
      outputs['the restarted child'] = second.output;
      if (second.code !== 0) problems.push(`the restarted child did not settle (exit ${second.code}):\n${second.output.slice(-1500)}`);
    } else if (first.code !== 0) {
      problems.push(`the clean run did not settle (exit ${first.code}):\n${first.output.slice(-3000)}`);
    }
    clearInterval(timer);
    if (scn.watch) { const p = scn.watch(lab); if (p) watched.add(p); }
    const open = openJobs(lab).map((j) => `job ${j.kind} still ${j.state}`);
    const jobId = typeof prepared === 'string' ? prepared : prepared();
    const job = jobId ? lab.store.get<JobRecord>('jobs', jobId)?.value : undefined;
    if (!job) problems.push('no job was started');
    const verdict = job ? scn.check(lab, job) : { orphans: [], problems: [] };
    const audit = lab.store.verifyAudit();
    return {
      events: first.events,
      orphans: verdict.orphans,
      problems: [...problems, ...open, ...verdict.problems, ...[...watched].map((w) => `at some moment ${w}`), ...(audit.ok ? [] : [`audit chain broken at ${audit.brokenAt}`])],
      leaks: leaksIn(lab, outputs),
    };
  } finally {
    clearInterval(timer);
    await lab.close();
  }
}

const totals = { workflows: 0, points: 0, orphans: 0, problems: 0, leaks: 0, seconds: 0 };
const LANES = Number(process.env.PROOF_LANES ?? 3);

describe('crash at every step', () => {
  afterAll(() => {
    report('crash-every-step', `${totals.workflows} workflows, ${totals.points} crash points, ${totals.orphans} orphans, ${totals.problems} unfinished or broken, ${totals.leaks} leaks`);
  });

  for (const scn of SCENARIOS) {
    it(`${scn.name}: SIGKILL after every journal write and every cloud call, then restart`, async () => {
      const clean = await crashPoint(scn, 0);
      expect(clean.problems).toEqual([]);
      expect(clean.orphans).toEqual([]);
      const n = clean.events.length;
      expect(n).toBeGreaterThan(3);
      // PROOF_CRASH_POINTS=a,b limits the points while developing; CI runs them all.
      const only = process.env.PROOF_CRASH_POINTS?.split(',').map(Number);
      const points = Array.from({ length: n }, (_, i) => i + 1).filter((p) => !only || only.includes(p));
      const results = await inLanes(points, LANES, (at) => crashPoint(scn, at));
      const failures = results.flatMap((r, i) => [...r.orphans, ...r.problems, ...r.leaks].map((p) => `crash after event ${i + 1} (${clean.events[i]}): ${p}`));
      totals.workflows += 1;
      totals.points += points.length;
      totals.orphans += results.reduce((s, r) => s + r.orphans.length, 0);
      totals.problems += results.reduce((s, r) => s + r.problems.length, 0);
      totals.leaks += results.reduce((s, r) => s + r.leaks.length, 0) + clean.leaks.length;
      report(`crash-every-step ${scn.name}`, `${points.length} of ${n} crash points (${clean.events.filter((e) => e.startsWith('journal')).length} journal writes, ${clean.events.filter((e) => e.startsWith('call')).length} cloud calls), ${failures.length} failures`);
      expect(failures).toEqual([]);
      expect(clean.leaks).toEqual([]);
    }, 600_000);
  }
});
