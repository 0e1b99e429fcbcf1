import { mb, ms, rate } from './format.js';
import type { ScenarioResult } from './types.js';

/** The readable report: machine line, one table of every row, then each scenario's details. */

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
  totalMemoryBytes: number;
  startedAt: string;
}

function table(header: string[], rows: string[][], alignRight: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (alignRight[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function renderReport(machine: MachineInfo, results: ScenarioResult[], failures: Array<{ id: string; message: string }>, totalMs: number): string {
  const out: string[] = [];
  out.push(`Keywarden bench — ${machine.startedAt}`);
  out.push(`machine: ${machine.cpus} CPU (${machine.cpuModel}), ${mb(machine.totalMemoryBytes)} RAM, Node ${machine.node}, ${machine.platform}`);
  out.push('each scenario runs in its own process; wall = median of the runs; RSS/heap in MB; heap "after" is after a full GC (what stays reachable)');
  out.push('');
  const header = ['scenario', 'runs', 'wall', 'throughput', 'RSS before→after', 'peak RSS', 'heap before→after'];
  const rows: string[][] = [];
  for (const r of results) {
    for (const row of r.rows) {
      const m = row.memory;
      rows.push([
        row.label, String(row.runs), ms(row.wallMs), row.throughput ? rate(row.throughput.value, row.throughput.unit) : '—',
        `${mb(m.before.rssBytes).replace(' MB', '')} → ${mb(m.after.rssBytes)}`, mb(m.peakRssBytes),
        `${mb(m.before.heapUsedBytes).replace(' MB', '')} → ${mb(m.heapRetainedBytes)}`,
      ]);
    }
  }
  out.push(table(header, rows, [false, true, true, true, true, true, true]));
  for (const r of results) {
    out.push('');
    out.push(`[${r.id}] ${r.title}`);
    for (const d of r.details) out.push(`  - ${d}`);
  }
  for (const f of failures) {
    out.push('');
    out.push(`[${f.id}] FAILED: ${f.message}`);
  }
  out.push('');
  out.push(`bench finished in ${ms(totalMs)}${failures.length ? ` with ${failures.length} failed scenario(s)` : ''}`);
  return out.join('\n');
}
