import { ClientSecretCredential } from '@azure/identity';
import { redactText, registerSecret } from '../../logging/redact.js';
import { isPublicAuthorityHost } from '../azure-credential.js';

/** Proves a client secret works by getting a real token with it (a fresh credential: no cache can answer for it). */

export type VerifyResult =
  | { ok: true }
  | {
    ok: false;
    /** One line for a card or log: never contains the secret. */
    reason: string;
    /** AADSTS code when Entra gave one, e.g. "AADSTS7000215". */
    code?: string;
    /** True when waiting may help: a new secret not yet replicated (7000215), throttling, network trouble. */
    transient: boolean;
  };

/** Entra answers 7000215 "invalid secret" while a new secret replicates; 7000222 (expired) and 700016 (no app) are final. */
const TRANSIENT_CODES = new Set(['7000215', '90033', '50196']);

export async function verifyClientSecret(input: {
  tenantId: string;
  clientId: string;
  secret: string;
  /** e.g. https://login.microsoftonline.com or the sandbox authority. */
  authorityHost?: string;
  /** Default: Microsoft Graph. */
  scope?: string;
  signal?: AbortSignal;
}): Promise<VerifyResult> {
  registerSecret(input.secret);
  const authorityHost = input.authorityHost ?? 'https://login.microsoftonline.com';
  try {
    const credential = new ClientSecretCredential(input.tenantId, input.clientId, input.secret, {
      authorityHost,
      disableInstanceDiscovery: !isPublicAuthorityHost(authorityHost),
    });
    const token = await credential.getToken(input.scope ?? 'https://graph.microsoft.com/.default', { abortSignal: input.signal });
    if (!token?.token) return { ok: false, reason: 'Entra returned no access token', transient: true };
    return { ok: true };
  } catch (err) {
    if (input.signal?.aborted) throw err;
    const message = redactText((err as Error).message ?? String(err));
    const aadsts = /AADSTS(\d+)/.exec(message)?.[1];
    const description = /AADSTS\d+:\s*([^.]*\.)/.exec(message)?.[1];
    const reason = aadsts
      ? `Entra did not issue a token for app ${input.clientId}: AADSTS${aadsts}${description ? ` ${description}` : ''}${aadsts === '7000215' ? ' (a secret added minutes ago may still be replicating)' : ''}`
      : `could not get a token for app ${input.clientId}: ${message.split('\n')[0]}`;
    return { ok: false, reason, code: aadsts ? `AADSTS${aadsts}` : undefined, transient: aadsts ? TRANSIENT_CODES.has(aadsts) : true };
  }
}
