import type { Fault } from '../emulator.js';

/** The Teams failures Keywarden must survive, with the status codes and error bodies Teams sends. */
export type ConnectorFaultKind =
  | 'throttled'
  | 'precondition-failed'
  | 'not-in-roster'
  | 'too-large'
  | 'conversation-not-found'
  | 'bad-gateway'
  | 'service-unavailable';

/** Which connector operation a fault hits; omitted = every operation. */
export type ConnectorOp = 'post' | 'reply' | 'update' | 'delete' | 'create' | 'members';

export interface ConnectorFault {
  kind: ConnectorFaultKind;
  /** Only requests for this conversation (and its threads); omitted = any conversation. */
  conversationId?: string;
  op?: ConnectorOp;
  /** Seconds for Retry-After (throttled defaults to 1). */
  retryAfter?: number;
  /** How many matching requests fail (default 1; Infinity = until cleared). */
  times?: number;
}

const FAULTS: Record<ConnectorFaultKind, { status: number; code: string; message: string }> = {
  'throttled': { status: 429, code: 'Throttled', message: 'Too many requests; retry after the Retry-After interval.' },
  'precondition-failed': { status: 412, code: 'PreconditionFailed', message: 'Another operation on this conversation is in progress.' },
  'not-in-roster': { status: 403, code: 'BotNotInConversationRoster', message: 'The bot is not part of the conversation roster.' },
  'too-large': { status: 413, code: 'MessageSizeTooBig', message: 'Message size too large.' },
  'conversation-not-found': { status: 404, code: 'ConversationNotFound', message: 'Conversation not found.' },
  'bad-gateway': { status: 502, code: 'BadGateway', message: 'Bad gateway.' },
  'service-unavailable': { status: 503, code: 'ServiceUnavailable', message: 'Service unavailable.' },
};

/** Teams' error body shape: {"error":{"code","message"}}. */
export function connectorError(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Translates a Teams-level fault into the shared EmulatorServer fault (matched on the decoded path). */
export function toEmulatorFault(fault: ConnectorFault): Fault {
  const spec = FAULTS[fault.kind];
  const base = fault.conversationId ? escapeRegExp(fault.conversationId) : '[^/;]+';
  // The conversation itself or any of its threads ("…;messageid=<root>").
  const conv = `${base}(?:;[^/]*)?`;
  const paths: Record<ConnectorOp, { method?: string; re: RegExp }> = {
    create: { method: 'POST', re: /^\/v3\/conversations\/?$/ },
    post: { method: 'POST', re: new RegExp(`^/v3/conversations/${base}/activities(?:/[^/]+)?$`) },
    reply: { method: 'POST', re: new RegExp(`^/v3/conversations/${base};messageid=[^/]+/activities(?:/[^/]+)?$`) },
    update: { method: 'PUT', re: new RegExp(`^/v3/conversations/${conv}/activities/[^/]+$`) },
    delete: { method: 'DELETE', re: new RegExp(`^/v3/conversations/${conv}/activities/[^/]+$`) },
    members: { method: 'GET', re: new RegExp(`^/v3/conversations/${conv}/(?:paged)?members`) },
  };
  const anyOp = fault.conversationId ? new RegExp(`^/v3/conversations/${conv}(?:/|$)`) : /^\/v3\/conversations(?:\/|$)/;
  const target = fault.op ? paths[fault.op] : { method: undefined, re: anyOp };
  return {
    method: target.method,
    path: target.re,
    status: spec.status,
    retryAfter: fault.retryAfter ?? (fault.kind === 'throttled' ? 1 : undefined),
    body: connectorError(spec.code, spec.message),
    times: fault.times ?? 1,
  };
}
