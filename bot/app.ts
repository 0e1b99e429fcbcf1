import { ActivityTypes, CardFactory, type TurnContext } from 'botbuilder';
import { AdaptiveCardActionExecuteResponseType, Application, type TeamsAdapter, type TurnState } from '@microsoft/teams-ai';
import type { Keywarden } from '../src/app.js';
import type { AdaptiveCard, CardAction, ChatCommand, ChatContext } from '../src/domain/chat.js';
import type { Logger } from '../src/logging/logger.js';
import { actorOf, conversationOf } from './identity.js';
import { registerInstallationRoutes } from './install.js';
import {
  actionFailedCard, cardInvokeResponse, commandFailedText, incidentId, messageInvokeResponse, replyActivity, unknownCommandText,
} from './messages.js';

/** The teams-ai Application: commands, card verbs and install events routed to the Keywarden core. */

export interface TeamsApplicationOptions {
  adapter: TeamsAdapter;
  botAppId: string;
  keywarden: Keywarden;
  logger: Logger;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `/help`, `help`, ` /HELP args` — anchored so "/helpme" or "please help" do not match. */
export function commandPattern(name: string): RegExp {
  return new RegExp(`^\\s*\\/?${escapeRegExp(name)}(?![\\w-])`, 'i');
}

/** Text after mention removal; a mention without a matching entity is stripped too. */
function commandText(context: TurnContext): string {
  return (context.activity.text ?? '').replace(/^\s*(?:<at>[^<]*<\/at>\s*)+/i, '').replace(/&nbsp;/g, ' ').trim();
}

function chatContextOf(context: TurnContext): ChatContext {
  const a = context.activity;
  return { actor: actorOf(a), conversation: conversationOf(a), replyToId: a.replyToId || undefined };
}

function untrustedData(data: unknown): Record<string, unknown> {
  return data && typeof data === 'object' && !Array.isArray(data) ? data as Record<string, unknown> : {};
}

export function createTeamsApplication(options: TeamsApplicationOptions): Application<TurnState> {
  const { adapter, botAppId, keywarden } = options;
  const log = options.logger.child({ component: 'bot-routes' });
  const app = new Application<TurnState>({
    adapter,
    botAppId,
    startTypingTimer: false,
    removeRecipientMention: true,
    adaptiveCards: { actionExecuteResponseType: AdaptiveCardActionExecuteResponseType.REPLACE_FOR_ALL },
  });

  /** A turn cut short because its replica was fenced meanwhile (its writes refused): why, instead of "it failed". */
  const fencedAnswer = (what: Record<string, unknown>, err: unknown): string | undefined => {
    const fence = keywarden.fenced;
    if (!fence) return undefined;
    log.warn({ ...what, err: (err as Error)?.message }, 'turn cut short by the fence');
    return fence.userMessage;
  };

  const runCommand = async (context: TurnContext, command: ChatCommand, text: string): Promise<void> => {
    const args = text.replace(commandPattern(command.name), '').trim();
    const chat = chatContextOf(context);
    let activity;
    try {
      activity = replyActivity(await command.handle(args, chat));
    } catch (err) {
      const fenced = fencedAnswer({ command: command.name, user: chat.actor.aadObjectId }, err);
      if (fenced) activity = replyActivity({ kind: 'text', text: fenced });
      else {
        const incident = incidentId();
        log.error({ err, incident, command: command.name, user: chat.actor.aadObjectId }, 'command failed');
        activity = replyActivity({ kind: 'text', text: commandFailedText(command.name, incident) });
      }
    }
    await context.sendActivity(activity);
  };

  const runCardAction = async (context: TurnContext, action: CardAction, data: unknown): Promise<AdaptiveCard | string> => {
    const chat = chatContextOf(context);
    let result: { card: AdaptiveCard } | { text: string };
    let failed = false;
    try {
      result = await action.handle(untrustedData(data), chat);
    } catch (err) {
      // Fenced meanwhile: the clicker is told why, and the card stays as it was.
      const fenced = fencedAnswer({ verb: action.verb, user: chat.actor.aadObjectId }, err);
      if (fenced) result = { text: fenced };
      else {
        const incident = incidentId();
        log.error({ err, incident, verb: action.verb, user: chat.actor.aadObjectId }, 'card action failed');
        result = { card: actionFailedCard(action.verb, incident) };
      }
      failed = true;
    }
    // Answer ourselves: the fallback invoke route (no Action.Execute type) has no teams-ai answer, which Teams shows as a 501.
    if ('text' in result) {
      await context.sendActivity(messageInvokeResponse(result.text));
      return result.text;
    }
    // Replace for everyone ourselves, so a failed PUT still answers the click instead of failing the invoke.
    // An error card goes to the clicker only: one bad click must not take the buttons away from everyone.
    // A refresh view goes to the asking client only: replacing the card for everyone would trigger refreshes again.
    if (context.activity.replyToId && !failed && !action.view) {
      try {
        await context.updateActivity({ type: ActivityTypes.Message, id: context.activity.replyToId, attachments: [CardFactory.adaptiveCard(result.card)] });
      } catch (err) {
        log.warn({ err, verb: action.verb, replyToId: context.activity.replyToId }, 'could not replace the card for everyone; only the clicker sees the new card');
      }
    }
    await context.sendActivity(cardInvokeResponse(result.card));
    return result.card;
  };

  for (const action of keywarden.cardActions) {
    app.adaptiveCards.actionExecute(action.verb, (context, _state, data) => runCardAction(context, action, data));
  }
  registerInstallationRoutes(app, keywarden, options.logger);
  for (const command of keywarden.commands) {
    app.message(commandPattern(command.name), (context) => runCommand(context, command, commandText(context)));
  }

  // Last: anything else. Looks commands up again (modules added late, or a mention teams-ai did not strip).
  app.activity(ActivityTypes.Message, async (context) => {
    const text = commandText(context);
    const command = keywarden.commands.find((c) => commandPattern(c.name).test(text));
    if (command) return runCommand(context, command, text);
    if (!text && context.activity.value) {
      await context.sendActivity('That button belongs to an older card I no longer handle. Ask me for a fresh one with /help.');
      return;
    }
    const inChannel = conversationOf(context.activity).kind !== 'personal';
    await context.sendActivity(unknownCommandText(text, keywarden.config.bot.name, inChannel));
  });

  // Card verbs nobody handles (an old card, a forged invoke): answer instead of a bare 501.
  app.activity(ActivityTypes.Invoke, async (context) => {
    if (context.activity.name !== 'adaptiveCard/action') return;
    const verb = String((context.activity.value as { action?: { verb?: unknown } } | undefined)?.action?.verb ?? '');
    const action = keywarden.cardActions.find((a) => a.verb === verb);
    if (action) {
      await runCardAction(context, action, (context.activity.value as { action?: { data?: unknown } }).action?.data);
      return;
    }
    log.info({ verb: verb.slice(0, 64) }, 'card action with an unknown verb');
    await context.sendActivity(messageInvokeResponse('This card is out of date. Ask me for a fresh one.'));
  });

  return app;
}
