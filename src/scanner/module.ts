import type { Keywarden, KeywardenModule, ReadinessCheck } from '../app.js';
import type { Clock } from '../clock.js';
import { HOUR_MS } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import { expiringCommand, expiringPageAction } from '../commands/expiring.js';
import { findingsCommand, type FindingsDeps, type FindingsRemedyButtons } from '../commands/findings.js';
import { isApprover, scanCommand, type ApproverCheck } from '../commands/scan.js';
import { ago } from '../commands/view.js';
import type { JobRecord } from '../domain/job.js';
import { openJobs } from '../workflows/engine/open-jobs.js';
import { credentialsInRotation, type CredentialInRotation } from '../domain/rotation-state.js';
import { singleInstance, whileLeader, type Leadership } from '../replicas/leadership.js';
import type { Store } from '../store/store.js';
import { createScanner, type InventorySource, type Scanner, type ScannerOptions } from './scanner.js';
import { createInventorySources } from './sources.js';

/** The scanner as a Keywarden module: /expiring, /findings, /scan, the "show more" verb, readiness and start/stop. */

export interface ScannerModuleOptions {
  scanner: Scanner;
  config: Pick<KeywardenConfig, 'approvals'>;
  clock: Clock;
  /** Who may run /scan (default: config.approvals.users by Entra object id). */
  isApprover?: ApproverCheck;
  /** Credentials in a rotation grace window, for /expiring (read from the job records). */
  rotations?: () => ReadonlyMap<string, CredentialInRotation>;
  /** Remedy buttons /findings shows under a finding (governance remedies). */
  findingButtons?: FindingsDeps['findingButtons'];
  /** Remedy buttons under /findings, from modules registered later (read at answer time). */
  findingsButtons?: () => readonly FindingsRemedyButtons[];
  /** Only the leader replica runs the schedule and the scan at start (default: a single instance). */
  leadership?: Leadership;
}

function readiness(scanner: Scanner, clock: Clock, leadership: Leadership): ReadinessCheck[] {
  return [
    {
      name: 'scheduler',
      check: () => (scanner.isScheduled
        ? { ok: true }
        : !leadership.isLeader() ? { ok: true, detail: 'follower: the leader replica runs the scan schedule' }
        : { ok: false, detail: 'the scan schedule is not running — check scanner.schedule and the start-up log' }),
    },
    {
      name: 'lastScan',
      check: () => {
        const last = scanner.lastScan();
        if (!last) return { ok: false, detail: scanner.isScanning ? 'the first scan is still running' : 'no scan has completed yet — run /scan or keywarden scan' };
        // Stale after two missed runs (at least an hour), so one slow or failed run is not an outage.
        const staleAfter = Math.max(HOUR_MS, 2 * (scanner.scheduleInterval() ?? 6 * HOUR_MS));
        const age = clock.now() - last.finishedAt;
        const errors = last.errors.length ? `, ${last.errors.length} estate error(s): ${last.errors.map((e) => e.scope).join(', ')}` : '';
        if (age > staleAfter) return { ok: false, detail: `the last scan finished ${ago(last.finishedAt, clock.now())} — scheduled scans are not completing${errors}` };
        return { ok: true, detail: `finished ${ago(last.finishedAt, clock.now())}${errors}` };
      },
    },
  ];
}

export function scannerModule(options: ScannerModuleOptions): KeywardenModule {
  const { scanner, clock } = options;
  const approverCheck = options.isApprover ?? ((actor) => isApprover(actor, options.config.approvals));
  const deps = { scans: scanner, clock, rotations: options.rotations, findingButtons: options.findingButtons, remedyButtons: options.findingsButtons };
  const leadership = options.leadership ?? singleInstance;
  let unfollow: (() => void) | undefined;
  return {
    name: 'scanner',
    commands: [expiringCommand(deps), findingsCommand(deps), scanCommand({ ...deps, isApprover: approverCheck })],
    cardActions: [expiringPageAction(deps)],
    readiness: readiness(scanner, clock, leadership),
    start: () => {
      // A replica that takes over scans at once when scanOnStart is set: a scan the old leader died in is redone.
      unfollow = whileLeader(leadership, () => scanner.startSchedule(), () => void scanner.stopSchedule());
    },
    stop: () => {
      unfollow?.();
      return scanner.shutdown();
    },
  };
}

export interface CoreScannerOptions extends Pick<ScannerOptions, 'sourceTimeoutMs' | 'historySize' | 'engine'> {
  /** Default: every configured estate over the real providers (createInventorySources). */
  sources?: readonly InventorySource[];
  isApprover?: ApproverCheck;
  findingButtons?: FindingsDeps['findingButtons'];
  findingsButtons?: () => readonly FindingsRemedyButtons[];
}

/**
 * The scanner module built from a Keywarden core — usable as a `modules` factory of startKeywarden. The returned
 * module carries its `scanner` so alerts can subscribe with `scanner.onScan`.
 */
export function createScannerModule(keywarden: Keywarden, options: CoreScannerOptions = {}): KeywardenModule & { scanner: Scanner } {
  const sources = options.sources ?? createInventorySources(keywarden.config, { clock: keywarden.clock }).sources;
  const scanner = createScanner({
    sources, config: keywarden.config, store: keywarden.store, clock: keywarden.clock, logger: keywarden.logger,
    sourceTimeoutMs: options.sourceTimeoutMs, historySize: options.historySize, engine: options.engine,
  });
  const { store } = keywarden;
  const rotations = () => credentialsInRotation(store.isOpen ? jobsAtWork(store) : []);
  const module = scannerModule({ scanner, config: keywarden.config, clock: keywarden.clock, isApprover: options.isApprover, rotations, findingButtons: options.findingButtons, findingsButtons: options.findingsButtons, leadership: keywarden.leadership });
  return {
    ...module,
    // Stopped by a fence: the scan thread's own store connection refuses writes before the scan winds down.
    stop: () => {
      if (keywarden.fenced) scanner.fence(keywarden.fenced.reason);
      return module.stop?.();
    },
    scanner,
  };
}

/**
 * The jobs still at work, found through the lock each holds on its subject (`active:<id>` in approvals, taken with the
 * job and freed when it ends: approvals/record.ts): a grace window or a rollback is one of them, so the finished jobs
 * (every job ever run) are never read. The Store port has no filter on a record's value; the locks are its index.
 */
function jobsAtWork(store: Store): JobRecord[] {
  return openJobs(store);
}

/** Builds the scanner module and registers it (before keywarden.start()); returns the scanner. */
export function installScanner(keywarden: Keywarden, options: CoreScannerOptions = {}): Scanner {
  const module = createScannerModule(keywarden, options);
  keywarden.extend(module);
  return module.scanner;
}
