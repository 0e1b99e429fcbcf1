import type { TokenCredential } from '@azure/core-auth';
import type { FromScanThread, ToScanThread } from './protocol.js';
import { failureOf } from './thread-kit.js';

/**
 * The bot's side of the scan thread's tokens (tokens.ts): the bot's credential (one token per audience, shared with
 * its own clients) answers each request; a failure goes back as its name, status and redacted message, never a token.
 */

type TokenRequest = Extract<FromScanThread, { type: 'token' }>;

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
