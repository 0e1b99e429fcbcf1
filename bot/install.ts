import { ActivityTypes, type TurnContext } from 'botbuilder';
import type { Application, TurnState } from '@microsoft/teams-ai';
import type { Keywarden } from '../src/app.js';
import type { Logger } from '../src/logging/logger.js';
import { actorOf, conversationOf } from './identity.js';
import { replyActivity } from './messages.js';

/**
 * Install events → durable conversation references. Teams sends both `installationUpdate` and
 * `conversationUpdate` (bot in membersAdded); storing twice is harmless (same key, last writer wins).
 */

function botIsAmong(context: TurnContext, members: Array<{ id?: string }> | undefined): boolean {
  const botId = context.activity.recipient?.id;
  return Boolean(botId && members?.some((m) => m.id === botId));
}

export function registerInstallationRoutes(app: Application<TurnState>, keywarden: Keywarden, logger: Logger): void {
  const log = logger.child({ component: 'bot-install' });

  const forward = async (context: TurnContext, action: 'add' | 'remove'): Promise<void> => {
    const activity = context.activity;
    const replies = await keywarden.onInstallation({ action, conversation: conversationOf(activity), actor: actorOf(activity) });
    for (const reply of replies) {
      await context.sendActivity(replyActivity(reply));
      reply.afterSend?.();
    }
  };

  app.activity(ActivityTypes.InstallationUpdate, async (context) => {
    // "add", "add-upgrade", "remove", "remove-upgrade"
    const action = String(context.activity.action ?? '').startsWith('remove') ? 'remove' : 'add';
    await forward(context, action);
  });

  app.conversationUpdate('membersAdded', async (context) => {
    if (botIsAmong(context, context.activity.membersAdded)) await forward(context, 'add');
    else log.debug({ conversationId: context.activity.conversation?.id }, 'members added (not the bot)');
  });

  app.conversationUpdate('membersRemoved', async (context) => {
    if (botIsAmong(context, context.activity.membersRemoved)) await forward(context, 'remove');
  });
}
