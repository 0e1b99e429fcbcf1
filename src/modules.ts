import type { Keywarden, KeywardenModule } from './app.js';
import { alertsModuleFor, type AlertsModule, type AlertsModuleOptions } from './alerts/index.js';
import type { ApproverCheck } from './commands/scan.js';
import { createScannerModule } from './scanner/module.js';
import type { Scanner } from './scanner/scanner.js';
import { createInventorySources, type InventorySourcesOptions } from './scanner/sources.js';
import { threadScanEngine } from './scanner/thread/engine.js';
import { pipelinesModuleFor, type PipelinesModule } from './pipelines/module.js';
import { moveToSpModuleFor } from './workflows/move-to-sp/module.js';
import { workflowsModuleFor, type WorkflowsModule, type WorkflowsModuleOptions } from './workflows/module.js';
import { planCardFor } from './workflows/plan-for.js';
import { governanceModuleFor } from './governance/module.js';
import { autoRotationRulesModuleFor, type AutoRotationRulesModule } from './workflows/autorotate/module.js';
import { workspaceControlsModuleFor } from './workflows/workspace-controls/module.js';
import { workspaceRemedyButtons } from './workflows/workspace-controls/finding-buttons.js';
import type { FindingsRemedyButtons } from './commands/findings.js';
import { retireModuleFor } from './workflows/retire/module.js';
import { autoRotationRunsModuleFor } from './workflows/autorotate/run-module.js';

/** The product's feature modules, built from config and wired to each other: scanner → alerts → workflows. */

export interface ProductModuleOptions {
  /** Overrides how approvers are recognised (default: the approvals directory: config users + Entra groups). */
  isApprover?: ApproverCheck;
  /** Retry budget of the inventory clients (tests keep it short). */
  retry?: InventorySourcesOptions['retry'];
  alerts?: Pick<AlertsModuleOptions, 'idleMs' | 'pacer'>;
  workflows?: Partial<WorkflowsModuleOptions>;
}

export type ModuleFactory = (keywarden: Keywarden) => KeywardenModule;

/** What productModules built, for callers (tests, bench) that drive the modules directly. */
export interface ProductModules {
  scanner?: Scanner;
  alerts?: AlertsModule;
  workflows?: WorkflowsModule;
  pipelines?: PipelinesModule;
  autoRotationRules?: AutoRotationRulesModule;
}

export function productModules(options: ProductModuleOptions = {}, built: ProductModules = {}): ModuleFactory[] {
  // /scan is for approvers: the same directory (users + Entra groups) that authorizes card clicks decides.
  const isApprover: ApproverCheck = options.isApprover ?? (async (actor) =>
    Boolean(actor.aadObjectId) && (await built.workflows?.directory.isApprover(actor.aadObjectId!)) === true);
  // Remedy buttons under /findings, added by the modules after the scanner.
  const findingsButtons: FindingsRemedyButtons[] = [];
  return [
    (k) => {
      const { metrics } = k;
      // Scans run on their own thread when another thread can open the store (not an in-memory one).
      const address = k.config.scanner.thread ? k.store.address : undefined;
      const engine = address
        ? threadScanEngine({ config: k.config, address, clock: k.clock, logger: k.logger, retry: options.retry, onCall: metrics.recordCall, onThread: (running) => metrics.scanThread.set(running ? 1 : 0) })
        : undefined;
      const sources = engine ? [] : createInventorySources(k.config, {
        clock: k.clock,
        retry: options.retry,
        instrument: { fetchFor: (estate) => metrics.instrumentFetch(estate), keyVaultPolicy: metrics.keyVaultPolicy() as never },
      }).sources;
      const mod = createScannerModule(k, { sources, engine, isApprover, findingButtons: workspaceRemedyButtons(k), findingsButtons: () => findingsButtons });
      built.scanner = mod.scanner;
      mod.scanner.onScan((result) => metrics.recordScan(result));
      return mod;
    },
    (k) => {
      if (!built.scanner) throw new Error('the alerts module needs the scanner module registered before it');
      built.alerts = alertsModuleFor(k, {
        ...options.alerts,
        isApprover,
        scanner: built.scanner,
        planCard: (alert) => planCardFor(alert.credential, k.config),
        // One directory for every click: Acknowledge / Snooze use the workflows' (with Entra group lookups).
        approvers: () => built.workflows && { directory: built.workflows.directory, authorizer: built.workflows.authorizer },
        onOutcome: (o) => {
          k.metrics.alerts.inc({ operation: 'opened' }, o.opened.length);
          k.metrics.alerts.inc({ operation: 'raised' }, o.raised.length);
          k.metrics.alerts.inc({ operation: 'resolved' }, o.resolved.length);
        },
      });
      return built.alerts;
    },
    (k) => {
      built.workflows = workflowsModuleFor(k, {
        ...options.workflows,
        onJobEvent: (event) => {
          if (event.type === 'finished' && !event.again) k.metrics.actions.inc({ action: event.job.kind, result: event.job.state });
          options.workflows?.onJobEvent?.(event);
        },
      });
      return built.workflows;
    },
    (k) => {
      if (!built.workflows) throw new Error('the pipelines module needs the workflows module registered before it');
      built.pipelines = pipelinesModuleFor(k, built.workflows);
      return built.pipelines;
    },
    (k) => {
      if (!built.scanner) throw new Error('the governance module needs the scanner module registered before it');
      return governanceModuleFor(k, built.scanner);
    },
    (k) => (built.autoRotationRules = autoRotationRulesModuleFor(k, built.workflows!)),
    (k) => workspaceControlsModuleFor(k, built.workflows!),
    (k) => moveToSpModuleFor(k, built.workflows!, built.scanner!),
    (k) => retireModuleFor(k, built.workflows!, built.scanner!, findingsButtons),
    (k) => autoRotationRunsModuleFor(k, built),
  ];
}
