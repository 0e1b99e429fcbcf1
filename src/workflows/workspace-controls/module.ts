/**
 * Workspace token controls as a Keywarden module (issue 13, points 2 and 3): the max-lifetime and restrict-tokens
 * workflows on the shared job engine, their card verbs (Enforce max lifetime / Restrict token creation, from
 * /findings, commands and Rollback buttons) and the /max-lifetime and /restrict-tokens commands.
 */
import type { Keywarden, KeywardenModule } from '../../app.js';
import { withCardDataKeys } from '../../approvals/card-data.js';
import { notingClickers } from '../../approvals/people.js';
import type { WorkflowsModule } from '../module.js';
import { workspaceControlActions, type RemedyActionsOptions } from './actions.js';
import { maxLifetimeCommand, restrictTokensCommand } from './commands.js';
import { createMaxLifetime } from './max-lifetime.js';
import { createRestrictTokens } from './restrict-tokens.js';

export function workspaceControlsModuleFor(k: Keywarden, workflows: WorkflowsModule): KeywardenModule {
  const { config, store, clock, logger } = k;
  const deps = { providers: workflows.providers, config, clock, store };
  // Registered before start, so resumeJobs finds these kinds after a crash.
  workflows.engine.register(createMaxLifetime(deps));
  workflows.engine.register(createRestrictTokens(deps));
  const options: RemedyActionsOptions = {
    config, store, clock, logger: logger.child({ component: 'workspace-controls' }), engine: workflows.engine, authorizer: workflows.authorizer, providers: workflows.providers,
  };
  return {
    name: 'workspace-controls',
    commands: [maxLifetimeCommand(options), restrictTokensCommand(options)],
    cardActions: notingClickers(withCardDataKeys(workspaceControlActions(options), store), { store, clock, directory: () => workflows.directory }),
  };
}
