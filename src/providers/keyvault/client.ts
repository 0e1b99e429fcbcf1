import type { TokenCredential } from '@azure/core-auth';
import type { SecretProperties } from '@azure/keyvault-secrets';
import { SecretClient } from '@azure/keyvault-secrets';
import { registerSecret } from '../../logging/redact.js';
import type { KeyVaultAccess } from './errors.js';
import { KeyVaultError, toKeyVaultError } from './errors.js';
import { AttemptSignals } from '../attempt-signal.js';
import { isThrottle, type HostGate } from '../host-gate.js';

/** Typed access to one vault through one reused SecretClient (each new client repeats the 401 challenge). */

/** A secret version's properties in the domain's units (epoch ms). Never carries a value. */
export interface SecretInfo {
  vault: string;
  name: string;
  version: string | undefined;
  id: string | undefined;
  enabled: boolean;
  /** Epoch ms, or null when the secret has no expiry. */
  expiresAt: number | null;
  notBefore: number | null;
  createdAt: number | undefined;
  updatedAt: number | undefined;
  contentType: string | undefined;
  tags: Record<string, string>;
  /** Certificate-backed (rotate it through the certificates API, not here). */
  managed: boolean;
}

export interface SecretValue {
  value: string;
  properties: SecretInfo;
}

export interface KeyVaultSecretsOptions {
  vault: { name: string; url: string };
  credential: TokenCredential;
  /** Sandbox/tests only: the vault is not on *.vault.azure.net. */
  disableChallengeResourceVerification?: boolean;
  /** The SDK's retry policy (it honours Retry-After on 429/503 and backs off on 5xx). */
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  /** Extra per-call pipeline policies (metrics). */
  additionalPolicies?: KeyVaultPipelinePolicy[];
  /** The vault's shared request gate (in-flight window + rate, adaptive on 429/503). */
  gate?: HostGate;
  /** Per attempt, from the moment the gate lets it through until the answer has been read (default 30 s). */
  timeoutMs?: number;
}

export const DEFAULT_KEY_VAULT_TIMEOUT_MS = 30_000;

/** A core-rest-pipeline policy, typed from the SDK's own options so we don't import the pipeline package. */
export type KeyVaultPipelinePolicy = NonNullable<NonNullable<ConstructorParameters<typeof SecretClient>[2]>['additionalPolicies']>[number]['policy'];

export interface CallOptions {
  signal?: AbortSignal;
}

export interface SetSecretOptions extends CallOptions {
  tags?: Record<string, string>;
  /** Date or epoch ms. */
  expiresOn?: Date | number;
  notBefore?: Date | number;
  contentType?: string;
  enabled?: boolean;
}

export interface UpdateSecretPropertiesOptions extends CallOptions {
  enabled?: boolean;
  expiresOn?: Date | number;
  tags?: Record<string, string>;
  contentType?: string;
}

