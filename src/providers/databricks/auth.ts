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
