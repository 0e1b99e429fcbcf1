import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../src/clock.js';
import { configSchema } from '../../../src/config/schema.js';
import type { ScanResult } from '../../../src/domain/scan.js';
import { createLogger } from '../../../src/logging/logger.js';
import { withSandboxConfig } from '../../../src/sandbox/estate.js';
import { createScanner, type InventorySource } from '../../../src/scanner/scanner.js';
import { createInventorySources } from '../../../src/scanner/sources.js';
import { DEFAULT_HISTORY_SIZE, saveSnapshot } from '../../../src/scanner/snapshot.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import { startRemoteEstate, type RemoteEstate } from '../estate-client.js';
import { count, mb, ms } from '../format.js';
import { measurePhase, median, timeRuns, type RssSampler } from '../measure.js';
import type { BenchRow, ScenarioResult } from '../types.js';

/**
 * 1. A full scan of a large emulated estate through the real providers and SDK clients over HTTP(S), with the
 * real scanner (per-host fan-out, correlation, policy, snapshot to a file-backed store). The emulators run in a
 * child process; what is measured here is Keywarden's side.
 */

const WARM_RUNS = 3;
const LATENCY_MS = 50;

export async function runScanScenario(sampler: RssSampler): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-bench-scan-'));
  let estate: RemoteEstate | undefined;
  try {
    estate = await startRemoteEstate();
    const config = configSchema.parse(withSandboxConfig({ store: { path: join(dir, 'keywarden.db') } }, estate.config));
    const store = openSqliteStore({ path: config.store.path, clock: systemClock });
    let logLines = 0;
    const logger = createLogger({ level: 'info', name: 'bench', destination: { write: () => { logLines++; } } });
    const { sources } = createInventorySources(config, { clock: systemClock });

    // Per-source wall time of the latest run (inside the provider, after the host limiter let it start).
    const sourceMs = new Map<string, number>();
    const timed: InventorySource[] = sources.map((s) => ({
      estate: s.estate, scope: s.scope, host: s.host,
      async scan(options) {
        const t0 = performance.now();
        try {
          return await s.scan(options);
        } finally {
          sourceMs.set(`${s.estate}:${s.scope}`, performance.now() - t0);
        }
      },
    }));
    const scanner = createScanner({ sources: timed, config, store, clock: systemClock, logger });
    const remote = estate;

    const scanOnce = async (): Promise<{ ms: number; result: ScanResult; requests: number; perServer: Record<string, number> }> => {
      await remote.requests(true);
      const t0 = performance.now();
      const result = await scanner.runScan('cli');
      const elapsed = performance.now() - t0;
      const req = await remote.requests(true);
      if (result.errors.length > 0) throw new Error(`the bench scan reported estate errors: ${result.errors.map((e) => e.message).join(' | ')}`);
      return { ms: elapsed, result, requests: req.total, perServer: req.perServer };
    };

    const cold = await measurePhase(sampler, scanOnce);
    const warm = await measurePhase(sampler, async () => {
      const runs = [];
      for (let i = 0; i < WARM_RUNS; i++) runs.push(await scanOnce());
      return runs;
    });
    const warmSources = new Map(sourceMs);
    // The last warm run: how long after the slowest source answered did the scan finish (correlate, policy, diff, snapshot)?
    const afterNetworkMs = warm.value.at(-1)!.ms - Math.max(...warmSources.values());
    await estate.setLatency(LATENCY_MS);
    const slow = await measurePhase(sampler, scanOnce);
    await estate.setLatency(0);
    const slowSources = new Map(sourceMs);
    await scanner.shutdown();

    // The snapshot write on its own, once the history is full (the scanner keeps 10 scans besides "latest").
    const snapshotBytes = Buffer.byteLength(JSON.stringify(cold.value.result));
    const historyBefore = store.list('snapshots').length - 1;
    for (let i = historyBefore; i < DEFAULT_HISTORY_SIZE; i++) saveSnapshot(store, { ...cold.value.result, startedAt: cold.value.result.startedAt + i + 1 });
    const snap = await measurePhase(sampler, () => timeRuns(3, (i) => saveSnapshot(store, { ...cold.value.result, startedAt: Date.now() + i })));
    store.close();

    const result = cold.value.result;
    const creds = result.credentials.length;
    const perSec = (n: number, t: number) => n / (t / 1000);
    const warmTimes = warm.value.map((r) => r.ms);
    const warmMedian = median(warmTimes);
    const requests = warm.value[0]!.requests;
    const slowMs = slow.value.ms;
    const parallelism = (slow.value.requests * LATENCY_MS) / slowMs;
    // Key Vault's floor under latency: list pages (25 per page) and version listings share the vault's window of 20.
    const perVault = estate.counts.secrets / estate.counts.vaults;
    const kvFloorMs = Math.max(Math.ceil(perVault / 25), Math.ceil((perVault + perVault / 25) / 20)) * LATENCY_MS;

    const rows: BenchRow[] = [
      { label: '1a full scan, cold (first run: tokens, TLS)', runs: 1, wallMs: cold.value.ms, throughput: { value: perSec(creds, cold.value.ms), unit: 'cred/s' }, memory: cold.memory },
      { label: '1b full scan, warm', runs: WARM_RUNS, wallMs: warmMedian, timings: { min: Math.min(...warmTimes), max: Math.max(...warmTimes) }, throughput: { value: perSec(creds, warmMedian), unit: 'cred/s' }, memory: warm.memory },
      { label: `1c full scan, +${LATENCY_MS} ms per request`, runs: 1, wallMs: slowMs, throughput: { value: perSec(creds, slowMs), unit: 'cred/s' }, memory: slow.memory },
      { label: `1d saveSnapshot alone (history full: ${DEFAULT_HISTORY_SIZE})`, runs: 3, wallMs: median(snap.value.times), throughput: { value: perSec(creds, median(snap.value.times)), unit: 'cred/s' }, memory: snap.memory },
    ];

    const c = estate.counts;
    const byEstate = (kind: string) => result.credentials.filter((x) => x.where.estate === kind).length;
    const sourceLine = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${ms(v)}`).join(', ');
    const serverLine = (p: Record<string, number>) => Object.entries(p).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${count(n)}`).join(', ');
    const details = [
      `estate: ${c.workspaces} workspaces × ${count(c.tokens / c.workspaces)} PATs (${count(c.tokens)}), ${count(c.scimUsers)} SCIM users + ${count(c.scimServicePrincipals)} SPs; `
        + `${c.vaults} vaults × ~${count(c.secrets / c.vaults)} secrets (${count(c.secrets)}, page size 25); ${count(c.entraApps)} Entra apps, ${count(c.entraCredentials)} credentials; ${count(c.linkedServices)} linked services`,
      `emulators run in a separate process (seeded in ${ms(estate.seedMs)}, RSS ${mb(estate.rssBytes)}); Databricks over HTTP, Entra / Key Vault / ARM over HTTPS; memory figures are the scanning process only`,
      `scan result: ${count(creds)} credentials (databricks ${count(byEstate('databricks'))}, keyvault ${count(byEstate('keyvault'))}, entra ${count(byEstate('entra'))}), `
        + `${count(result.findings.length)} findings, ${result.errors.length} estate errors, ${count(logLines)} log lines over all runs`,
      `HTTP requests per warm scan: ${count(requests)} (${serverLine(warm.value[0]!.perServer)}); cold scan: ${count(cold.value.requests)}`,
      `warm runs: ${warmTimes.map(ms).join(', ')}; per source (last warm run): ${sourceLine(warmSources)}`,
      `after the last source answered: ${ms(afterNetworkMs)} more (correlate, policy, diff with the previous scan, snapshot saved to SQLite) — ${Math.round((100 * afterNetworkMs) / warm.value.at(-1)!.ms)}% of that run`,
      `with +${LATENCY_MS} ms: ${count(slow.value.requests)} requests × ${LATENCY_MS} ms = ${ms(slow.value.requests * LATENCY_MS)} if sequential; took ${ms(slowMs)} → effective parallelism ${parallelism.toFixed(1)}×`,
      `with +${LATENCY_MS} ms, per source: ${sourceLine(slowSources)}`,
      `a vault of ~${count(perVault)} secrets needs at least ${ms(kvFloorMs)} at ${LATENCY_MS} ms: ${Math.ceil(perVault / 25)} sequential list pages, overlapped with its version listings 20 at a time (the vault's window from the published 4,000 per 10 s)`,
      `snapshot: one ScanResult is ${mb(snapshotBytes)} of JSON; saveSnapshot writes it once (latest), adds a slim summary to the history and prunes by id without reading values — ${ms(median(snap.value.times))} per scan once ${DEFAULT_HISTORY_SIZE} scans are kept (runs ${snap.value.times.map(ms).join(', ')})`,
      `concurrency: scanner.concurrencyPerHost=${config.scanner.concurrencyPerHost} bounds sources sharing a host; inside a source, each host's request gate (src/providers/host-gate.ts: window and rate from the published limit) sets the fan-out`,
    ];
    return {
      id: 'scan', title: 'Full scan of a large emulated estate', rows, details,
      data: {
        counts: c, credentials: creds, findings: result.findings.length, requestsPerWarmScan: requests, requestsPerServer: warm.value[0]!.perServer,
        coldRequests: cold.value.requests, latencyMs: LATENCY_MS, latencyRequests: slow.value.requests, effectiveParallelism: parallelism,
        warmSourceMs: Object.fromEntries(warmSources), latencySourceMs: Object.fromEntries(slowSources), estateSeedMs: estate.seedMs, afterNetworkMs, keyVaultFloorMs: kvFloorMs, snapshotBytes, saveSnapshotMs: snap.value.times, estateRssBytes: estate.rssBytes,
      },
    };
  } finally {
    await estate?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
