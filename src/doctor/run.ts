import { existsSync } from 'node:fs';
import type { TokenCredential } from '@azure/core-auth';
import { systemClock, type Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import { redactText } from '../logging/redact.js';
import { createAzureCredential } from '../providers/azure-credential.js';
import { createKeyVaultSecrets } from '../providers/keyvault/client.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import type { DoctorContext } from './context.js';
import { checkDatabricks } from './databricks.js';
import { checkDataFactory } from './datafactory.js';
import { checkGraph } from './graph.js';
import { checkKeyVault } from './keyvault.js';
import { summarize } from './report.js';
import { checkTeams } from './teams.js';
import type { DoctorCheck, DoctorReport, OwnCredentialFinding } from './types.js';

/** Runs every estate's checks with Keywarden's own credential and the real provider clients. */

export interface RunDoctorOptions {
  config: KeywardenConfig;
  /** Shown in the report: the config file path, or "sandbox". */
  configSource: string;
  clock?: Clock;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Per-call timeout (default databricks.timeoutSeconds). */
  timeoutMs?: number;
  /** Prove OBO by minting a 5-minute probe token and deleting it (default: prove it without creating anything). */
  createProbeToken?: boolean;
  /** Overrides createAzureCredential(config.azure) (tests may pass one). */
  credential?: TokenCredential;
}

function openStoreIfPresent(path: string, clock: Clock): Store | undefined {
  // Opening would create an empty database; a missing file means Keywarden has not run yet.
  if (path === ':memory:' || !existsSync(path)) return undefined;
  return openSqliteStore({ path, clock });
}

/** One estate's checks; an unexpected error becomes a failed check instead of ending the run. */
async function guarded(estate: DoctorCheck['estate'], fn: () => Promise<{ checks: DoctorCheck[]; own: OwnCredentialFinding[] }>): Promise<{ checks: DoctorCheck[]; own: OwnCredentialFinding[] }> {
  try {
    return await fn();
  } catch (err) {
    return {
      checks: [{
        id: `${estate}.unexpected`, estate, scope: estate, title: 'checks ran to the end', status: 'fail', required: true,
        detail: `doctor stopped early: ${redactText(err instanceof Error ? err.message : String(err)).split('\n')[0]}`,
        fix: ['Run again; if it repeats, report it with this output (it holds no secret).'],
      }],
      own: [],
    };
  }
}

/** Throws AzureCredentialConfigError when azure.credential is incomplete (the CLI maps it to exit code 2). */
export async function runDoctor(options: RunDoctorOptions): Promise<DoctorReport> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const credential = options.credential ?? createAzureCredential(config.azure, { env: options.env });
  const store = openStoreIfPresent(config.store.path, clock);
  const ctx: DoctorContext = {
    config, credential, clock, signal: options.signal,
    timeoutMs: options.timeoutMs ?? config.databricks.timeoutSeconds * 1000,
    vaults: createKeyVaultSecrets({
      vaults: config.keyVault.vaults, credential,
      disableChallengeResourceVerification: config.keyVault.disableChallengeResourceVerification,
      retryOptions: { maxRetries: 1, retryDelayInMs: 200 },
    }),
    identity: { clientId: config.azure.credential.clientId, tenantId: config.azure.tenantId ?? config.entra.tenantId },
    createProbeToken: options.createProbeToken ?? false,
    store,
  };
  const checks: DoctorCheck[] = [];
  const own: OwnCredentialFinding[] = [];
  try {
    const estates = [
      config.databricks.workspaces.length ? 'Databricks' : '', config.keyVault.vaults.length ? 'Key Vault' : '',
      config.entra.enabled ? 'Graph' : '', config.dataFactory.factories.length ? 'Data Factory' : '',
    ].filter(Boolean);
    checks.push({
      id: 'config.loaded', estate: 'config', scope: options.configSource, title: 'configuration valid', required: true,
      status: estates.length ? 'pass' : 'warn',
      detail: estates.length ? `estates: ${estates.join(', ')}` : 'no estate configured — add databricks.workspaces, keyVault.vaults, … or run `keywarden doctor --sandbox`',
    });
    // Graph first: its token names Keywarden's app and SP when the config does not, for the fix commands below.
    const graph = config.entra.enabled ? await guarded('graph', () => checkGraph(ctx)) : { checks: [], own: [] };
    const [databricks, keyVault, dataFactory, teams] = await Promise.all([
      guarded('databricks', () => checkDatabricks(ctx)),
      guarded('keyvault', async () => ({ checks: await checkKeyVault(ctx), own: [] })),
      guarded('datafactory', async () => ({ checks: await checkDataFactory(ctx), own: [] })),
      guarded('teams', async () => ({ checks: await checkTeams(ctx), own: [] })),
    ]);
    for (const part of [databricks, keyVault, graph, dataFactory, teams]) checks.push(...part.checks);
    own.push(...graph.own, ...databricks.own);
  } finally {
    store?.close();
  }
  return {
    configSource: options.configSource,
    mode: config.mode,
    identity: { credentialType: config.azure.credential.type, clientId: ctx.identity.clientId, tenantId: ctx.identity.tenantId },
    checks, ownCredentials: own, ...summarize(checks, own),
  };
}
