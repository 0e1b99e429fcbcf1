import type { Activity, ConversationReference } from 'botbuilder';
import type { Actor, ConversationTarget } from '../src/domain/chat.js';

/** Activity ⇄ plain types: who is talking, where, and how to address a conversation or a thread later. */

interface TeamsChannelData {
  tenant?: { id?: string };
  team?: { id?: string; name?: string; aadGroupId?: string };
  channel?: { id?: string; name?: string };
  settings?: { selectedChannel?: { id?: string; name?: string } };
}

function channelDataOf(activity: Partial<Activity>): TeamsChannelData {
  const cd = activity.channelData as unknown;
  return cd && typeof cd === 'object' ? cd as TeamsChannelData : {};
}

/** "19:x@thread.tacv2;messageid=123" → "19:x@thread.tacv2". */
export function baseConversationId(conversationId: string): string {
  return conversationId.replace(/;messageid=.*$/, '');
}

/** The conversation id that addresses a channel post's thread (threading is decided only by this id). */
export function threadConversationId(conversationId: string, rootActivityId: string): string {
  return `${baseConversationId(conversationId)};messageid=${rootActivityId}`;
}

/** Personal chats ("a:…") and group chats ("…@thread.v2") have no threads. */
export function supportsThreads(conversationId: string): boolean {
  return !conversationId.startsWith('a:') && !/@thread\.v2(?:;|$)/.test(conversationId);
}

export function tenantIdOf(activity: Partial<Activity>): string | undefined {
  return activity.conversation?.tenantId || channelDataOf(activity).tenant?.id || undefined;
}

export function actorOf(activity: Partial<Activity>): Actor {
  const from = activity.from;
  return {
    userId: from?.id ?? '',
    name: from?.name ?? '',
    aadObjectId: from?.aadObjectId || undefined,
    tenantId: tenantIdOf(activity),
  };
}

function kindOf(activity: Partial<Activity>): ConversationTarget['kind'] {
  const type = activity.conversation?.conversationType;
  if (type === 'channel' || type === 'personal' || type === 'groupChat') return type;
  if (channelDataOf(activity).channel?.id || channelDataOf(activity).team?.id) return 'channel';
  return activity.conversation?.isGroup ? 'groupChat' : 'personal';
}

/** The durable, framework-neutral address of the conversation an activity came from (thread suffix removed). */
export function conversationOf(activity: Partial<Activity>): ConversationTarget {
  const cd = channelDataOf(activity);
  const conversationId = baseConversationId(activity.conversation?.id ?? '');
  const kind = kindOf(activity);
  const target: ConversationTarget = {
    conversationId,
    serviceUrl: activity.serviceUrl ?? '',
    tenantId: tenantIdOf(activity) ?? '',
    kind,
    botId: activity.recipient?.id || undefined,
  };
  if (kind === 'channel') {
    target.teamId = cd.team?.id || undefined;
    target.teamName = cd.team?.name || undefined;
    target.channelId = cd.channel?.id || conversationId;
    target.channelName = cd.channel?.name || undefined;
  }
  if (kind === 'personal') target.userAadObjectId = activity.from?.aadObjectId || undefined;
  return target;
}

/** A ConversationReference for proactive sends, rebuilt from the stored target. */
export function referenceFor(target: { conversationId: string; serviceUrl: string; tenantId: string; kind?: ConversationTarget['kind']; botId?: string }, botAppId: string): Partial<ConversationReference> {
  return {
    channelId: 'msteams',
    serviceUrl: target.serviceUrl,
    conversation: {
      id: target.conversationId,
      isGroup: target.kind !== 'personal',
      conversationType: target.kind ?? (target.conversationId.startsWith('a:') ? 'personal' : 'channel'),
      tenantId: target.tenantId,
      name: '',
    },
    bot: { id: target.botId ?? (botAppId ? `28:${botAppId}` : 'keywarden'), name: 'Keywarden' },
  };
}
