import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import { EmulatorServer, type EmulatorRequest, type EmulatorResponse } from '../emulator.js';
import { connectorError, toEmulatorFault, type ConnectorFault } from './faults.js';
import { SendPacing, type LimitViolation } from './pacing.js';
import {
  ConnectorState, mentionsOf, splitThreadId,
  type ConnectorActivity, type ConnectorConversation, type ConnectorMember,
} from './state.js';

/**
 * An emulated Bot Connector (the Teams side of the Bot Framework REST API): the bot posts, replies in
 * threads, updates and deletes activities here, exactly as it would against smba.trafficmanager.net.
 */

export interface ConnectorEmulatorOptions {
  clock?: Clock;
  port?: number;
  host?: string;
  /** Unknown conversations get 404 ConversationNotFound (default: created on first use, like a lenient Teams). */
  strictConversations?: boolean;
  /** Bodies larger than this get 413 MessageSizeTooBig (Teams rejects messages around 28 KB). */
  maxMessageBytes?: number;
  /** Answer 429 when a send would break Teams' per-thread limits (default: only record violations). */
  enforceRateLimits?: boolean;
}

export interface ConnectorSeed {
  conversations?: Array<{ id: string; isGroup?: boolean; tenantId?: string; members?: ConnectorMember[] }>;
}

