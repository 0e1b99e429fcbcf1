/**
 * Pipelines as a Keywarden module: the authenticated JIT API for Data Factory, the callers' standing approvals
 * (synced from config into the store and audit at start), and a timer that applies releases asked for while a job
 * was still creating its token.
 */
import type { Keywarden, KeywardenModule } from '../app.js';
import { pipelineStandingApproval, syncStandingApprovals } from '../approvals/standing.js';
import type { ChatGateway } from '../domain/chat.js';
import type { WorkflowsModule } from '../workflows/module.js';
import { pipelineApiRoutes } from './api.js';
import { createCallerAuthenticator } from './auth.js';
import { PipelineGrants } from './grants.js';
import { whileLeader } from '../replicas/leadership.js';

export interface PipelinesModule extends KeywardenModule {
  readonly grants: PipelineGrants;
}

export function pipelinesModuleFor(keywarden: Keywarden, workflows: WorkflowsModule): PipelinesModule {
  const { config, store, clock, logger } = keywarden;
  const log = logger.child({ component: 'pipelines' });
  let chat: ChatGateway | undefined = keywarden.chat;
  const grants = new PipelineGrants({
    config, store, clock, logger: log, engine: workflows.engine, authorizer: workflows.authorizer, chat: () => chat,
  });
  const auth = createCallerAuthenticator(config);
  workflows.engine.every('pipeline-releases', 2_000, async () => {
    for (const grant of grants.releasesDue()) {
      if (grants.applyRelease(grant)) workflows.engine.kick(grant.jobId!);
    }
  });
  return {
    name: 'pipelines',
    grants,
    httpRoutes: config.pipelines.callers.length > 0 ? pipelineApiRoutes({ auth, grants, config, store }) : [],
    attachChat(g) {
      chat = g;
    },
    start() {
      const now = clock.now();
      syncStandingApprovals(store, config.pipelines.callers.map((c) => pipelineStandingApproval(c, config, now)));
      // Grants a crash interrupted are carried on by the leader (at start, or when it takes over).
      whileLeader(keywarden.leadership, () => void grants.resumeUnstarted().then((n) => {
        if (n) log.info({ resumed: n }, 'resumed pipeline grants a restart interrupted');
      }), () => undefined);
      if (config.pipelines.callers.length) log.info({ callers: config.pipelines.callers.map((c) => c.name), audiences: config.pipelines.audiences }, 'pipeline JIT API on POST /api/jit');
    },
  };
}
