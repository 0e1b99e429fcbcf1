import { cpus } from 'node:os';
import { count, mb, ms } from './format.js';
import type { MachineInfo } from './report.js';
import { LATENCY_MS, type ScaleResult } from './scenarios/scale.js';

/** The `--size` table: one row per size, then what each figure was measured on. */

const TARGETS = { ratio: 1.25, rssBytes: 300 * 1024 * 1024, clickP99Ms: 1_000 };

function row(cells: string[], widths: number[]): string {
  return `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
}

export function renderScaleTable(results: ScaleResult[]): string {
  const head = ['size', 'credentials', 'requests', 'wall', 'bound (slowest host)', 'ratio', 'CPU/cred', 'peak RSS', 'loop max block', 'click p50 / p99', 'msgs unchanged', 'msgs 1% change'];
  const rows = results.map((r) => [
    `${r.sizeK}k${r.tables ? ' (Tables)' : ''}`, count(r.credentials), count(r.full.requests), ms(r.full.wallMs),
    `${ms(r.full.boundMs)} (${r.full.slowest?.family ?? '—'})`, `${r.full.ratio.toFixed(2)}×`,
    `${r.cpuUsPerCredential.toFixed(0)} µs`, mb(r.peakRssBytes), ms(r.loopMaxBlockMs),
    `${ms(r.clicks.p50)} / ${ms(r.clicks.p99)}`, count(r.rescan.messages), `${count(r.change.messages)} (${count(r.change.changed)} changed)`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [row(head, widths), `|${widths.map((w, i) => (i === 0 ? ':' : '-').padEnd(w + 1, '-') + (i === 0 ? '-' : ':')).join('|')}|`, ...rows.map((r) => row(r, widths))].join('\n');
}

/** Whether the machine itself was the limit: both processes' CPU against its cores over the scan's wall time. */
function cpuLine(r: ScaleResult): string {
  const keywarden = (r.cpuUsPerCredential * r.credentials) / 1e6;
  const emulators = r.full.emulatorCpuMs / 1000;
  const azurite = r.tables ? r.tables.azuriteCpuMs / 1000 : 0;
  const available = (cpus().length * r.full.wallMs) / 1000;
  return `  CPU during the full scan: Keywarden ${keywarden.toFixed(1)} s, the emulators ${emulators.toFixed(1)} s${r.tables ? `, azurite ${azurite.toFixed(1)} s` : ''}, of ${available.toFixed(1)} s (${cpus().length} cores × the wall): the machine was ${Math.round(((keywarden + emulators + (azurite || 0)) / available) * 100)}% busy`;
}

/** With `--store tables`: how long the bot's thread waited on its synchronous store calls (Atomics.wait each). */
function tablesLine(r: ScaleResult): string[] {
  if (!r.tables) return [];
  const b = (s: { calls: number; totalMs: number; maxMs: number }) => `${count(s.calls)} calls, ${ms(s.totalMs)} in all, longest ${ms(s.maxMs)}`;
  return [`  store: Azure Table Storage (azurite, in memory, no added latency); the bot's thread blocked on it during the full scan: ${b(r.tables.fullScan)}; during each alerts.onScan: ${r.tables.alertsOnScan.map(b).join(' | ')}`];
}

