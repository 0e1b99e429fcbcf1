import { randomBytes } from 'node:crypto';
import { ActivityTypes, CardFactory, MessageFactory, type Activity, type Attachment, type TurnContext } from 'botbuilder';
import { renderCard } from '../src/cards/render.js';
import type { AdaptiveCard, MessageContent, Reply } from '../src/domain/chat.js';

/** Plain replies and message content → Bot Framework activities, and the friendly faces of failures. */

function cardAttachment(card: AdaptiveCard): Attachment {
  return CardFactory.adaptiveCard(card);
}

/** One activity per reply: several cards travel as one message (one send counts once against Teams' limits). */
export function replyActivity(reply: Reply): Partial<Activity> {
  switch (reply.kind) {
    case 'text':
      return MessageFactory.text(reply.text);
    case 'card':
      return MessageFactory.attachment(cardAttachment(reply.card), reply.text);
    case 'cards':
      return MessageFactory.list(reply.cards.map(cardAttachment), reply.text);
  }
}

/** A MessageContent for a proactive send; mentions become `mention` entities pointing at Entra object ids. */
export function contentActivity(content: MessageContent): Partial<Activity> {
  const activity: Partial<Activity> = { type: ActivityTypes.Message };
  if (content.text) {
    activity.text = content.text;
    activity.textFormat = 'markdown';
  }
  if (content.card) activity.attachments = [cardAttachment(content.card)];
  if (content.mentions?.length) {
    activity.entities = content.mentions.map((m) => ({
      type: 'mention',
      text: `<at>${m.name}</at>`,
      mentioned: { id: m.aadObjectId, name: m.name },
    }));
  }
  return activity;
}

/** A short reference operators can grep for in the log; the user sees it instead of a stack. */
export function incidentId(): string {
  return randomBytes(4).toString('hex');
}

export function commandFailedText(commandName: string, incident: string): string {
  return `Sorry — /${commandName} failed on my side (reference ${incident}). Try again in a minute; if it keeps failing, ask an admin to look up ${incident} in the Keywarden log.`;
}

export function unknownCommandText(input: string, botName: string, inChannel: boolean): string {
  const word = input.trim().split(/\s+/)[0] ?? '';
  const hint = inChannel ? `@${botName} /help` : '/help';
  if (!word) return `Hi! Type ${hint} to see what I can do.`;
  const shown = word.length > 40 ? `${word.slice(0, 40)}…` : word;
  return `I don't know "${shown}". Type ${hint} to see the commands I understand.`;
}

/** The card that replaces a clicked card when its action failed: no stack, no secret, just what to do. */
export function actionFailedCard(verb: string, incident: string): AdaptiveCard {
  return renderCard('text', {
    title: 'That did not work',
    color: 'Attention',
    text: `The "${verb}" action failed on my side (reference ${incident}). Nothing was changed by this click unless a follow-up message says so. Ask me for a fresh card and try again.`,
  });
}

/** Invoke response bodies as Teams expects them for Action.Execute. */
export function cardInvokeResponse(card: AdaptiveCard): Partial<Activity> {
  return {
    type: ActivityTypes.InvokeResponse,
    value: { status: 200, body: { statusCode: 200, type: 'application/vnd.microsoft.card.adaptive', value: card } },
  };
}

export function messageInvokeResponse(text: string): Partial<Activity> {
  return {
    type: ActivityTypes.InvokeResponse,
    value: { status: 200, body: { statusCode: 200, type: 'application/vnd.microsoft.activity.message', value: text } },
  };
}

/** A fenced replica's whole turn: a click or a message is answered with why nothing was done, and nothing runs. */
export async function answerFenced(context: TurnContext, text: string): Promise<void> {
  if (context.activity.type === ActivityTypes.Invoke) await context.sendActivity(messageInvokeResponse(text));
  else await context.sendActivity(MessageFactory.text(text));
}
