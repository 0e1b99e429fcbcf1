import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { KeywardenConfig, WorkspaceConfig } from '../config/schema.js';
import type { EstateInventory } from '../domain/credential.js';
import { registerSecret } from '../logging/redact.js';
import { shareTokens } from '../providers/share-tokens.js';
import { HostGates } from '../providers/host-gate.js';
import { databricksAuthFromConfig, KeyVaultPatSource, type DatabricksAuth } from '../providers/databricks/auth.js';
import { DatabricksClient } from '../providers/databricks/client.js';
import { createDatabricksInventory } from '../providers/databricks/inventory.js';
import type { RetryPolicy } from '../providers/databricks/http.js';
import { DataFactoryClient } from '../providers/datafactory/arm.js';
import { createDataFactoryInventory } from '../providers/datafactory/inventory.js';
import { GraphClient } from '../providers/entra/graph.js';
import { createEntraInventory } from '../providers/entra/inventory.js';
import { createEntraPeopleDirectory } from '../providers/entra/people.js';
import type { PeopleDirectory } from '../domain/credential.js';
import { createKeyVaultSecrets, type KeyVaultPipelinePolicy, type KeyVaultSecrets } from '../providers/keyvault/client.js';
import { createKeyVaultInventory } from '../providers/keyvault/inventory.js';
import type { InventorySource } from './scanner.js';

/**
 * Every configured workspace, vault, tenant and factory as an inventory source, over the real providers, with a
 * credential the caller brings: no @azure/identity here (the scan thread borrows the bot's tokens: thread/tokens.ts).
 */

export interface InventorySourcesOptions {
  /** The shared Azure credential (createInventorySources builds it from config.azure when absent). */
  credential?: TokenCredential;
  clock?: Clock;
  /** Per-attempt HTTP timeout (default: config.databricks.timeoutSeconds for Databricks, the clients' own otherwise). */
  timeoutMs?: number;
  /** Retry budget of every client: retries after the first attempt, and the backoff base (tests keep these small). */
  retry?: { maxRetries?: number; baseDelayMs?: number };
  /** HTTP instrumentation per estate (metrics): a fetch for the fetch-based clients, a pipeline policy for Key Vault. */
  instrument?: {
    fetchFor(estate: 'databricks' | 'entra' | 'datafactory'): typeof fetch;
    keyVaultPolicy?: KeyVaultPipelinePolicy;
  };
}

export interface InventorySources {
  sources: InventorySource[];
  /** The clients, for modules that act as well as watch (workflows). */
  keyVaults: Map<string, KeyVaultSecrets>;
  credential: TokenCredential;
  /** One request gate per host (window, rate, throttling), shared by every request the sources send. */
  gates: HostGates;
}

/** A workspace authenticated by a PAT kept in Key Vault reads it on first use (never during config load). */
function patWorkspaceSource(
  ws: WorkspaceConfig, config: KeywardenConfig, keyVaults: Map<string, KeyVaultSecrets>, clock: Clock, timeoutMs: number | undefined,
  databricksRetry: { retry?: Partial<RetryPolicy>; fetch?: typeof fetch }, people: PeopleDirectory | undefined, gates: HostGates,
): InventorySource {
  let inventory: ReturnType<typeof createDatabricksInventory> | undefined;
  const auth = ws.auth.type === 'pat' ? ws.auth : undefined;
  return {
    estate: 'databricks', scope: ws.name, host: ws.host,
    async scan({ signal }): Promise<EstateInventory> {
      if (!inventory) {
        let tokenSource: DatabricksAuth | undefined;
        if (auth?.keyVaultSecret) {
          const [vault, name] = auth.keyVaultSecret.split('/') as [string, string];
          const secrets = keyVaults.get(vault);
          if (!secrets) throw new Error(`databricks.workspaces[${ws.name}].auth.keyVaultSecret names vault "${vault}", which is not in keyVault.vaults — add it there`);
          // Re-read when Key Vault gets a new version (a rotation of Keywarden's own PAT), never a stale value.
          tokenSource = new KeyVaultPatSource(auth.keyVaultSecret, async (s) => {
            const read = await secrets.readSecretValue(name, undefined, { signal: s });
            return { value: read.value, version: read.properties.version };
          }, clock);
        } else {
          if (auth?.token) registerSecret(auth.token);
          tokenSource = databricksAuthFromConfig(ws, { pat: auth?.token });
        }
        const client = new DatabricksClient({ host: ws.host, auth: tokenSource, clock, timeoutMs: timeoutMs ?? config.databricks.timeoutSeconds * 1000, ...databricksRetry, gate: gates.for(ws.host, 'databricks') });
        inventory = createDatabricksInventory({ workspace: ws, client, people });
      }
      return inventory.scan({ signal });
    },
  };
}

