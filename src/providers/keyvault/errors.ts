import { redactText } from '../../logging/redact.js';

/** Key Vault failures in the user's words: what went wrong on which vault/secret, and what to do about it. */

export type KeyVaultErrorCode =
  | 'Unauthorized'
  | 'Forbidden'
  | 'SecretDisabled'
  | 'SecretNotFound'
  | 'Conflict'
  | 'BadParameter'
  | 'Throttled'
  | 'ServiceError'
  | 'ChallengeMismatch'
  | 'Unreachable'
  | 'UntrustedCertificate'
  | 'Aborted'
  | 'Unknown';

export class KeyVaultError extends Error {
  override readonly name = 'KeyVaultError';
  readonly code: KeyVaultErrorCode;
  /** HTTP status, when the vault answered. */
  readonly statusCode: number | undefined;
  readonly vault: string;
  readonly secret: string | undefined;
  /** The service's own error code (e.g. ForbiddenByRbac), for logs and support. */
  readonly serviceCode: string | undefined;

  constructor(init: { code: KeyVaultErrorCode; statusCode?: number; vault: string; secret?: string; message: string; serviceCode?: string }) {
    // No `cause`: the SDK's error carries the request, whose body may hold the value being written.
    super(redactText(init.message));
    this.code = init.code;
    this.statusCode = init.statusCode;
    this.vault = init.vault;
    this.secret = init.secret;
    this.serviceCode = init.serviceCode;
  }
}

/** What the failed call needed, for the permission hint. */
export type KeyVaultAccess = 'list' | 'get' | 'set';

interface RestLike {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  details?: unknown;
}

const ACCESS_TEXT: Record<KeyVaultAccess, { verb: string; role: string }> = {
  list: { verb: "'List secrets'", role: 'Key Vault Reader' },
  get: { verb: "'Get secrets'", role: 'Key Vault Secrets User' },
  set: { verb: "'Set secrets'", role: 'Key Vault Secrets Officer' },
};

const TLS_CODES = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'REQUEST_SEND_ERROR']);

/** The service's inner error code, e.g. SecretDisabled or ForbiddenByRbac. */
function innerCode(err: RestLike): string | undefined {
  // The SDK deserializes the body: `innererror` arrives as `innerError`; accept both.
  const details = err.details as { error?: { innererror?: { code?: string }; innerError?: { code?: string } } } | undefined;
  return details?.error?.innerError?.code ?? details?.error?.innererror?.code;
}

