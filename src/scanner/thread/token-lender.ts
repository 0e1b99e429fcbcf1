import type { TokenCredential } from '@azure/core-auth';
import { redactText } from '../../logging/redact.js';
import type { FromScanThread, ToScanThread, TokenFailure } from './protocol.js';

/**
 * The bot's side of the scan thread's tokens (tokens.ts): the bot's credential (one token per audience, shared with
 * its own clients) answers each request; a failure goes back as its name, status and redacted message, never a token.
 */

type TokenRequest = Extract<FromScanThread, { type: 'token' }>;

function failureOf(err: unknown): TokenFailure {
  const e = (err ?? {}) as { name?: unknown; message?: unknown; statusCode?: unknown; code?: unknown };
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: redactText(typeof e.message === 'string' ? e.message : String(err)),
    ...(typeof e.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
  };
}

/** Answers one token request of the thread through `reply` (the worker's port). */
export async function lendToken(credential: TokenCredential, request: TokenRequest, reply: (message: ToScanThread) => void): Promise<void> {
  try {
    const t = await credential.getToken(request.scopes, {
      ...(request.tenantId ? { tenantId: request.tenantId } : {}), ...(request.claims ? { claims: request.claims } : {}),
    });
    reply({
      type: 'token', id: request.id,
      token: t && { token: t.token, expiresOnTimestamp: t.expiresOnTimestamp, ...(t.refreshAfterTimestamp !== undefined ? { refreshAfterTimestamp: t.refreshAfterTimestamp } : {}) },
    });
  } catch (err) {
    reply({ type: 'token', id: request.id, error: failureOf(err) });
  }
}
