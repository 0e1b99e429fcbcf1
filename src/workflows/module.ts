/**
 * Approvals + workflows as a Keywarden module: the Rotate / Revoke / Confirm / Rollback / JIT verbs, the /jit and
 * /audit commands, the job engine (resumed at start, timer on the clock) and the JIT sweeper.
 */
import type { Keywarden, KeywardenModule } from '../app.js';
import { ApproverDirectory, ClickAuthorizer, type GroupMembershipLookup } from '../approvals/authorize.js';
import { withCardDataKeys } from '../approvals/card-data.js';
import { notingClickers } from '../approvals/people.js';
import type { Clock } from '../clock.js';
import { MINUTE_MS } from '../clock.js';
import { auditCommand } from '../commands/audit.js';
import { jitCommand } from '../commands/jit.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { ChatGateway } from '../domain/chat.js';
import type { Logger } from '../logging/logger.js';
import { createAzureCredential } from '../providers/azure-credential.js';
import type { Store } from '../store/store.js';
import { workflowCardActions, type WorkflowActionsOptions } from './actions.js';
import { jitCardActions } from './jit/jit-actions.js';
import { createJit, jitVault } from './jit/jit.js';
import { singleInstance, whileLeader, type Leadership } from '../replicas/leadership.js';
import { sweepExpiredJit } from './jit/jit-sweeper.js';
import { JobEngine, type JobEngineOptions } from './engine/journal.js';
import type { JobEvent } from './engine/workflow.js';
import { providersFromConfig, type WorkflowDeps, type WorkflowProviders } from './engine/providers.js';
import { createJobReporter } from './engine/reporter.js';
import { createRevoke } from './revoke/revoke.js';
import { createRollback } from './rotate/rollback.js';
import { createEntraRotation } from './rotate/rotate-entra.js';
import { createPatRotation } from './rotate/rotate-pat.js';
import { ensureJobPointers, failedJobCount, openJobs } from './engine/open-jobs.js';

/** /readyz counts failed jobs up to this many. */
const FAILED_CAP = 1_000;

export interface WorkflowsModuleOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  providers: WorkflowProviders;
  /** Group membership for approvers (default: Graph, when approvals.groups is set). */
  groups?: GroupMembershipLookup;
  gateway?: ChatGateway;
  engine?: Pick<JobEngineOptions, 'leaseMs' | 'pollMs' | 'maxAttempts' | 'backoff' | 'stopTimeoutMs'>;
  /** Clock time between JIT sweeper passes (default 10 min). */
  sweepEveryMs?: number;
  /** Told about every job milestone and finish (metrics). */
  onJobEvent?: (event: JobEvent) => void;
  /** Only the leader replica resumes jobs and runs the job timer (default: a single instance). */
  leadership?: Leadership;
}

export interface WorkflowsModule extends KeywardenModule {
  readonly engine: JobEngine;
  /** The cloud clients the workflows act through (feature modules built on the engine use the same ones). */
  readonly providers: WorkflowProviders;
  readonly authorizer: ClickAuthorizer;
  readonly directory: ApproverDirectory;
}

export function createWorkflowsModule(options: WorkflowsModuleOptions): WorkflowsModule {
  const { config, store, clock } = options;
  const log = options.logger.child({ component: 'workflows' });
  let gateway = options.gateway;
  const deps: WorkflowDeps = { providers: options.providers, config, clock };
  const leadership = options.leadership ?? singleInstance;
  let unfollow: (() => void) | undefined;
  const groups = options.groups ?? (config.approvals.groups.length + config.alerts.responders.groups.length > 0 ? { isMemberOfAny: (u: string, g: string[], o?: { signal?: AbortSignal }) => options.providers.graph().isMemberOfAny(u, g, o) } : undefined);
  const directory = new ApproverDirectory({ approvals: config.approvals, responders: config.alerts.responders, groups, clock });
  const authorizer = new ClickAuthorizer({ config, directory, store, clock, logger: log });
  const engine = new JobEngine({
    store, clock, logger: log,
    workflows: [createPatRotation(deps), createEntraRotation(deps), createRevoke(deps), createRollback(deps), createJit(deps)],
    onEvent: (() => {
      const report = createJobReporter({ config, store, clock, chat: () => gateway });
      return async (event: JobEvent) => {
        options.onJobEvent?.(event);
        await report(event);
      };
    })(),
    isLeader: () => leadership.isLeader(),
    ...options.engine,
  });
  engine.every('jit-sweeper', options.sweepEveryMs ?? 10 * MINUTE_MS, async (signal) => {
    await sweepExpiredJit({ providers: options.providers, clock, vault: jitVault(config), moreVaults: config.pipelines.callers.flatMap((c) => c.vaults), signal, logger: log });
  });
  const actionOptions: WorkflowActionsOptions = { config, store, clock, logger: log, engine, authorizer };

  return {
    name: 'workflows',
    engine, authorizer, directory, providers: options.providers,
    commands: [jitCommand(actionOptions, { chat: () => gateway }), auditCommand({ store })],
    cardActions: notingClickers(withCardDataKeys([...workflowCardActions(actionOptions), ...jitCardActions(actionOptions)], store), { store, clock, directory: () => directory }),
    readiness: [{
      name: 'jobs',
      check: () => {
        // Open jobs through their subject locks, failed ones through their pointers: the probe never lists the jobs.
        const open = openJobs(store).length;
        const failed = failedJobCount(store, FAILED_CAP + 1);
        const failedText = failed > FAILED_CAP ? `more than ${FAILED_CAP}` : String(failed);
        return { ok: true, detail: `${open} unfinished job(s)${failed ? `, ${failedText} failed and need a person (see /audit)` : ''}` };
      },
    }],
    attachChat(g) {
      gateway = g;
    },
    start() {
      try {
        const written = ensureJobPointers(store, clock.now());
        if (written > 0) log.info({ pointers: written }, 'finished jobs from before the job pointers now have them');
      } catch (err) {
        log.error({ err }, 'could not give the finished jobs their pointers; /readyz may under-count failed jobs');
      }
      // Jobs interrupted by a crash or restart continue (or compensate) without waiting for a click — on the leader,
      // at start or when it takes over from a replica that died mid-job.
      unfollow = whileLeader(leadership, () => {
        void engine.resumeJobs().then((jobs) => {
          if (jobs.length) log.info({ jobs: jobs.map((j) => ({ id: j.id, state: j.state })) }, 'resumed unfinished jobs');
        }).catch((err) => log.error({ err }, 'resuming jobs failed; the job timer will retry'));
      }, () => undefined);
      engine.start();
    },
    async stop() {
      unfollow?.();
      await engine.stop();
    },
  };
}

/** The module built from the core's config: providers from config and the shared Azure credential. */
export function workflowsModuleFor(keywarden: Keywarden, overrides: Partial<WorkflowsModuleOptions> = {}): WorkflowsModule {
  const { config, store, clock, logger } = keywarden;
  const providers = overrides.providers ?? providersFromConfig(config, { credential: createAzureCredential(config.azure), clock });
  return createWorkflowsModule({ config, store, clock, logger, providers, gateway: keywarden.chat, leadership: keywarden.leadership, ...overrides });
}
