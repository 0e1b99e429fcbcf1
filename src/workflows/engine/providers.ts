/**
 * The clients the workflows act through, looked up by the names in config (workspace, vault). Built once from
 * config and the shared Azure credential; tests and the sandbox pass the same config pointing at the emulators.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import { databricksAuthFromConfig, KeyVaultPatSource, type DatabricksTokenSource } from '../../providers/databricks/auth.js';
import { DatabricksClient } from '../../providers/databricks/client.js';
import { GraphClient } from '../../providers/entra/graph.js';
import { verifyClientSecret, type VerifyResult } from '../../providers/entra/verify.js';
import { KeyVaultSecrets } from '../../providers/keyvault/client.js';
import { WorkflowError } from './errors.js';

export interface WorkflowProviders {
  /** Configured workspace names. */
  workspaces(): string[];
  databricks(workspace: string): DatabricksClient;
  keyVault(vault: string): KeyVaultSecrets;
  graph(): GraphClient;
  /** Acquires a token with a client secret (tenant and authority from config). */
  verifyClientSecret(input: { clientId: string; secret: string; signal?: AbortSignal }): Promise<VerifyResult>;
}

export function providersFromConfig(config: KeywardenConfig, deps: { credential: TokenCredential; clock: Clock }): WorkflowProviders {
  const databricks = new Map<string, DatabricksClient>();
  const vaults = new Map<string, KeyVaultSecrets>();
  let graph: GraphClient | undefined;

  const keyVault = (name: string): KeyVaultSecrets => {
    let client = vaults.get(name);
    if (!client) {
      const vault = config.keyVault.vaults.find((v) => v.name === name);
      if (!vault) throw new WorkflowError(`Key Vault "${name}" is not configured — add it to keyVault.vaults`, 'UNKNOWN_VAULT');
      client = new KeyVaultSecrets({ vault, credential: deps.credential, disableChallengeResourceVerification: config.keyVault.disableChallengeResourceVerification });
      vaults.set(name, client);
    }
    return client;
  };

  return {
    workspaces: () => config.databricks.workspaces.map((w) => w.name),
    databricks(name) {
      let client = databricks.get(name);
      if (!client) {
        const ws = config.databricks.workspaces.find((w) => w.name === name);
        if (!ws) throw new WorkflowError(`Databricks workspace "${name}" is not configured — add it to databricks.workspaces`, 'UNKNOWN_WORKSPACE');
        const auth = ws.auth.type === 'pat' ? patSource(ws.auth, keyVault, deps.clock) : databricksAuthFromConfig(ws, { credential: deps.credential, scope: config.databricks.scope });
        client = new DatabricksClient({ host: ws.host, auth, clock: deps.clock, timeoutMs: config.databricks.timeoutSeconds * 1000 });
        databricks.set(name, client);
      }
      return client;
    },
    keyVault,
    graph() {
      graph ??= new GraphClient({ baseUrl: config.entra.graphUrl, credential: deps.credential, clock: deps.clock });
      return graph;
    },
    verifyClientSecret(input) {
      const tenantId = config.entra.tenantId ?? config.azure.tenantId;
      if (!tenantId) throw new WorkflowError('no tenant to verify a client secret against — set entra.tenantId or azure.tenantId', 'NO_TENANT');
      return verifyClientSecret({ ...input, tenantId, authorityHost: config.azure.authorityHost });
    },
  };
}

/** A workspace authenticated by a PAT: given directly, or read from Key Vault (re-read when it changes). */
function patSource(auth: { keyVaultSecret?: string; token?: string }, keyVault: (name: string) => KeyVaultSecrets, clock: Clock): DatabricksTokenSource | { pat: string } {
  if (auth.token) return { pat: auth.token };
  const ref = auth.keyVaultSecret ?? '/';
  const [vault, secret] = ref.split('/') as [string, string];
  return new KeyVaultPatSource(ref, async (signal) => {
    const read = await keyVault(vault).readSecretValue(secret, undefined, { signal });
    return { value: read.value, version: read.properties.version };
  }, clock);
}

/** What every workflow definition is built from. */
export interface WorkflowDeps {
  providers: WorkflowProviders;
  config: KeywardenConfig;
  clock: Clock;
}
