import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** Timing and memory probes for the bench: peak RSS (the kernel's, or a sampler thread), percentiles, and a phase wrapper. */

export interface MemorySnapshot {
  rssBytes: number;
  heapUsedBytes: number;
}

export interface PhaseMemory {
  before: MemorySnapshot;
  /** Straight after the phase, before any forced GC. */
  after: MemorySnapshot;
  /** Heap still reachable after a full GC (what the phase keeps alive). */
  heapRetainedBytes: number;
  /** Highest RSS while the phase ran (the kernel's peak on Linux, else sampled every few ms on a separate thread). */
  peakRssBytes: number;
}

// The sampler runs in its own thread, so it keeps sampling while the main thread is busy with synchronous work.
const SAMPLER_SOURCE = `
const { workerData } = require('node:worker_threads');
const peak = new BigInt64Array(workerData.buffer);
const tick = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  if (Atomics.load(peak, 1) === 1n) break;
  const rss = BigInt(process.memoryUsage.rss());
  if (rss > Atomics.load(peak, 0)) Atomics.store(peak, 0, rss);
  Atomics.wait(tick, 0, 0, workerData.intervalMs);
}
`;

/** The kernel's own peak RSS of this process (VmHWM, in bytes), or undefined where there is no /proc. */
function kernelPeak(): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** Restarts the kernel's peak at the current RSS (Linux: `5` to clear_refs); false where that is not allowed. */
function resetKernelPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return kernelPeak() !== undefined;
  } catch {
    return false;
  }
}

/**
 * Peak RSS of this process per window. On Linux the kernel keeps it exactly (VmHWM); elsewhere a sampler thread reads
 * RSS every few ms — a V8 isolate of its own (about 11 MB) that the figure then includes, and spikes between two
 * samples are missed.
 */
export class RssSampler {
  private readonly shared = new BigInt64Array(new SharedArrayBuffer(16));
  private readonly worker: Worker | undefined;
  readonly source: 'kernel' | 'sampled';

  constructor(intervalMs = 5) {
    this.source = resetKernelPeak() ? 'kernel' : 'sampled';
    if (this.source === 'sampled') {
      this.worker = new Worker(SAMPLER_SOURCE, { eval: true, execArgv: [], workerData: { buffer: this.shared.buffer, intervalMs } });
      this.worker.unref();
    }
  }

  /** Starts a new peak window at the current RSS. */
  reset(): void {
    if (this.source === 'kernel') resetKernelPeak();
    else Atomics.store(this.shared, 0, BigInt(process.memoryUsage.rss()));
  }

  peak(): number {
    const seen = this.source === 'kernel' ? kernelPeak() ?? 0 : Number(Atomics.load(this.shared, 0));
    return Math.max(seen, process.memoryUsage.rss());
  }

  async stop(): Promise<void> {
    Atomics.store(this.shared, 1, 1n);
    await this.worker?.terminate();
  }
}

/** Full GC when the process runs with --expose-gc (the bench's children do); a no-op otherwise. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

export function snapshot(): MemorySnapshot {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed };
}

export interface PhaseResult<T> {
  value: T;
  memory: PhaseMemory;
  /** Wall time of the whole phase (all runs inside it). */
  totalMs: number;
}

/** Runs `fn` between two memory snapshots, with a GC first so "before" is a clean baseline. */
export async function measurePhase<T>(sampler: RssSampler, fn: () => Promise<T> | T): Promise<PhaseResult<T>> {
  collectGarbage();
  const before = snapshot();
  sampler.reset();
  const started = performance.now();
  const value = await fn();
  const totalMs = performance.now() - started;
  const after = snapshot();
  const peakRssBytes = sampler.peak();
  collectGarbage();
  const heapRetainedBytes = process.memoryUsage().heapUsed;
  return { value, totalMs, memory: { before, after, heapRetainedBytes, peakRssBytes } };
}

/** Times `fn` `runs` times; returns each run's milliseconds and the last value. */
export async function timeRuns<T>(runs: number, fn: (run: number) => Promise<T> | T): Promise<{ times: number[]; last: T }> {
  const times: number[] = [];
  let last!: T;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = await fn(i);
    times.push(performance.now() - t0);
  }
  return { times, last };
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Small seeded PRNG (mulberry32), so every bench run builds the same estate. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
