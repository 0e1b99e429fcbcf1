import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../src/clock.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';
import { count, mb, ms } from '../format.js';
import { measurePhase, percentile, type PhaseResult, type RssSampler } from '../measure.js';
import type { BenchRow, ScenarioResult } from '../types.js';

/** 3. The SQLite store on a file (WAL, synchronous=NORMAL): claims, compare-and-set, and the audit hash chain. */

const N = 10_000;

/** A job record about the size of a real one (ids, steps, timestamps; no secrets). */
function jobValue(i: number, step: number) {
  return {
    kind: 'rotate', credentialId: `databricks-pat:ws-prod:${i.toString(16).padStart(64, '0')}`, requestedBy: { aadObjectId: 'aaaaaaaa-0000-0000-0000-000000000001', name: 'Alice Admin' },
    approvals: [{ by: 'bbbbbbbb-0000-0000-0000-000000000002', at: 1_775_000_000_000 + i }],
    steps: ['create', 'set', 'test', 'finish'].slice(0, step + 1).map((name, k) => ({ name, state: 'done', at: 1_775_000_000_000 + i + k })),
    state: step >= 3 ? 'done' : 'running', attempt: 1,
  };
}

/** Per-operation latencies of `n` calls (performance.now around each). */
function perOp(n: number, op: (i: number) => unknown): { totalMs: number; lat: number[]; misses: number } {
  const lat = new Array<number>(n);
  let misses = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    if (op(i) === undefined) misses++;
    lat[i] = performance.now() - s;
  }
  return { totalMs: performance.now() - t0, lat, misses };
}

function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

export async function runStoreScenario(sampler: RssSampler): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-bench-store-'));
  const path = join(dir, 'keywarden.db');
  let store: Store | undefined;
  try {
    // Keyed like production with audit.keySecret: appends pay the HMAC, verify checks it.
    store = openSqliteStore({ path, clock: systemClock, auditKey: randomBytes(48) });
    const s = store;
    const versions = new Array<number>(N);

    const insert = await measurePhase(sampler, () => perOp(N, (i) => {
      const r = s.insert('jobs', `job-${i}`, jobValue(i, 0));
      if (r) versions[i] = r.version;
      return r;
    }));
    const cas = await measurePhase(sampler, () => perOp(N, (i) => {
      const r = s.compareAndSet('jobs', `job-${i}`, versions[i]!, jobValue(i, 1));
      if (r) versions[i] = r.version;
      return r;
    }));
    // Losing writers: the version moved on, so each CAS must refuse without writing.
    const stale = await measurePhase(sampler, () => perOp(N, (i) => s.compareAndSet('jobs', `job-${i}`, versions[i]! - 1, jobValue(i, 2))));
    const claimTaken = await measurePhase(sampler, () => perOp(N, (i) => s.insert('jobs', `job-${i}`, jobValue(i, 0))));
    const batch = await measurePhase(sampler, () => {
      const t0 = performance.now();
      s.transaction(() => {
        for (let i = 0; i < N; i++) s.insert('outbox', `entry-${i}`, jobValue(i, 0));
      });
      return { totalMs: performance.now() - t0, lat: [], misses: 0 };
    });
    const audit = await measurePhase(sampler, () => perOp(N, (i) => s.appendAudit({
      action: 'rotation.step.create', actor: { aadObjectId: 'aaaaaaaa-0000-0000-0000-000000000001', name: 'Alice Admin' },
      subject: `databricks-pat:ws-prod:${i}`, result: 'ok', details: { jobId: `job-${i}`, step: 'create', newTokenId: i.toString(16).padStart(64, '0') },
    })));
    const verify = await measurePhase(sampler, () => {
      const t0 = performance.now();
      const result = s.verifyAudit();
      return { totalMs: performance.now() - t0, result };
    });
    if (!verify.value.result.ok || verify.value.result.count !== N) throw new Error(`audit verify after ${N} appends said ${JSON.stringify(verify.value.result)}`);
    const misses = { insert: insert.value.misses, cas: cas.value.misses, stale: N - stale.value.misses, claim: N - claimTaken.value.misses };
    if (Object.values(misses).some((m) => m !== 0)) throw new Error(`store semantics broke under the bench: ${JSON.stringify(misses)}`);
    const dbBytes = fileSize(path);
    const walBytes = fileSize(`${path}-wal`);
    store.close();
    store = undefined;

    const opsRow = (label: string, r: PhaseResult<{ totalMs: number; lat: number[] }>): BenchRow => ({
      label, runs: 1, wallMs: r.value.totalMs,
      ...(r.value.lat.length ? { timings: { p50: percentile(r.value.lat, 50), p99: percentile(r.value.lat, 99) } } : {}),
      throughput: { value: N / (r.value.totalMs / 1000), unit: 'ops/s' }, memory: r.memory,
    });
    const lat = (r: PhaseResult<{ lat: number[] }>) => `p50 ${ms(percentile(r.value.lat, 50))}, p99 ${ms(percentile(r.value.lat, 99))}, max ${ms(Math.max(...r.value.lat))}`;
    // The WAL is reset by checkpoints; one much larger than the database means checkpoints are not happening.
    const walWarning = walBytes > 4 * dbBytes
      ? `WARNING: the WAL (${mb(walBytes)}) is ${(walBytes / Math.max(1, dbBytes)).toFixed(0)}× the database: SQLite's auto-checkpoint did not run while the store was open, so the WAL grows with every write until another connection checkpoints it`
      : `WAL ${mb(walBytes)}: auto-checkpoint keeps it bounded`;
    return {
      id: 'store', title: 'SQLite store (file, WAL): insert, compare-and-set, audit chain',
      rows: [
        opsRow(`3a insert ${count(N)} (one commit each)`, insert),
        opsRow(`3b compareAndSet ${count(N)} (winning)`, cas),
        opsRow(`3c compareAndSet ${count(N)} (stale, refused)`, stale),
        opsRow(`3d insert ${count(N)} (claim already taken)`, claimTaken),
        opsRow(`3e insert ${count(N)} in one transaction`, batch),
        opsRow(`3f appendAudit ${count(N)} (keyed, HMAC-SHA256)`, audit),
        { label: `3g verifyAudit (${count(N)} entries)`, runs: 1, wallMs: verify.value.totalMs, throughput: { value: N / (verify.value.totalMs / 1000), unit: 'entries/s' }, memory: verify.memory },
      ],
      details: [
        `per-operation latency: insert ${lat(insert)}; CAS ${lat(cas)}; stale CAS ${lat(stale)}; taken claim ${lat(claimTaken)}; audit append ${lat(audit)}`,
        `records ~${count(JSON.stringify(jobValue(1, 1)).length)} bytes of JSON; database ${mb(dbBytes)} + WAL ${mb(walBytes)} after ${count(3 * N)} records and ${count(N)} audit entries`,
        'each write is its own transaction (the Store commits before returning), so 3a/3b/3f are bounded by SQLite commits; 3e shows the same inserts batched',
        walWarning,
      ],
      data: { n: N, dbBytes, walBytes },
    };
  } finally {
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
