import type { Activity, ConversationReference, TurnContext } from 'botbuilder';
import type { ConnectorClient } from 'botframework-connector';
import type { TeamsAdapter } from '@microsoft/teams-ai';
import type {
  ChatGateway, ConversationTarget, MessageContent, PostedMessage,
} from '../src/domain/chat.js';
import type { Logger } from '../src/logging/logger.js';
import { isAbort, statusOf, toDeliveryError } from './delivery-errors.js';
import { baseConversationId, referenceFor, supportsThreads, threadConversationId } from './identity.js';
import { contentActivity } from './messages.js';
import { ConversationQueues } from './send-queue.js';

/**
 * ChatGateway over the Bot Connector REST API, through the adapter (so production sends are signed with
 * the bot's credentials). Sends are serialized per conversation; failures become ChatDeliveryError.
 */

export interface TeamsChatGatewayOptions {
  adapter: TeamsAdapter;
  /** '' when anonymous (sandbox/tests). */
  botAppId: string;
  logger: Logger;
  /** Attempts for 412 PreconditionFailed, which the SDK does not retry (default 3). */
  preconditionAttempts?: number;
  /** First back-off for 412 retries; doubles each time, with jitter (default 250 ms). */
  retryBaseMs?: number;
  /** Pause after each send in the same conversation, to stay under 7 sends/s per thread (default 150 ms). */
  pacingMs?: number;
}

