/**
 * Auto-rotation rules as a Keywarden module: the "Rotate automatically from now on" / Approve / Deny / Renew / Pause /
 * Resume / Revoke verbs, the /autorotate and /rules commands, and the review timer (reminders, lapsing). Firing the
 * rules after a scan is the execution side's; it asks `isRuleActive` (approvals/auto-rotation.ts).
 */
import type { Keywarden, KeywardenModule } from '../../app.js';
import { withCardDataKeys } from '../../approvals/card-data.js';
import { notingClickers } from '../../approvals/people.js';
import { HOUR_MS } from '../../clock.js';
import type { ChatGateway } from '../../domain/chat.js';
import type { WorkflowsModule } from '../module.js';
import { autorotateCommand } from './autorotate-command.js';
import { reviewRules, type ReviewPass } from './review.js';
import { ruleCardActions } from './rule-actions.js';
import { ruleChangeActions, rulesCommand } from './rules-command.js';
import type { RulesOptions } from './rules-context.js';

export interface AutoRotationRulesModule extends KeywardenModule {
  /** One review pass now (the timer runs one every hour of clock time). */
  review(): Promise<ReviewPass>;
}

export function autoRotationRulesModuleFor(keywarden: Keywarden, workflows: WorkflowsModule): AutoRotationRulesModule {
  const { config, store, clock, logger } = keywarden;
  const log = logger.child({ component: 'autorotate-rules' });
  let chat: ChatGateway | undefined = keywarden.chat;
  const options: RulesOptions = { config, store, clock, logger: log, engine: workflows.engine, authorizer: workflows.authorizer, chat: () => chat };
  workflows.engine.every('rule-review', HOUR_MS, async (signal) => {
    const pass = await reviewRules(options, signal);
    if (pass.reminded.length || pass.expired.length) log.info(pass, 'auto-rotation rule review');
  });
  return {
    name: 'autorotate-rules',
    review: () => reviewRules(options),
    commands: [autorotateCommand(options), rulesCommand(options)],
    cardActions: notingClickers(withCardDataKeys([...ruleCardActions(options), ...ruleChangeActions(options)], store), { store, clock, directory: () => workflows.directory }),
    attachChat(g) {
      chat = g;
    },
  };
}
