/**
 * Retire unused tokens and revoke on demand (issue 13, points 4 and 5) as a Keywarden module on top of the workflows
 * module: the `retire-unused` workflow, /retire-unused and /revoke, the retireUnused / revokeOnDemand / keepToken
 * verbs, and a "Retire unused tokens" button under /findings for each workspace with unused or unrotated PATs.
 */
import type { Keywarden, KeywardenModule } from '../../app.js';
import { withCardDataKeys } from '../../approvals/card-data.js';
import { notingClickers } from '../../approvals/people.js';
import type { FindingsRemedyButtons } from '../../commands/findings.js';
import type { ChatGateway } from '../../domain/chat.js';
import type { Scanner } from '../../scanner/scanner.js';
import type { WorkflowsModule } from '../module.js';
import { offerRetire, remedyCardActions, retireOptionsFor, type RemedyActionsOptions } from './actions.js';
import { retireUnusedCommand, revokeCommand } from './commands.js';
import { planRetire, retireBatchOf } from './planner.js';
import { createRetireUnused } from './retire.js';

export function retireModuleFor(keywarden: Keywarden, workflows: WorkflowsModule, scanner: Scanner, findingsButtons?: FindingsRemedyButtons[]): KeywardenModule {
  const { config, store, clock, logger } = keywarden;
  let chat: ChatGateway | undefined = keywarden.chat;
  // Registered before start, so resumeJobs finds a waiting batch after a restart.
  workflows.engine.register(createRetireUnused({ providers: workflows.providers, config, clock, chat: () => chat }));
  const options: RemedyActionsOptions = {
    config, store, clock, logger: logger.child({ component: 'retire' }), engine: workflows.engine, authorizer: workflows.authorizer, scans: scanner,
  };

  // Under /findings: one button per workspace whose unused / not-rotated PAT findings are shown; a click shows the plan.
  findingsButtons?.push(async (scan, shown, ctx, max) => {
    const scopes = [...new Set(shown.filter((f) => (f.code === 'unused' || f.code === 'not-rotated') && f.estate === 'databricks').map((f) => f.scope))].sort();
    const buttons: Array<{ title: string; verb: string; data: Record<string, unknown> }> = [];
    for (const scope of scopes) {
      if (buttons.length >= max) break;
      const ro = retireOptionsFor(options, scope);
      const plan = planRetire(await retireBatchOf(scan, config, ro), ro);
      if (Number(plan.facts.tokenCount) === 0) continue;
      const offer = offerRetire(options, { scope, unusedDays: ro.unusedDays, offeredBy: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name }, ctx });
      buttons.push({ title: `Retire unused tokens in ${scope} (${plan.facts.tokenCount})`, verb: 'retireUnused', data: { offerId: offer.id, nonce: offer.nonce } });
    }
    return buttons;
  });

  return {
    name: 'retire',
    commands: [retireUnusedCommand(options), revokeCommand(options)],
    cardActions: notingClickers(withCardDataKeys(remedyCardActions(options), store), { store, clock, directory: () => workflows.directory }),
    attachChat(g) {
      chat = g;
    },
  };
}