type Op = { signal?: AbortSignal };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(timer); reject(signal?.reason ?? new DOMException('aborted', 'AbortError')); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class TeamsChatGateway implements ChatGateway {
  private readonly queues: ConversationQueues;
  private readonly log: Logger;

  constructor(private readonly options: TeamsChatGatewayOptions) {
    this.queues = new ConversationQueues(options.pacingMs ?? 150);
    this.log = options.logger.child({ component: 'chat-gateway' });
  }

  async post(target: ConversationTarget, content: MessageContent, options: Op = {}): Promise<PostedMessage> {
    const conversationId = baseConversationId(target.conversationId);
    const activityId = await this.send({ ...target, conversationId }, conversationId, content, `post into ${conversationId}`, options.signal);
    return { conversationId, serviceUrl: target.serviceUrl, tenantId: target.tenantId, activityId };
  }

  async replyInThread(root: PostedMessage, content: MessageContent, options: Op = {}): Promise<PostedMessage> {
    const base = baseConversationId(root.conversationId);
    // Without the root's id (Teams answered 202 without one) or in a chat without threads, post plainly.
    const threaded = root.activityId && supportsThreads(base);
    if (!threaded && root.activityId === undefined) {
      this.log.info({ conversationId: base }, 'root post has no activity id; replying as a new post');
    }
    const conversationId = threaded ? threadConversationId(base, root.activityId!) : base;
    const activityId = await this.send({ ...root, conversationId: base }, conversationId, content, `reply in ${conversationId}`, options.signal);
    return { conversationId, serviceUrl: root.serviceUrl, tenantId: root.tenantId, activityId };
  }

  async update(message: PostedMessage, content: MessageContent, options: Op = {}): Promise<void> {
    const base = baseConversationId(message.conversationId);
    if (!message.activityId) {
      // Nothing to PUT to: the new state goes out as a new message instead.
      this.log.info({ conversationId: message.conversationId }, 'message has no activity id; posting the update as a new message');
      await this.send({ ...message, conversationId: base }, message.conversationId, content, `post an update into ${message.conversationId}`, options.signal);
      return;
    }
    const activityId = message.activityId;
    await this.queues.run(base, () => this.withRetries(`update ${activityId} in ${message.conversationId}`, options.signal, () =>
      this.withConnector({ ...message, conversationId: base }, async (client) => {
        const activity = { ...contentActivity(content), id: activityId, conversation: { id: message.conversationId } } as Activity;
        await client.conversations.updateActivity(message.conversationId, activityId, activity, { abortSignal: options.signal });
      })));
  }

  async sendToUser(user: { aadObjectId: string; tenantId: string; serviceUrl: string }, content: MessageContent, options: Op = {}): Promise<PostedMessage> {
    const { adapter, botAppId } = this.options;
    return this.queues.run(`user:${user.aadObjectId}`, () => this.withRetries(`open a personal chat with ${user.aadObjectId}`, options.signal, async () => {
      let posted: PostedMessage | undefined;
      let failure: unknown;
      const parameters = {
        isGroup: false,
        bot: { id: botAppId ? `28:${botAppId}` : 'keywarden', name: 'Keywarden' },
        members: [{ id: user.aadObjectId, name: '' }],
        tenantId: user.tenantId,
        channelData: { tenant: { id: user.tenantId } },
      };
      await adapter.createConversationAsync(botAppId, 'msteams', user.serviceUrl, undefined as unknown as string, parameters as never, async (context) => {
        try {
          const conversationId = context.activity.conversation.id;
          const res = await this.connectorOf(context).conversations.sendToConversation(conversationId, contentActivity(content) as Activity, { abortSignal: options.signal });
          posted = { conversationId, serviceUrl: user.serviceUrl, tenantId: user.tenantId, activityId: res?.id || undefined };
        } catch (err) {
          failure = err;
        }
      });
      if (failure) throw failure;
      return posted!;
    }));
  }

  /** Resolves when every queued send has finished (used by graceful shutdown). */
  idle(): Promise<void> {
    return this.queues.idle();
  }

  private async send(target: ConversationTarget | PostedMessage, conversationId: string, content: MessageContent, what: string, signal?: AbortSignal): Promise<string | undefined> {
    const base = baseConversationId(conversationId);
    return this.queues.run(base, () => this.withRetries(what, signal, () => this.withConnector(target, async (client) => {
      const activity = { ...contentActivity(content), conversation: { id: conversationId } } as Activity;
      const res = await client.conversations.sendToConversation(conversationId, activity, { abortSignal: signal });
      // Teams sometimes answers 202 with no body: the message exists but cannot be addressed later.
      return res?.id || undefined;
    })));
  }

  /** 412 is retried here (the SDK does not); 429/5xx were already retried by the SDK's pipeline. */
  private async withRetries<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const attempts = Math.max(1, this.options.preconditionAttempts ?? 3);
    const base = this.options.retryBaseMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (isAbort(err) || signal?.aborted) throw err;
        if (statusOf(err) === 412 && attempt < attempts) {
          const delay = base * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4);
          this.log.debug({ attempt, delay: Math.round(delay) }, `412 from Teams; retrying to ${what}`);
          await sleep(delay, signal);
          continue;
        }
        const error = toDeliveryError(err, what);
        this.log.warn({ code: error.code, statusCode: error.statusCode, permanent: error.permanent }, error.message);
        throw error;
      }
    }
  }

  /** Runs fn with a ConnectorClient for the target's service URL; errors are returned, not sent to onTurnError. */
  private async withConnector<T>(target: { conversationId: string; serviceUrl: string; tenantId: string; kind?: ConversationTarget['kind']; botId?: string }, fn: (client: ConnectorClient) => Promise<T>): Promise<T> {
    let result: T | undefined;
    let failure: unknown;
    const reference = referenceFor(target, this.options.botAppId) as ConversationReference;
    await this.options.adapter.continueConversationAsync(this.options.botAppId, reference, async (context) => {
      try {
        result = await fn(this.connectorOf(context));
      } catch (err) {
        failure = err;
      }
    });
    if (failure) throw failure;
    return result as T;
  }

  private connectorOf(context: TurnContext): ConnectorClient {
    const client = context.turnState.get<ConnectorClient>(context.adapter.ConnectorClientKey);
    if (!client) throw new Error('the adapter did not provide a ConnectorClient for this conversation');
    return client;
  }
}