export interface ConnectorEmulator {
  /** Base URL without trailing slash. */
  readonly url: string;
  /** What to put in an activity's serviceUrl (with the trailing slash Teams uses). */
  readonly serviceUrl: string;
  readonly server: EmulatorServer;
  /** Every activity the bot sent, in arrival order. */
  readonly activities: readonly ConnectorActivity[];
  readonly conversations: ReadonlyMap<string, ConnectorConversation>;
  /** Sequence number of the last recorded activity (for "what arrived since"). */
  readonly lastSeq: number;
  /** Top-level posts (not thread replies) in a conversation. */
  postsIn(conversationId: string): ConnectorActivity[];
  /** Replies in the thread of a root post. */
  repliesTo(rootId: string): ConnectorActivity[];
  updatesOf(activityId: string): ConnectorActivity[];
  /** Activities recorded after sequence number `seq`. */
  since(seq: number): ConnectorActivity[];
  /** Resolves with the first activity (already recorded or arriving later) that matches. */
  waitFor(predicate: (a: ConnectorActivity) => boolean, timeoutMs?: number): Promise<ConnectorActivity>;
  injectFault(fault: ConnectorFault): void;
  clearFaults(): void;
  /** Answer sends with 202 and no body (Teams sometimes does); `times` limits it, `false` turns it off. */
  setNoIdMode(mode: boolean | { times: number }): void;
  limitViolations(): LimitViolation[];
  seed(seed: ConnectorSeed): void;
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_MESSAGE_BYTES = 28 * 1024;

export async function startConnectorEmulator(options: ConnectorEmulatorOptions = {}): Promise<ConnectorEmulator> {
  const clock = options.clock ?? systemClock;
  const state = new ConnectorState(clock);
  const pacing = new SendPacing();
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  let noIdRemaining = 0;

  const notFound = (id: string): EmulatorResponse =>
    ({ status: 404, body: connectorError('ConversationNotFound', `Conversation ${id} not found.`) });
  const tooLarge = (req: EmulatorRequest): EmulatorResponse | undefined =>
    Buffer.byteLength(req.bodyText) > maxBytes
      ? { status: 413, body: connectorError('MessageSizeTooBig', `Message size too large (${Buffer.byteLength(req.bodyText)} bytes; limit ${maxBytes}).`) }
      : undefined;

  /** Looks up (or, when lenient, creates) the conversation an activity path names. */
  function conversationFor(id: string): ConnectorConversation | undefined {
    return options.strictConversations ? state.conversations.get(id) : state.ensureConversation(id);
  }

  function paced(conversationId: string): EmulatorResponse | undefined {
    const at = clock.now();
    if (options.enforceRateLimits && pacing.wouldExceed(conversationId, at)) {
      return { status: 429, headers: { 'retry-after': '1' }, body: connectorError('Throttled', 'Send rate over the per-thread limit.') };
    }
    pacing.record(conversationId, at);
    return undefined;
  }

  function idResponse(id: string, extra: Record<string, unknown> = {}): { response: EmulatorResponse; idReturned: boolean } {
    if (noIdRemaining > 0) {
      noIdRemaining -= 1;
      return { response: { status: 202 }, idReturned: false };
    }
    return { response: { status: 201, body: { id, ...extra } }, idReturned: true };
  }

  function sendActivity(rawConvId: string, replyToId: string | undefined, req: EmulatorRequest): EmulatorResponse {
    const { conversationId, threadRootId } = splitThreadId(rawConvId);
    if (!conversationFor(conversationId)) return notFound(conversationId);
    const big = tooLarge(req);
    if (big) return big;
    const activity = req.json<Record<string, unknown>>();
    if (!activity || typeof activity !== 'object' || typeof activity.type !== 'string') {
      return { status: 400, body: connectorError('BadArgument', 'Activity body with a "type" is required.') };
    }
    const throttled = paced(conversationId);
    if (throttled) return throttled;
    const activityId = state.nextActivityId();
    const { response, idReturned } = idResponse(activityId);
    state.record({
      conversationId, threadRootId, activityId, idReturned,
      replyToId: replyToId ?? (typeof activity.replyToId === 'string' ? activity.replyToId : undefined),
      type: activity.type as string,
      text: typeof activity.text === 'string' ? activity.text : undefined,
      attachments: Array.isArray(activity.attachments) ? activity.attachments as ConnectorActivity['attachments'] : [],
      mentions: mentionsOf(activity),
      op: threadRootId ? 'reply' : 'post',
      activity,
    });
    return response;
  }

  function changeActivity(op: 'update' | 'delete', rawConvId: string, activityId: string, req: EmulatorRequest): EmulatorResponse {
    const { conversationId, threadRootId } = splitThreadId(rawConvId);
    if (!conversationFor(conversationId)) return notFound(conversationId);
    const original = state.findActivity(conversationId, activityId);
    if (!original || state.isDeleted(conversationId, activityId)) {
      return { status: 404, body: connectorError('ActivityNotFound', `Activity ${activityId} not found in ${conversationId}.`) };
    }
    const big = op === 'update' ? tooLarge(req) : undefined;
    if (big) return big;
    const activity = op === 'update' ? req.json<Record<string, unknown>>() ?? {} : {};
    const throttled = paced(conversationId);
    if (throttled) return throttled;
    state.record({
      conversationId, threadRootId: threadRootId ?? original.threadRootId, activityId, idReturned: true,
      type: typeof activity.type === 'string' ? activity.type : original.type,
      text: typeof activity.text === 'string' ? activity.text : undefined,
      attachments: Array.isArray(activity.attachments) ? activity.attachments as ConnectorActivity['attachments'] : [],
      mentions: mentionsOf(activity),
      op, activity,
    });
    return op === 'update' ? { status: 200, body: { id: activityId } } : { status: 200 };
  }

  /** POST /v3/conversations: a new channel post (channelData.channel.id) or a personal chat with members[0]. */
  function createConversation(req: EmulatorRequest): EmulatorResponse {
    const big = tooLarge(req);
    if (big) return big;
    const params = req.json<{
      isGroup?: boolean; members?: ConnectorMember[]; tenantId?: string; activity?: Record<string, unknown>;
      channelData?: { channel?: { id?: string }; tenant?: { id?: string } };
    }>() ?? {};
    const tenantId = params.tenantId ?? params.channelData?.tenant?.id;
    const channelId = params.channelData?.channel?.id;
    let conversationId: string;
    if (channelId) {
      conversationId = channelId;
      if (!conversationFor(channelId)) return notFound(channelId);
    } else {
      const member = params.members?.[0];
      if (!member?.id) return { status: 400, body: connectorError('BadArgument', 'members[0].id (or channelData.channel.id) is required.') };
      // Teams reuses the one personal chat per user and bot.
      conversationId = `a:personal-${member.id}`;
      const conv = state.ensureConversation(conversationId, { isGroup: false, tenantId, members: [member] });
      if (!conv.members.some((m) => m.id === member.id)) conv.members.push(member);
    }
    const activity = params.activity;
    if (!activity) return { status: 201, body: { id: conversationId } };
    const throttled = paced(conversationId);
    if (throttled) return throttled;
    const activityId = state.nextActivityId();
    state.record({
      conversationId, activityId, idReturned: true, type: typeof activity.type === 'string' ? activity.type : 'message',
      text: typeof activity.text === 'string' ? activity.text : undefined,
      attachments: Array.isArray(activity.attachments) ? activity.attachments as ConnectorActivity['attachments'] : [],
      mentions: mentionsOf(activity), op: 'post', activity,
    });
    // A channel post comes back as its thread id, as Teams does.
    const id = channelId ? `${channelId};messageid=${activityId}` : conversationId;
    return { status: 201, body: { id, activityId } };
  }

  function members(rawConvId: string, rest: string[], req: EmulatorRequest): EmulatorResponse {
    const { conversationId } = splitThreadId(rawConvId);
    const conv = conversationFor(conversationId);
    if (!conv) return notFound(conversationId);
    if (rest[0] === 'pagedmembers') {
      const pageSize = Math.max(1, Number(req.url.searchParams.get('pageSize') ?? 100) || 100);
      const start = Number(req.url.searchParams.get('continuationToken') ?? 0) || 0;
      const page = conv.members.slice(start, start + pageSize);
      const next = start + pageSize < conv.members.length ? String(start + pageSize) : undefined;
      return { status: 200, body: { members: page, ...(next ? { continuationToken: next } : {}) } };
    }
    if (rest.length === 1) return { status: 200, body: conv.members };
    const member = conv.members.find((m) => m.id === rest[1] || m.aadObjectId === rest[1]);
    return member
      ? { status: 200, body: member }
      : { status: 404, body: connectorError('MemberNotFoundInConversation', `Member ${rest[1]} is not in ${conversationId}.`) };
  }

  const handler = (req: EmulatorRequest): EmulatorResponse => {
    // Route on the raw path so ids are split before decoding ("%2F" stays inside one segment).
    const segments = req.url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
    if (segments[0] !== 'v3' || segments[1] !== 'conversations') {
      return { status: 404, body: connectorError('NotFound', `No connector route for ${req.method} ${req.path}.`) };
    }
    const [, , convId, kind, ...rest] = segments;
    if (!convId) {
      if (req.method === 'POST') return createConversation(req);
      if (req.method === 'GET') return { status: 200, body: { conversations: [...state.conversations.values()].map((c) => ({ id: c.id, isGroup: c.isGroup, tenantId: c.tenantId })) } };
    } else if (kind === 'activities') {
      if (req.method === 'POST' && rest.length <= 1) return sendActivity(convId, rest[0], req);
      if ((req.method === 'PUT' || req.method === 'DELETE') && rest.length === 1) {
        return changeActivity(req.method === 'PUT' ? 'update' : 'delete', convId, rest[0]!, req);
      }
    } else if ((kind === 'members' || kind === 'pagedmembers') && req.method === 'GET') {
      return members(convId, [kind, ...rest], req);
    }
    return { status: 405, body: connectorError('BadArgument', `${req.method} ${req.path} is not a connector operation.`) };
  };

  const server = new EmulatorServer({
    name: 'bot-connector', handler, clock,
    faultBody: (status) => connectorError(status === 429 ? 'Throttled' : 'ServiceError', `injected ${status}`),
  });
  await server.listen(options.port ?? 0, options.host ?? '127.0.0.1');

  const waiters = new Set<() => void>();
  state.onRecord(() => { for (const w of [...waiters]) w(); });

  return {
    get url() { return server.url; },
    get serviceUrl() { return `${server.url}/`; },
    server,
    get activities() { return state.activities; },
    get conversations() { return state.conversations; },
    get lastSeq() { return state.lastSeq; },
    postsIn: (id) => {
      const { conversationId } = splitThreadId(id);
      return state.activities.filter((a) => a.op === 'post' && a.conversationId === conversationId);
    },
    repliesTo: (rootId) => state.activities.filter((a) => a.op === 'reply' && a.threadRootId === rootId),
    updatesOf: (activityId) => state.activities.filter((a) => a.op === 'update' && a.activityId === activityId),
    since: (seq) => state.activities.filter((a) => a.seq > seq),
    waitFor(predicate, timeoutMs = 5_000) {
      const found = state.activities.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = state.activities.find(predicate);
          if (hit) { done(); resolve(hit); }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`connector emulator: no matching activity within ${timeoutMs} ms (${state.activities.length} recorded)`));
        }, timeoutMs);
        const done = (): void => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
      });
    },
    injectFault: (fault) => server.injectFault(toEmulatorFault(fault)),
    clearFaults: () => server.clearFaults(),
    setNoIdMode(mode) {
      noIdRemaining = mode === false ? 0 : mode === true ? Number.POSITIVE_INFINITY : mode.times;
    },
    limitViolations: () => pacing.violations(),
    seed(seed) {
      for (const c of seed.conversations ?? []) {
        const conv = state.ensureConversation(c.id, c);
        if (c.members) conv.members = [...c.members];
        if (c.tenantId) conv.tenantId = c.tenantId;
      }
    },
    reset() {
      state.reset();
      pacing.reset();
      server.clearFaults();
      server.clearRequests();
      noIdRemaining = 0;
    },
    close: () => server.close(),
  };
}
