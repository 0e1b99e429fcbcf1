import type { DataFactoryEmulator } from './index.js';

/** Seeds factory adf-prod of docs/sandbox-estate.md: Key Vault and Databricks linked services and the pipelines using them. */

export const SANDBOX_SUBSCRIPTION_ID = '00000000-1111-2222-3333-444444444444';
export const SANDBOX_RESOURCE_GROUP = 'rg-data';
export const SANDBOX_FACTORY = 'adf-prod';

export interface SeededDataFactory {
  subscriptionId: string;
  resourceGroup: string;
  factory: string;
}

/** ADF writes a KV baseUrl with a trailing slash. */
function vaultBaseUrl(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function kvSecret(store: string, secretName: string): Record<string, unknown> {
  return { type: 'AzureKeyVaultSecret', store: { referenceName: store, type: 'LinkedServiceReference' }, secretName };
}

function lsRef(name: string): Record<string, unknown> {
  return { referenceName: name, type: 'LinkedServiceReference' };
}

function notebook(name: string, path: string, linkedService: string): Record<string, unknown> {
  return {
    name, type: 'DatabricksNotebook', dependsOn: [],
    policy: { timeout: '0.12:00:00', retry: 1, retryIntervalInSeconds: 30, secureOutput: false, secureInput: false },
    userProperties: [], typeProperties: { notebookPath: path }, linkedServiceName: lsRef(linkedService),
  };
}

export function seedDataFactory(
  handle: DataFactoryEmulator,
  options: { vaultUrls: { 'kv-prod': string; 'kv-dev': string }; workspaceHosts: { 'ws-prod': string; 'ws-dev': string; 'ws-analytics'?: string } },
): SeededDataFactory {
  const { state } = handle;
  const factory = state.addFactory({ subscriptionId: SANDBOX_SUBSCRIPTION_ID, resourceGroup: SANDBOX_RESOURCE_GROUP, name: SANDBOX_FACTORY });
  const ls = (name: string, properties: Record<string, unknown>) => state.put(factory, 'linkedservices', name, { annotations: [], ...properties });

  ls('LS_KeyVault_Prod', { type: 'AzureKeyVault', typeProperties: { baseUrl: vaultBaseUrl(options.vaultUrls['kv-prod']) } });
  ls('LS_KeyVault_Dev', { type: 'AzureKeyVault', typeProperties: { baseUrl: vaultBaseUrl(options.vaultUrls['kv-dev']) } });
  ls('LS_Databricks_Prod', {
    type: 'AzureDatabricks',
    typeProperties: { domain: options.workspaceHosts['ws-prod'], existingClusterId: '0101-123456-bobjdbc1', accessToken: kvSecret('LS_KeyVault_Prod', 'adb-prod-bob-pipeline') },
  });
  ls('LS_Databricks_ETL', {
    type: 'AzureDatabricks',
    typeProperties: {
      domain: options.workspaceHosts['ws-prod'], instancePoolId: '0101-120000-etlpool1', newClusterVersion: '15.4.x-scala2.12', newClusterNumOfWorker: '2',
      accessToken: kvSecret('LS_KeyVault_Prod', 'adb-prod-etl-token'),
    },
  });
  ls('LS_Databricks_DevCI', {
    type: 'AzureDatabricks',
    typeProperties: { domain: options.workspaceHosts['ws-dev'], existingClusterId: '0101-654321-devci001', accessToken: kvSecret('LS_KeyVault_Dev', 'adb-dev-ci-token') },
  });

  ls('LS_Databricks_Analytics', {
    type: 'AzureDatabricks',
    typeProperties: { domain: options.workspaceHosts['ws-analytics'] ?? options.workspaceHosts['ws-prod'], existingClusterId: '0101-777777-analyt01', accessToken: kvSecret('LS_KeyVault_Prod', 'adb-analytics-nightly-token') },
  });

  const pipeline = (name: string, activities: unknown[]) => state.put(factory, 'pipelines', name, { activities, annotations: [], folder: { name: 'databricks' } });
  // nightly-etl runs its notebook inside a ForEach: the blast radius must look into container activities.
  pipeline('nightly-etl', [{
    name: 'For each table', type: 'ForEach', dependsOn: [], userProperties: [],
    typeProperties: { items: { value: "@createArray('orders','customers')", type: 'Expression' }, isSequential: true, activities: [notebook('Ingest table', '/Shared/etl/ingest', 'LS_Databricks_ETL')] },
  }]);
  pipeline('bob-reports', [notebook('Build reports', '/Users/bob.dev@contoso.com/reports', 'LS_Databricks_Prod')]);
  pipeline('dev-ci', [notebook('Run CI notebook', '/Repos/ci/run-tests', 'LS_Databricks_DevCI')]);
  pipeline('analytics-nightly', [notebook('Refresh marts', '/Shared/analytics/refresh', 'LS_Databricks_Analytics')]);

  state.put(factory, 'triggers', 'nightly-0200', {
    type: 'ScheduleTrigger', annotations: [], runtimeState: 'Started',
    pipelines: [{ pipelineReference: { referenceName: 'nightly-etl', type: 'PipelineReference' }, parameters: {} }],
    typeProperties: { recurrence: { frequency: 'Day', interval: 1, startTime: '2026-01-01T02:00:00Z', timeZone: 'UTC', schedule: { hours: [2], minutes: [0] } } },
  });

  return { subscriptionId: SANDBOX_SUBSCRIPTION_ID, resourceGroup: SANDBOX_RESOURCE_GROUP, factory: SANDBOX_FACTORY };
}