export function buildInventorySources(config: KeywardenConfig, options: InventorySourcesOptions & { credential: TokenCredential }): InventorySources {
  const clock = options.clock ?? systemClock;
  // One token per audience for every client (200 workspaces ask for the same Databricks token at once).
  const credential = shareTokens(options.credential, clock);
  const limits = config.scanner.requestLimits;
  const gates = new HostGates({ keyvault: limits.keyVault, databricks: limits.databricks, graph: limits.graph, arm: limits.arm });
  const sources: InventorySource[] = [];
  const retry = options.retry;
  const rest = {
    credential, clock,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    ...(retry?.maxRetries !== undefined ? { maxRetries: retry.maxRetries } : {}),
    ...(retry?.baseDelayMs !== undefined ? { backoffBaseMs: retry.baseDelayMs } : {}),
  };
  const databricksFetch = options.instrument ? { fetch: options.instrument.fetchFor('databricks') } : {};
  const databricksRetry = retry ? {
    ...databricksFetch,
    retry: {
      ...(retry.maxRetries !== undefined ? { maxAttempts: retry.maxRetries + 1 } : {}),
      ...(retry.baseDelayMs !== undefined ? { baseDelayMs: retry.baseDelayMs, maxDelayMs: retry.baseDelayMs * 8 } : {}),
    },
  } : databricksFetch;

  const keyVaults = createKeyVaultSecrets({
    ...(options.instrument?.keyVaultPolicy ? { additionalPolicies: [options.instrument.keyVaultPolicy] } : {}),
    vaults: config.keyVault.vaults, credential,
    disableChallengeResourceVerification: config.keyVault.disableChallengeResourceVerification,
    gateFor: (url) => gates.for(url, 'keyvault'),
    // A caller's per-attempt timeout holds for vaults too (else their 30 s default).
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    ...(retry ? { retryOptions: { maxRetries: retry.maxRetries, retryDelayInMs: retry.baseDelayMs, maxRetryDelayInMs: retry.baseDelayMs ? retry.baseDelayMs * 8 : undefined } } : {}),
  });

  // One Graph client for the tenant scan and for resolving PAT owners' user names to Entra object ids.
  const graph = config.entra.enabled
    ? new GraphClient({ baseUrl: config.entra.graphUrl, ...rest, gate: gates.for(config.entra.graphUrl, 'graph'), ...(options.instrument ? { fetch: options.instrument.fetchFor('entra') } : {}) })
    : undefined;
  const graphWindow = gates.limitFor('graph').inFlight;
  // Workspaces scanned side by side ask about the same people at about the same time: one question in flight per person.
  const people = graph ? createEntraPeopleDirectory(graph, { concurrency: graphWindow, clock }) : undefined;

  for (const ws of config.databricks.workspaces) {
    if (ws.auth.type === 'pat') {
      sources.push(patWorkspaceSource(ws, config, keyVaults, clock, options.timeoutMs, databricksRetry, people, gates));
      continue;
    }
    const client = new DatabricksClient({
      host: ws.host, auth: databricksAuthFromConfig(ws, { credential, scope: config.databricks.scope }), clock,
      timeoutMs: options.timeoutMs ?? config.databricks.timeoutSeconds * 1000,
      ...databricksRetry, gate: gates.for(ws.host, 'databricks'),
    });
    sources.push(createDatabricksInventory({ workspace: ws, client, people }));
  }

  for (const vault of config.keyVault.vaults) {
    // A vault is one host: its version listings run as many at once as the vault's gate lets through.
    sources.push(createKeyVaultInventory({ vault, secrets: keyVaults.get(vault.name)!, concurrency: gates.for(vault.url, 'keyvault').limit.inFlight, clock, versionHistory: config.keyVault.versionHistory }));
  }

  if (graph) {
    sources.push(createEntraInventory({ tenantLabel: config.entra.tenantId ?? config.azure.tenantId ?? 'entra', graph, concurrency: graphWindow }));
  }

  if (config.dataFactory.factories.length > 0) {
    const arm = new DataFactoryClient({ baseUrl: config.dataFactory.armUrl, ...rest, gate: gates.for(config.dataFactory.armUrl, 'arm'), ...(options.instrument ? { fetch: options.instrument.fetchFor('datafactory') } : {}) });
    for (const factory of config.dataFactory.factories) {
      sources.push(createDataFactoryInventory({ factory, client: arm, vaults: config.keyVault.vaults }));
    }
  }
  return { sources, keyVaults, credential, gates };
}
