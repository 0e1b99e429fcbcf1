import { ChatDeliveryError, type ChatErrorCode } from '../src/domain/chat.js';
import { redactText } from '../src/logging/redact.js';

/**
 * Bot Connector failures → ChatDeliveryError. botframework-connector (core-rest-pipeline) already retries
 * 429 (honouring Retry-After) and 5xx/network errors 3 times, so what reaches here has outlasted those.
 */

interface ConnectorErrorShape {
  name?: string;
  message?: string;
  statusCode?: number;
  code?: string;
  response?: { status?: number; bodyAsText?: string | null };
}

/** Teams' own error code from the body ({"error":{"code":…}}), else the SDK's. */
function teamsCodeOf(err: ConnectorErrorShape): string | undefined {
  const text = err.response?.bodyAsText;
  if (text) {
    try {
      const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
      if (typeof code === 'string') return code;
    } catch {
      // not JSON: fall through
    }
  }
  return typeof err.code === 'string' ? err.code : undefined;
}

export function statusOf(err: unknown): number | undefined {
  const e = err as ConnectorErrorShape;
  return e?.statusCode ?? e?.response?.status;
}

export function isAbort(err: unknown): boolean {
  return (err as { name?: string })?.name === 'AbortError';
}

/** The conversation in messages is an id, never content: message text and cards stay out of errors. */
export function toDeliveryError(err: unknown, what: string): ChatDeliveryError {
  if (err instanceof ChatDeliveryError) return err;
  const e = err as ConnectorErrorShape;
  const status = statusOf(err);
  const teamsCode = teamsCodeOf(e);
  const tag = `${status ?? 'no response'}${teamsCode ? ` ${teamsCode}` : ''}`;
  const make = (code: ChatErrorCode, permanent: boolean, fix: string): ChatDeliveryError =>
    new ChatDeliveryError(`Teams refused to ${what}: ${tag} — ${fix}`, code, status, permanent);

  switch (true) {
    case status === 403 && teamsCode === 'BotNotInConversationRoster':
      return make('not-in-roster', true, 'Keywarden is not installed in this conversation any more; re-install it there (its reference is now unusable)');
    case status === 403:
      return make('unauthorized', true, 'the conversation blocks the bot (disabled by an admin or blocked by the user); re-enable it in Teams');
    case status === 401:
      return make('unauthorized', true, 'the bot credentials were rejected; check bot.appId, bot.appPassword and bot.tenantId');
    case status === 404:
      return make('conversation-not-found', false, 'the conversation id is unknown to Teams (Teams sometimes says this briefly); retry later and re-install if it persists');
    case status === 413:
      return make('too-large', true, 'the message is over the Teams size limit (~28 KB); send a shorter card or split it');
    case status === 412:
      return make('precondition-failed', false, 'another operation on this conversation kept conflicting; retry later');
    case status === 429:
      return make('throttled', false, 'Teams is throttling this bot; slow down and retry after a pause');
    case status === 400:
      return make('bad-request', true, 'Teams rejected the message as malformed; this is a Keywarden bug, please report it');
    default:
      return make('transient', false, `the Bot Connector did not answer successfully (${e?.message ? redactText(e.message.slice(0, 120)) : 'unknown error'}); retry later`);
  }
}