export function renderScaleDetails(r: ScaleResult): string[] {
  const s = r.shape;
  const gaps: string[] = [];
  if (!(r.full.ratio <= TARGETS.ratio)) gaps.push(`ratio ${r.full.ratio.toFixed(2)}× > ${TARGETS.ratio}×`);
  if (r.peakRssBytes > TARGETS.rssBytes) gaps.push(`peak RSS ${mb(r.peakRssBytes)} > 300 MB`);
  const hosts = r.hosts.slice(0, 4).map((h) => `${h.host} ${count(h.calls)} calls / ${h.inFlightAllowed} in flight (${h.perSecond}/s)${h.chain > 1 ? `, ${count(h.chain)} pages in a row` : ''} → ${ms(h.boundMs)}, peak ${h.maxInFlightSeen} in flight, ${h.throttled} × 429, ${h.connections} connections`);
  return [
    `${r.sizeK}k: ${s.workspaces} workspaces × ${count(s.tokensPerWorkspace)} PATs, ${s.vaults} vaults × ${count(s.secretsPerVault)} secrets, ${count(s.entraApps)} apps × ${s.credentialsPerApp} secrets (+ the sandbox's seeds); emulators seeded in ${ms(r.estateSeedMs)} in their own process`,
    `  full scan (+${LATENCY_MS} ms per call, published rate limits enforced): ${count(r.full.requests)} requests, ${count(r.full.throttled)} answered 429, ${count(r.full.tokenRequests)} token requests; slowest hosts: ${hosts.join('; ')}`,
    r.scanThread
      ? `  full scan on the scan thread (scanner.thread; --inline scans on the bot's thread and times each source); warm-up: none (the thread starts cold with the full scan)`
        + (r.full.phases ? `; reading the estates ${ms(r.full.phases.fetchMs)} (${(r.full.phases.fetchMs / r.full.boundMs).toFixed(2)}× the bound), then link, policy, diff and rows ${ms(r.full.phases.afterFetchMs)}${r.full.phases.busy !== undefined ? `; the scanning thread was busy ${Math.round(r.full.phases.busy * 100)}% of the scan` : ''}` : '')
      : `  full scan on the bot's thread: the slowest sources took ${r.full.slowestSources.map((x) => `${x.source} ${ms(x.ms)}`).join(', ')}; after the slowest answered, ${ms(r.full.afterNetworkMs)} more (correlate, policy, diff, snapshot); warm-up scan (no latency, not measured) ${ms(r.warmUpMs)}`,
    cpuLine(r),
    ...tablesLine(r),
    `  peak RSS ${mb(r.peakRssScanBytes)} during the full scan alone (the table's figure also covers alerts.onScan and the two rescans)`
      + (r.memoryAtScanEnd ? `; at its end RSS ${mb(r.memoryAtScanEnd.rss)}, of which the bot's thread's heap ${mb(r.memoryAtScanEnd.heapUsed)} used of ${mb(r.memoryAtScanEnd.heapTotal)}, external ${mb(r.memoryAtScanEnd.external)} (array buffers ${mb(r.memoryAtScanEnd.arrayBuffers)}); the rest is the scan thread's isolate, code and native memory` : ''),
    ...(r.peakByPhase?.length ? [`  peak RSS by phase: ${r.peakByPhase.map((p) => `${p.phase} ${mb(p.bytes)}`).join(', ')}`] : []),
    `  clicks during the full scan: ${r.clicks.n} /help turns (${r.clicks.failed} answered 503: turn timeout), p50 ${ms(r.clicks.p50)}, p99 ${ms(r.clicks.p99)}, max ${ms(r.clicks.max)}`,
    ...(r.alertsClicks ? [`  clicks while its alerts.onScan ran (bot's thread): ${r.alertsClicks.n} /help turns (${r.alertsClicks.failed} answered 503), p50 ${ms(r.alertsClicks.p50)}, p99 ${ms(r.alertsClicks.p99)}, max ${ms(r.alertsClicks.max)}; loop max block ${ms(r.alertsClicks.loopMaxBlockMs)}`] : []),
    `  unchanged rescan: ${ms(r.rescan.wallMs)}, ${count(r.rescan.requests)} requests (bound ${ms(r.rescan.boundMs)}${r.rescan.slowest ? ` on ${r.rescan.slowest.host}${r.rescan.slowest.chain * LATENCY_MS >= r.rescan.boundMs ? `: ${count(r.rescan.slowest.chain)} list pages, each waiting for the one before` : ''}` : ''}, ${r.rescan.ratio.toFixed(2)}×${r.rescan.phases ? `; reading ${ms(r.rescan.phases.fetchMs)}, then ${ms(r.rescan.phases.afterFetchMs)}` : ''}), ${count(r.rescan.messages)} Teams messages queued`,
    `  after rotating 1% (${count(r.change.changed)} credentials): ${ms(r.change.wallMs)}, ${count(r.change.requests)} requests, ${count(r.change.messages)} Teams messages queued; first scan queued ${count(r.baselineMessages)}`,
    `  alerts.onScan per scan (not in the scan's wall time): ${r.alertsMs.map(ms).join(', ')}`,
    ...(gaps.length ? [`  gap to target: ${gaps.join('; ')}`] : []),
    ...r.notes.map((n) => `  note: ${n}`),
  ];
}

export function renderScaleReport(machine: MachineInfo, results: ScaleResult[], failures: Array<{ id: string; message: string }>): string {
  return [
    `Keywarden scale bench — ${machine.cpus} CPU (${machine.cpuModel}), ${mb(machine.totalMemoryBytes)} RAM, Node ${machine.node}, ${machine.startedAt}`,
    '',
    renderScaleTable(results),
    '',
    ...results.flatMap(renderScaleDetails),
    ...failures.map((f) => `FAILED ${f.id}: ${f.message.split('\n').slice(0, 3).join(' ')}`),
    '',
    'wall = the full scan (first scan: nothing cached) with 50 ms added to every call; bound = per host calls × latency ÷ allowed in flight (or calls ÷ published rate, or the longest chain of dependent list pages × latency, when slower), the slowest host; ratio = wall ÷ bound; CPU/cred = this process\'s user+system CPU during the full scan ÷ credentials; peak RSS = the Keywarden process (emulators excluded; Linux\'s own peak, VmHWM, where it can be reset per phase, else sampled every 5 ms by a thread counted in it); loop max block = the longest event-loop delay (monitorEventLoopDelay) during the full scan; msgs = Teams messages the scan queued in the alerts outbox.',
  ].join('\n');
}
