import type { PhaseMemory } from './measure.js';

/** What a scenario hands back to the orchestrator (plain JSON: it crosses the IPC channel). */

export interface BenchRow {
  /** e.g. "1a full scan, no latency". */
  label: string;
  runs: number;
  /** Median wall time of one run. */
  wallMs: number;
  /** Extra timing figures shown in the details (p95, cold run, …). */
  timings?: Record<string, number>;
  throughput?: { value: number; unit: string };
  memory: PhaseMemory;
}

export interface ScenarioResult {
  id: string;
  title: string;
  rows: BenchRow[];
  /** Human-readable lines printed under the table. */
  details: string[];
  /** Machine-readable extras for --json. */
  data: Record<string, unknown>;
}

export type ScenarioId = 'scan' | 'policy' | 'store' | 'cards' | 'alerts' | 'bot' | 'pipeline';

export const SCENARIO_IDS: readonly ScenarioId[] = ['scan', 'policy', 'store', 'cards', 'alerts', 'bot', 'pipeline'];
