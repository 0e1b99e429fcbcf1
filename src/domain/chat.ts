/**
 * The chat port: what src/ needs from Teams, in plain types. bot/ implements it; nothing in src/ imports botbuilder.
 */

/** An Adaptive Card as JSON (already expanded from a template in cards/). */
export type AdaptiveCard = Record<string, unknown> & { type: 'AdaptiveCard' };

/** A conversation the bot can post into, as persisted (framework-neutral conversation reference). */
export interface ConversationTarget {
  /** Bot Framework conversation id: "19:…@thread.tacv2" for a channel, "a:…" for personal chat. */
  conversationId: string;
  serviceUrl: string;
  tenantId: string;
  kind: 'channel' | 'personal' | 'groupChat';
  /** Teams team id (channel conversations). */
  teamId?: string;
  /** Teams channel id (channel conversations). */
  channelId?: string;
  /** Display names from the installation, for messages and logs (may be stale after a rename). */
  teamName?: string;
  channelName?: string;
  /** Bot id (recipient) as seen in the installation. */
  botId?: string;
  /** For personal chats: the user's Entra object id. */
  userAadObjectId?: string;
}

/** A message the bot posted, enough to update it or reply in its thread. */
export interface PostedMessage {
  /** The conversation it was posted into (a channel root post: the channel's conversation id). */
  conversationId: string;
  serviceUrl: string;
  tenantId: string;
  /** Activity id Teams returned; undefined when Teams returned none (then updates become thread replies). */
  activityId?: string;
}

export interface MessageContent {
  text?: string;
  card?: AdaptiveCard;
  /** Users to @mention in the text: the text must contain `<at>${name}</at>` for each. */
  mentions?: Array<{ aadObjectId: string; name: string }>;
}

export type ChatErrorCode =
  | 'throttled'
  | 'not-in-roster'
  | 'conversation-not-found'
  | 'too-large'
  | 'precondition-failed'
  | 'unauthorized'
  | 'transient'
  | 'bad-request';

/** Thrown by a ChatGateway after its own retries are spent. `permanent` means retrying without a fix is pointless. */
export class ChatDeliveryError extends Error {
  override readonly name = 'ChatDeliveryError';
  constructor(
    message: string,
    readonly code: ChatErrorCode,
    readonly statusCode: number | undefined,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export interface ChatGateway {
  /** Posts a new top-level message (a channel post becomes a thread root). */
  post(target: ConversationTarget, content: MessageContent, options?: { signal?: AbortSignal }): Promise<PostedMessage>;
  /** Replies in the thread of a posted message (channel: conversation id `…;messageid=<root>`). */
  replyInThread(root: PostedMessage, content: MessageContent, options?: { signal?: AbortSignal }): Promise<PostedMessage>;
  /** Replaces a posted message in place (PUT of the same activity). */
  update(message: PostedMessage, content: MessageContent, options?: { signal?: AbortSignal }): Promise<void>;
  /** Opens (or reuses) a personal chat with a user and posts there. */
  sendToUser(user: { aadObjectId: string; tenantId: string; serviceUrl: string }, content: MessageContent, options?: { signal?: AbortSignal }): Promise<PostedMessage>;
}

/** Who is talking to the bot, from the inbound activity. */
export interface Actor {
  /** Teams user id (29:… MRI, or the Playground's user-id-N). */
  userId: string;
  name: string;
  /** Entra object id; absent for anonymous channels. */
  aadObjectId?: string;
  tenantId?: string;
}

/** Where a command or click happened. */
export interface ChatContext {
  actor: Actor;
  conversation: ConversationTarget;
  /** For a card action: id of the message holding the card. */
  replyToId?: string;
}

export type Reply = (
  | { kind: 'text'; text: string }
  | { kind: 'card'; card: AdaptiveCard; text?: string }
  | { kind: 'cards'; cards: AdaptiveCard[]; text?: string }
) & {
  /** Runs once Teams accepted the reply: for records that must only say "posted" when it was (install replies). */
  afterSend?: () => void;
};

/** A chat command (`/expiring`, `/help`...), matched after mention removal. */
export interface ChatCommand {
  /** Name without slash, e.g. "expiring". */
  name: string;
  /** One-line syntax, e.g. "/expiring [N d] [pat|secret|sp|all] [name filter]". */
  usage: string;
  description: string;
  /** Example shown in help and in argument errors. */
  example?: string;
  /** Every argument with its default and limits, shown by /help (TextRun: angle brackets and markdown stay literal). */
  details?: string;
  handle(args: string, ctx: ChatContext): Promise<Reply>;
}

/** An Action.Execute verb. `data` is untrusted card data. Returns the card that replaces the clicked one, or a banner text. */
export interface CardAction {
  verb: string;
  /** A per-user view (Universal Actions refresh): answered to the asking client only, never put back for everyone. */
  view?: boolean;
  handle(data: Record<string, unknown>, ctx: ChatContext): Promise<{ card: AdaptiveCard } | { text: string }>;
}

/** Installation events the bot forwards to src/. */
export interface InstallationEvent {
  action: 'add' | 'remove';
  conversation: ConversationTarget;
  actor?: Actor;
}