/** Turns whatever the SDK threw into a KeyVaultError; never copies a secret value (messages are redacted). */
export function toKeyVaultError(err: unknown, ctx: { vault: string; vaultUrl: string; secret?: string; access: KeyVaultAccess; timeoutMs?: number }): KeyVaultError {
  if (err instanceof KeyVaultError) return err;
  const e = (err ?? {}) as RestLike;
  const where = ctx.secret ? `secret '${ctx.secret}' in vault ${ctx.vault}` : `vault ${ctx.vault}`;
  const base = { vault: ctx.vault, secret: ctx.secret };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const inner = innerCode(e);
  const serviceCode = inner ?? e.code;
  // Paged calls lose the service message ("Pagination failed with unexpected statusCode 403"); skip that noise.
  const told = e.message && !e.message.startsWith('Pagination failed') ? e.message.slice(0, 300) : undefined;
  const said = told ? ` (Key Vault said: ${told})` : '';

  if (e.name === 'AbortError') return new KeyVaultError({ ...base, code: 'Aborted', message: `The call to ${where} was cancelled (timeout or shutdown).` });
  if (typeof e.message === 'string' && e.message.includes('does not match the requested domain')) {
    return new KeyVaultError({ ...base, code: 'ChallengeMismatch', message:
      `Vault ${ctx.vault} at ${ctx.vaultUrl} is not on *.vault.azure.net, so the SDK refused its auth challenge: use the vault's https://<name>.vault.azure.net URL, or (sandbox only) set keyVault.disableChallengeResourceVerification: true.` });
  }
  // No token from Entra (a wrong or expired client secret): no call reached the vault, the fix is in Keywarden's config.
  if (e.name === 'AuthenticationError' || e.name === 'CredentialUnavailableError' || (typeof e.message === 'string' && /AADSTS\d+/.test(e.message))) {
    return new KeyVaultError({ ...base, code: 'Unauthorized', serviceCode, message:
      `Keywarden could not get an Entra token for vault ${ctx.vault}${told ? ` (Entra said: ${told})` : ''}: check azure.credential in the config (and that the app secret is still valid).` });
  }
  if (status === undefined) {
    if (e.code && TLS_CODES.has(e.code)) {
      return new KeyVaultError({ ...base, code: 'UntrustedCertificate', serviceCode: e.code, message:
        `The TLS certificate of vault ${ctx.vault} at ${ctx.vaultUrl} is not trusted (${e.code}): for the sandbox, start with NODE_EXTRA_CA_CERTS pointing at the sandbox CA (npm test / npm start do this).` });
    }
    if (e.code === 'ETIMEDOUT') {
      const within = ctx.timeoutMs ? ` within ${Math.round(ctx.timeoutMs / 100) / 10} s` : ' in time';
      return new KeyVaultError({ ...base, code: 'Unreachable', serviceCode: e.code, message:
        `Vault ${ctx.vault} at ${ctx.vaultUrl} did not answer${ctx.secret ? ` about secret '${ctx.secret}'` : ''}${within} on any attempt: check the network path to the vault (firewall, private endpoint, DNS, proxy) and Azure status for Key Vault; the next scan tries again.` });
    }
    if (e.code && NETWORK_CODES.has(e.code)) {
      return new KeyVaultError({ ...base, code: 'Unreachable', serviceCode: e.code, message:
        `Cannot reach vault ${ctx.vault} at ${ctx.vaultUrl} (${e.code}): check keyVault.vaults[].url and the network path (firewall, private endpoint, DNS).` });
    }
    return new KeyVaultError({ ...base, code: 'Unknown', serviceCode, message: `The call to ${where} failed${said}.` });
  }
  const access = ACCESS_TEXT[ctx.access];
  switch (true) {
    case status === 401:
      return new KeyVaultError({ ...base, code: 'Unauthorized', statusCode: status, serviceCode, message:
        `Vault ${ctx.vault} rejected Keywarden's token${said}: check azure.tenantId and azure.credential (the identity must belong to the vault's tenant and its secret or certificate must be valid).` });
    case status === 403 && inner === 'SecretDisabled':
      return new KeyVaultError({ ...base, code: 'SecretDisabled', statusCode: status, serviceCode, message:
        `The ${where} is disabled, so its value cannot be read: enable that version or write a new version before using it.` });
    case status === 403:
      return new KeyVaultError({ ...base, code: 'Forbidden', statusCode: status, serviceCode, message:
        `Keywarden's identity lacks ${access.verb} on vault ${ctx.vault}: grant it the ${access.role} role on the vault (RBAC), or add that secret permission to its access policy${said}.` });
    case status === 404:
      return new KeyVaultError({ ...base, code: 'SecretNotFound', statusCode: status, serviceCode, message:
        `The ${where} does not exist (or was deleted): check the secret name in the config or tags, or recover it if it was deleted recently.` });
    case status === 409:
      return new KeyVaultError({ ...base, code: 'Conflict', statusCode: status, serviceCode, message:
        `The ${where} is deleted but recoverable, so its name cannot be reused: recover it (az keyvault secret recover) or purge it, then retry.` });
    case status === 400:
      return new KeyVaultError({ ...base, code: 'BadParameter', statusCode: status, serviceCode, message: `Vault ${ctx.vault} refused the request for ${where}${said}.` });
    case status === 429:
      return new KeyVaultError({ ...base, code: 'Throttled', statusCode: status, serviceCode, message:
        `Vault ${ctx.vault} is throttling Keywarden (HTTP 429) even after retries: lower scanner.requestLimits.keyVault.perSecond (other apps may share the vault's budget; scanner.concurrencyPerHost bounds sources per host) or scan less often.` });
    default:
      return new KeyVaultError({ ...base, code: 'ServiceError', statusCode: status, serviceCode, message:
        `Vault ${ctx.vault} answered HTTP ${status} for ${where} even after retries${said}: try again later; if it persists, check Azure status for Key Vault.` });
  }
}
