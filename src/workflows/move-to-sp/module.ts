/**
 * Move a pipeline to a service principal (issue 13, remedy 1) as a Keywarden module: the move-to-sp workflow kind on
 * the shared job engine, the "Move to a service principal" verb (alert cards and remedy offers) and /move-to-sp.
 */
import type { Keywarden, KeywardenModule } from '../../app.js';
import { withCardDataKeys } from '../../approvals/card-data.js';
import { notingClickers } from '../../approvals/people.js';
import { createAzureCredential } from '../../providers/azure-credential.js';
import { scanViewOf } from '../../domain/scan.js';
import type { Scanner } from '../../scanner/scanner.js';
import { providersFromConfig } from '../engine/providers.js';
import type { WorkflowsModule } from '../module.js';
import { moveToSpAction, type MoveToSpOptions } from './actions.js';
import { moveToSpCommand } from './command.js';
import { createMoveToSp } from './workflow.js';

export function moveToSpModuleFor(keywarden: Keywarden, workflows: WorkflowsModule, scanner: Pick<Scanner, 'latestOrScan'>): KeywardenModule {
  const { config, store, clock, logger } = keywarden;
  const providers = providersFromConfig(config, { credential: createAzureCredential(config.azure), clock });
  workflows.engine.register(createMoveToSp({ providers, config, clock }));
  const latestScan = async () => scanViewOf(await scanner.latestOrScan('command'));
  const options: MoveToSpOptions = {
    config, store, clock, logger: logger.child({ component: 'move-to-sp' }), engine: workflows.engine, authorizer: workflows.authorizer, providers,
    // One look-up per click, not the estate.
    scannedCredential: async (id) => {
      const c = (await latestScan()).get(id)?.credential;
      return c?.kind === 'databricks-pat' ? c : undefined;
    },
  };
  return {
    name: 'move-to-sp',
    commands: [moveToSpCommand({ ...options, latestScan })],
    cardActions: notingClickers(withCardDataKeys([moveToSpAction(options)], store), { store, clock, directory: () => workflows.directory }),
  };
}
