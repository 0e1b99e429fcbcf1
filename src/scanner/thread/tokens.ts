import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { FromScanThread, ToScanThread } from './protocol.js';
import { errorOf } from './thread-kit.js';

/**
 * The scan thread's TokenCredential: it asks the bot's thread, which holds the one credential per audience
 * (token-lender.ts), so the thread never loads @azure/identity or MSAL. The sources wrap it in shareTokens, which
 * caches each token until near expiry and makes concurrent asks share one request.
 */

type TokenAnswer = Extract<ToScanThread, { type: 'token' }>;

export interface ThreadTokens {
  credential: TokenCredential;
  /** Hands the bot's answer to the request waiting for it. */
  answer(message: TokenAnswer): void;
}

function aborted(): Error {
  const err = new Error('The token request was aborted.');
  err.name = 'AbortError';
  return err;
}

export function threadTokens(send: (message: FromScanThread) => void): ThreadTokens {
  const waiting = new Map<number, { resolve(token: AccessToken | null): void; reject(err: Error): void }>();
  let next = 0;
  return {
    credential: {
      getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
        const signal = options?.abortSignal;
        if (signal?.aborted) return Promise.reject(aborted());
        const id = ++next;
        return new Promise<AccessToken | null>((resolve, reject) => {
          // A caller that gives up stops waiting; the bot's answer then finds no one and is dropped.
          const onAbort = () => {
            waiting.delete(id);
            reject(aborted());
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          const settle = () => signal?.removeEventListener('abort', onAbort);
          waiting.set(id, {
            resolve: (t) => { settle(); resolve(t); },
            reject: (e) => { settle(); reject(e); },
          });
          send({
            type: 'token', id, scopes: [scopes].flat(),
            ...(options?.tenantId ? { tenantId: options.tenantId } : {}), ...(options?.claims ? { claims: options.claims } : {}),
          });
        });
      },
    },
    answer(message) {
      const w = waiting.get(message.id);
      if (!w) return;
      waiting.delete(message.id);
      if (message.error) w.reject(errorOf(message.error));
      else w.resolve(message.token ?? null);
    },
  };
}
