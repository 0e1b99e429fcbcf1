import type { Keywarden, KeywardenModule } from './app.js';
import { alertsModuleFor } from './alerts/index.js';
import { createScannerModule } from './scanner/module.js';
import { createInventorySources } from './scanner/sources.js';
import type { ApproverCheck } from './commands/scan.js';
import { workflowsModuleFor, type WorkflowsModule } from './workflows/module.js';
import { planCardFor } from './workflows/plan-for.js';

/** The product's feature modules, built from config and wired to each other: scanner → alerts → workflows. */

export interface ProductModuleOptions {
  /** Overrides how approvers are recognised (default: the approvals directory: config users + Entra groups). */
  isApprover?: ApproverCheck;
}

export type ModuleFactory = (keywarden: Keywarden) => KeywardenModule;

export function productModules(options: ProductModuleOptions = {}): ModuleFactory[] {
  let scanner: ReturnType<typeof createScannerModule>['scanner'] | undefined;
  let workflows: WorkflowsModule | undefined;
  // /scan is for approvers: the same directory (users + Entra groups) that authorizes card clicks decides.
  const isApprover: ApproverCheck = options.isApprover ?? (async (actor) =>
    Boolean(actor.aadObjectId) && (await workflows?.directory.isApprover(actor.aadObjectId!)) === true);
  return [
    (k) => {
      const { metrics } = k;
      const { sources } = createInventorySources(k.config, {
        clock: k.clock,
        instrument: { fetchFor: (estate) => metrics.instrumentFetch(estate), keyVaultPolicy: metrics.keyVaultPolicy() as never },
      });
      const mod = createScannerModule(k, { sources, isApprover });
      scanner = mod.scanner;
      scanner.onScan((result) => metrics.recordScan(result));
      return mod;
    },
    (k) => {
      if (!scanner) throw new Error('the alerts module needs the scanner module registered before it');
      return alertsModuleFor(k, {
        scanner,
        planCard: (alert) => planCardFor(alert.credential, k.config),
        onOutcome: (o) => {
          k.metrics.alerts.inc({ operation: 'opened' }, o.opened.length);
          k.metrics.alerts.inc({ operation: 'raised' }, o.raised.length);
          k.metrics.alerts.inc({ operation: 'resolved' }, o.resolved.length);
        },
      });
    },
    (k) => {
      workflows = workflowsModuleFor(k, {
        onJobEvent: (event) => {
          if (event.type === 'finished') k.metrics.actions.inc({ action: event.job.kind, result: event.job.state });
        },
      });
      return workflows;
    },
  ];
}
