import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { WorkspaceConfig } from '../../config/schema.js';
import { registerSecret } from '../../logging/redact.js';
import { DatabricksError } from './errors.js';

/** How the client authenticates to a workspace: a PAT, an Entra credential, or any bearer source. */

export const AZURE_DATABRICKS_SCOPE = '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default';
/** ARM scope for X-Databricks-Azure-SP-Management-Token (the double slash is intended). */
export const ARM_SCOPE = 'https://management.core.windows.net//.default';

export interface DatabricksBearer {
  token: string;
  /** Extra headers to send with the bearer (the SP-management headers). */
  headers?: Record<string, string>;
}

export interface DatabricksTokenSource {
  getToken(signal?: AbortSignal): Promise<DatabricksBearer>;
  /** The workspace answered 401/403 to this token: true when a different token is now available (retry once). */
  rejected?(token: string, signal?: AbortSignal): Promise<boolean>;
}

export interface DatabricksEntraAuth {
  credential: TokenCredential;
  /** Default: 2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default. */
  scope?: string;
  /** Send the ARM token + workspace resource id, for an SP that is not yet a workspace member. */
  spManagement?: { workspaceResourceId: string; scope?: string };
}

export type DatabricksAuth = DatabricksTokenSource | { pat: string } | DatabricksEntraAuth;

/** Azure Databricks rejects tokens that expire within 30 s (G12): refresh a minute early. */
const REFRESH_EARLY_MS = 60_000;

function cachedEntraToken(credential: TokenCredential, scope: string, clock: Clock) {
  let cached: { token: string; expiresOn: number } | undefined;
  return async (signal?: AbortSignal): Promise<string> => {
    if (cached && cached.expiresOn - REFRESH_EARLY_MS > clock.now()) return cached.token;
    let result;
    try {
      result = await credential.getToken(scope, { abortSignal: signal });
    } catch (err) {
      throw new DatabricksError({
        code: 'AUTH_FAILED',
        message: `Could not get an Entra token for scope ${scope}: ${(err as Error).message}. Check azure.credential in the config (and that the app secret is still valid).`,
        cause: err,
      });
    }
    if (!result?.token) {
      throw new DatabricksError({ code: 'AUTH_FAILED', message: `The Entra credential returned no token for scope ${scope}. Check azure.credential in the config.` });
    }
    registerSecret(result.token);
    cached = { token: result.token, expiresOn: result.expiresOnTimestamp };
    return result.token;
  };
}

export function toTokenSource(auth: DatabricksAuth, clock: Clock = systemClock): DatabricksTokenSource {
  if ('getToken' in auth && typeof auth.getToken === 'function') return auth;
  if ('pat' in auth) {
    const pat = auth.pat;
    if (typeof pat !== 'string' || pat.length === 0) throw new DatabricksError({ code: 'AUTH_FAILED', message: 'The Databricks PAT is empty: set the workspace\'s auth.token or auth.keyVaultSecret.' });
    registerSecret(pat);
    return { getToken: async () => ({ token: pat }) };
  }
  const entra = auth as DatabricksEntraAuth;
  const main = cachedEntraToken(entra.credential, entra.scope ?? AZURE_DATABRICKS_SCOPE, clock);
  const mgmt = entra.spManagement ? cachedEntraToken(entra.credential, entra.spManagement.scope ?? ARM_SCOPE, clock) : undefined;
  return {
    async getToken(signal) {
      const token = await main(signal);
      if (!mgmt || !entra.spManagement) return { token };
      return {
        token,
        headers: {
          'X-Databricks-Azure-SP-Management-Token': await mgmt(signal),
          'X-Databricks-Azure-Workspace-Resource-Id': entra.spManagement.workspaceResourceId,
        },
      };
    },
  };
}