/** Thrown into the SDK's retry policy when an attempt outlives its timeout: a RestError by name, retried like ETIMEDOUT. */
class AttemptTimedOut extends Error {
  override readonly name = 'RestError';
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${Math.round(timeoutMs / 100) / 10} s`);
  }
}

/**
 * Every attempt (retries too) waits for the vault's gate, then runs under its own timeout (the SDK has none by
 * default, so a stalled connection would hang until the scanner's per-source timeout) and tells the gate when the
 * vault throttled. A timed-out attempt is retried by the SDK like a dropped connection.
 */
function attemptPolicy(gate: HostGate | undefined, timeoutMs: number): KeyVaultPipelinePolicy {
  const signals = new AttemptSignals();
  return {
    name: 'keywardenAttempt',
    async sendRequest(request, next) {
      // The SDK passes an AbortSignalLike; the gate uses only aborted / reason / add- and removeEventListener.
      const caller = request.abortSignal as AbortSignal | undefined;
      const release = gate ? await gate.acquire(caller) : undefined;
      const attempt = signals.open(caller, timeoutMs);
      request.abortSignal = attempt.signal;
      try {
        const response = await next(request);
        if (gate) {
          if (isThrottle(response.status)) {
            const seconds = Number(response.headers.get('retry-after'));
            gate.throttled(Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined);
          } else gate.succeeded();
        }
        return response;
      } catch (err) {
        if (attempt.timedOut && !caller?.aborted) throw new AttemptTimedOut(timeoutMs);
        throw err;
      } finally {
        attempt.done();
        request.abortSignal = caller;
        release?.();
      }
    },
  };
}

const toDate = (d: Date | number | undefined): Date | undefined => (d === undefined ? undefined : d instanceof Date ? d : new Date(d));

function toInfo(vault: string, p: SecretProperties): SecretInfo {
  return {
    vault, name: p.name, version: p.version || undefined, id: p.id,
    enabled: p.enabled !== false,
    expiresAt: p.expiresOn ? p.expiresOn.getTime() : null,
    notBefore: p.notBefore ? p.notBefore.getTime() : null,
    createdAt: p.createdOn?.getTime(), updatedAt: p.updatedOn?.getTime(),
    contentType: p.contentType, tags: { ...(p.tags ?? {}) }, managed: p.managed === true,
  };
}

export class KeyVaultSecrets {
  readonly vault: string;
  readonly vaultUrl: string;
  private readonly client: SecretClient;
  private readonly timeoutMs: number;

  constructor(options: KeyVaultSecretsOptions) {
    this.vault = options.vault.name;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_KEY_VAULT_TIMEOUT_MS;
    this.vaultUrl = options.vault.url.replace(/\/+$/, '');
    this.client = new SecretClient(this.vaultUrl, options.credential, {
      disableChallengeResourceVerification: options.disableChallengeResourceVerification ?? false,
      retryOptions: options.retryOptions,
      additionalPolicies: [attemptPolicy(options.gate, options.timeoutMs ?? DEFAULT_KEY_VAULT_TIMEOUT_MS), ...(options.additionalPolicies ?? [])]
        .map((policy) => ({ policy, position: 'perRetry' as const })),
    });
  }

  /** Every secret's current-version properties (GET /secrets: list permission, no values). */
  async listSecretProperties(options: CallOptions = {}): Promise<SecretInfo[]> {
    return this.call('list', undefined, async () => {
      const out: SecretInfo[] = [];
      for await (const p of this.client.listPropertiesOfSecrets({ abortSignal: options.signal })) out.push(toInfo(this.vault, p));
      return out;
    });
  }

  /**
   * The same listing, handed over item by item as pages arrive (so work on page 1 overlaps fetching page 2). A callback
   * that returns a promise holds the listing until it resolves (the next page is read only when asked for).
   */
  async eachSecretProperties(onSecret: (secret: SecretInfo) => void | Promise<void>, options: CallOptions = {}): Promise<number> {
    return this.call('list', undefined, async () => {
      let n = 0;
      // Each page's link comes from the one before: ask for the next page before handing this one over, so a slow
      // consumer never adds to the chain of page round trips (it bounds a rescan that reuses version listings).
      const pages = this.client.listPropertiesOfSecrets({ abortSignal: options.signal }).byPage();
      let next = pages.next();
      for (;;) {
        const page = await next;
        if (page.done) break;
        next = pages.next();
        // A failure of the page asked for ahead surfaces when it is awaited, not as an unhandled rejection.
        next.catch(() => undefined);
        for (const p of page.value) {
          await onSecret(toInfo(this.vault, p));
          n += 1;
        }
      }
      return n;
    });
  }

  /** All versions of a secret, oldest first (the last is the current version). */
  async listVersions(name: string, options: CallOptions = {}): Promise<SecretInfo[]> {
    return this.call('list', name, async () => {
      const out: SecretInfo[] = [];
      for await (const p of this.client.listPropertiesOfSecretVersions(name, { abortSignal: options.signal })) out.push(toInfo(this.vault, p));
      // The service does not promise an order; creation time does (stable sort keeps listing order on ties).
      return out.map((v, i) => ({ v, i }))
        .sort((a, b) => (a.v.createdAt ?? 0) - (b.v.createdAt ?? 0) || a.i - b.i)
        .map((x) => x.v);
    });
  }

  /** Properties of one version (the current one when omitted), from the versions listing: never reads the value. */
  async getSecretProperties(name: string, version?: string, options: CallOptions = {}): Promise<SecretInfo> {
    const versions = await this.listVersions(name, options);
    const found = version ? versions.find((v) => v.version === version) : versions[versions.length - 1];
    if (!found) {
      throw new KeyVaultError({
        code: 'SecretNotFound', statusCode: 404, vault: this.vault, secret: name,
        message: `Secret '${name}' in vault ${this.vault} has no version ${version ?? '(none at all)'}: check the version id, or list the versions to pick one.`,
      });
    }
    return found;
  }

  /** Writes a new current version (consumers reading "latest" see it at once) and returns its properties. */
  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretInfo> {
    registerSecret(value);
    return this.call('set', name, async () => {
      const result = await this.client.setSecret(name, value, {
        tags: options.tags, contentType: options.contentType, enabled: options.enabled,
        expiresOn: toDate(options.expiresOn), notBefore: toDate(options.notBefore), abortSignal: options.signal,
      });
      return toInfo(this.vault, result.properties);
    });
  }

  /** Reads a value (workflows and PAT auth only; a scan never calls this). */
  async readSecretValue(name: string, version?: string, options: CallOptions = {}): Promise<SecretValue> {
    return this.call('get', name, async () => {
      const result = await this.client.getSecret(name, { version, abortSignal: options.signal });
      if (typeof result.value !== 'string') {
        throw new KeyVaultError({ code: 'Unknown', vault: this.vault, secret: name, message: `Vault ${this.vault} returned no value for secret '${name}'.` });
      }
      registerSecret(result.value);
      return { value: result.value, properties: toInfo(this.vault, result.properties) };
    });
  }

  /** Changes a version's attributes (enabled, expiry, tags); the value cannot change. Tags replace the whole set. */
  async updateSecretProperties(name: string, version: string, options: UpdateSecretPropertiesOptions = {}): Promise<SecretInfo> {
    return this.call('set', name, async () => {
      const result = await this.client.updateSecretProperties(name, version, {
        enabled: options.enabled, expiresOn: toDate(options.expiresOn), tags: options.tags,
        contentType: options.contentType, abortSignal: options.signal,
      });
      return toInfo(this.vault, result);
    });
  }

  private async call<T>(access: KeyVaultAccess, secret: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toKeyVaultError(err, { vault: this.vault, vaultUrl: this.vaultUrl, secret, access, timeoutMs: this.timeoutMs });
    }
  }
}

/** One KeyVaultSecrets per configured vault, sharing one credential (and so one token cache). */
export function createKeyVaultSecrets(options: {
  vaults: Array<{ name: string; url: string }>;
  credential: TokenCredential;
  disableChallengeResourceVerification?: boolean;
  retryOptions?: KeyVaultSecretsOptions['retryOptions'];
  additionalPolicies?: KeyVaultPipelinePolicy[];
  /** Each vault's shared request gate, by vault URL. */
  gateFor?: (vaultUrl: string) => HostGate;
  timeoutMs?: number;
}): Map<string, KeyVaultSecrets> {
  return new Map(options.vaults.map((vault) => [vault.name, new KeyVaultSecrets({ ...options, vault, gate: options.gateFor?.(vault.url) })]));
}