/** Picks the auth for a configured workspace: Entra through the shared credential, or its PAT (resolved by the caller). */
export function databricksAuthFromConfig(workspace: WorkspaceConfig, deps: { credential?: TokenCredential; scope?: string; pat?: string }): DatabricksAuth {
  if (workspace.auth.type === 'pat') {
    if (!deps.pat) {
      throw new DatabricksError({ code: 'AUTH_FAILED', message: `databricks.workspaces[${workspace.name}].auth: the PAT was not resolved — read ${workspace.auth.keyVaultSecret ?? 'auth.token'} before building the client.` });
    }
    return { pat: deps.pat };
  }
  if (!deps.credential) {
    throw new DatabricksError({ code: 'AUTH_FAILED', message: `databricks.workspaces[${workspace.name}].auth is entra but no Azure credential is configured — set azure.credential.` });
  }
  if (workspace.auth.spManagementHeaders && !workspace.resourceId) {
    throw new DatabricksError({ code: 'AUTH_FAILED', message: `databricks.workspaces[${workspace.name}].auth.spManagementHeaders needs resourceId (/subscriptions/…/providers/Microsoft.Databricks/workspaces/<name>).` });
  }
  return {
    credential: deps.credential,
    scope: deps.scope ?? AZURE_DATABRICKS_SCOPE,
    spManagement: workspace.auth.spManagementHeaders && workspace.resourceId ? { workspaceResourceId: workspace.resourceId } : undefined,
  };
}

/** Re-read a Key Vault PAT at least this often, so a rotated one is picked up well inside any grace window. */
export const PAT_REREAD_MS = 5 * 60_000;

type PatReader = (signal?: AbortSignal) => Promise<{ value: string; version?: string }>;

/** Every live Key Vault PAT source by "vault/secret", so a rotation of Keywarden's own PAT reaches them all. */
const patSources = new Map<string, Set<WeakRef<KeyVaultPatSource>>>();

/**
 * The PAT Keywarden itself uses for a workspace, read from Key Vault: re-read after PAT_REREAD_MS, after a 401/403,
 * and whenever a rotation of it calls forgetCachedPat() — so the old value is never used once a new one is published.
 */
export class KeyVaultPatSource implements DatabricksTokenSource {
  private cached: { token: string; version?: string; at: number } | undefined;

  constructor(readonly secretRef: string, private readonly read: PatReader, private readonly clock: Clock = systemClock, private readonly rereadMs = PAT_REREAD_MS) {
    const set = patSources.get(secretRef) ?? new Set();
    set.add(new WeakRef(this));
    patSources.set(secretRef, set);
  }

  async getToken(signal?: AbortSignal): Promise<DatabricksBearer> {
    if (!this.cached || this.clock.now() - this.cached.at >= this.rereadMs) await this.reload(signal);
    return { token: this.cached!.token };
  }

  async rejected(token: string, signal?: AbortSignal): Promise<boolean> {
    if (this.cached && this.cached.token !== token) return true;
    await this.reload(signal);
    return this.cached!.token !== token;
  }

  /** Drops the cached value; the next call reads Key Vault again. */
  forget(): void {
    this.cached = undefined;
  }

  /** The Key Vault version in use (never the value), for "which one is Keywarden on" checks. */
  get version(): string | undefined {
    return this.cached?.version;
  }

  private async reload(signal?: AbortSignal): Promise<void> {
    let read;
    try {
      read = await this.read(signal);
    } catch (err) {
      throw new DatabricksError({ code: 'AUTH_FAILED', message: `Could not read the workspace PAT from Key Vault ${this.secretRef}: ${(err as Error).message}. Check the secret and Keywarden's get permission on the vault.`, cause: err });
    }
    if (!read.value) throw new DatabricksError({ code: 'AUTH_FAILED', message: `Key Vault ${this.secretRef} holds an empty PAT: store the workspace token there.` });
    registerSecret(read.value);
    this.cached = { token: read.value, version: read.version, at: this.clock.now() };
  }
}

/** After Keywarden's own PAT was rotated: every source of that secret re-reads Key Vault on its next call. */
export function forgetCachedPat(secretRef: string): number {
  const set = patSources.get(secretRef);
  if (!set) return 0;
  let n = 0;
  for (const ref of [...set]) {
    const source = ref.deref();
    if (!source) set.delete(ref);
    else {
      source.forget();
      n += 1;
    }
  }
  return n;
}
