import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataFactoryClient, type AdfResource, type FactoryDefinitions } from '../../src/providers/datafactory/arm.js';
import { findSecretUses } from '../../src/providers/datafactory/blast-radius.js';
import { createDataFactoryInventory, toConsumers } from '../../src/providers/datafactory/inventory.js';
import { startDataFactoryEmulator, type DataFactoryEmulator } from '../../src/sandbox/datafactory/index.js';
import { seedDataFactory, type SeededDataFactory } from '../../src/sandbox/datafactory/seed.js';
import { startSeededEntra, type EntraFixture } from '../sandbox/entra-fixtures.js';

// Blast radius: which ADF linked services and pipelines use which Key Vault secret.

const VAULT_URLS = { 'kv-prod': 'https://127.0.0.1:44301', 'kv-dev': 'https://127.0.0.1:44302/' };
const WORKSPACE_HOSTS = { 'ws-prod': 'https://127.0.0.1:45001', 'ws-dev': 'https://127.0.0.1:45002' };

let f: EntraFixture;
let adf: DataFactoryEmulator;
let seeded: SeededDataFactory;

beforeAll(async () => {
  f = await startSeededEntra();
  adf = await startDataFactoryEmulator({ validator: f.entra.validator, clock: f.clock, pageSize: 2 });
  seeded = seedDataFactory(adf, { vaultUrls: VAULT_URLS, workspaceHosts: WORKSPACE_HOSTS });
});
afterAll(async () => {
  await adf?.close();
  await f?.entra.close();
});

describe('createDataFactoryInventory over the seeded factory', () => {
  it('finds the three Databricks linked services, their secrets by configured vault name, and their pipelines', async () => {
    const client = new DataFactoryClient({ baseUrl: adf.url, credential: f.keywardenCredential(), clock: f.clock });
    const source = createDataFactoryInventory({
      factory: { name: seeded.factory, subscriptionId: seeded.subscriptionId, resourceGroup: seeded.resourceGroup },
      client,
      // Configured URLs differ from the linked services' baseUrl in case and trailing slash: still the same vault.
      vaults: [{ name: 'kv-prod', url: 'HTTPS://127.0.0.1:44301/' }, { name: 'kv-dev', url: 'https://127.0.0.1:44302' }],
    });
    expect(source).toMatchObject({ estate: 'datafactory', scope: 'adf-prod', host: adf.url });
    const inv = await source.scan({});
    expect(inv).toMatchObject({ estate: 'datafactory', scope: 'adf-prod', credentials: [], facts: {} });
    expect(inv.consumers).toEqual([
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_Prod', pipelines: ['bob-reports'], pinnedVersion: false, dynamic: false, secret: { vault: 'kv-prod', name: 'adb-prod-bob-pipeline' } },
      // nightly-etl reaches LS_Databricks_ETL from inside a ForEach.
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_ETL', pipelines: ['nightly-etl'], pinnedVersion: false, dynamic: false, secret: { vault: 'kv-prod', name: 'adb-prod-etl-token' } },
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_DevCI', pipelines: ['dev-ci'], pinnedVersion: false, dynamic: false, secret: { vault: 'kv-dev', name: 'adb-dev-ci-token' } },
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_Analytics', pipelines: ['analytics-nightly'], pinnedVersion: false, dynamic: false, secret: { vault: 'kv-prod', name: 'adb-analytics-nightly-token' } },
    ]);
    // Read-only, and every page of every collection was followed.
    expect(new Set(adf.server.requests.map((r) => r.method))).toEqual(new Set(['GET']));
    expect(adf.server.requests.filter((r) => r.path.endsWith('/linkedservices'))).toHaveLength(3);
  });

  it('reports the trigger that runs an affected pipeline', async () => {
    const client = new DataFactoryClient({ baseUrl: adf.url, credential: f.keywardenCredential(), clock: f.clock });
    const defs = await client.readFactory({ subscriptionId: seeded.subscriptionId, resourceGroup: seeded.resourceGroup, factory: seeded.factory });
    const etl = findSecretUses(defs, [{ name: 'kv-prod', url: VAULT_URLS['kv-prod'] }]).find((u) => u.linkedService === 'LS_Databricks_ETL')!;
    expect(etl).toMatchObject({ property: 'typeProperties.accessToken', keyVaultLinkedService: 'LS_KeyVault_Prod', triggers: ['nightly-0200'] });
  });
});

describe('findSecretUses on factory JSON', () => {
  const res = (name: string, properties: Record<string, unknown>): AdfResource => ({ id: `/x/${name}`, name, type: 't', properties });
  const kvRef = (store: string, secretName: unknown, secretVersion?: string) => ({
    type: 'AzureKeyVaultSecret', store: { referenceName: store, type: 'LinkedServiceReference' }, secretName, ...(secretVersion ? { secretVersion } : {}),
  });
  const defs: FactoryDefinitions = {
    linkedServices: [
      res('KV', { type: 'AzureKeyVault', typeProperties: { baseUrl: 'https://kv-data.vault.azure.net/' } }),
      res('KV_Param', { type: 'AzureKeyVault', typeProperties: { baseUrl: { value: '@linkedService().vaultUrl', type: 'Expression' } } }),
      res('KV_Unknown', { type: 'AzureKeyVault', typeProperties: { baseUrl: 'https://elsewhere.vault.azure.net/' } }),
      res('Sql', { type: 'AzureSqlDatabase', typeProperties: { connectionString: 'Server=x', password: kvRef('KV', 'sql-password', 'a1b2c3') } }),
      res('Blob', { type: 'AzureBlobStorage', typeProperties: { sasUri: kvRef('KV', { value: "@concat('sas-', linkedService().env)", type: 'Expression' }) } }),
      res('Api', { type: 'RestService', typeProperties: { authHeaders: { 'x-api-key': kvRef('KV_Param', 'api-key') } } }),
      res('Ftp', { type: 'FtpServer', typeProperties: { password: kvRef('KV_Unknown', 'ftp-password') } }),
    ],
    datasets: [res('SqlTable', { type: 'AzureSqlTable', linkedServiceName: { referenceName: 'Sql', type: 'LinkedServiceReference' } })],
    pipelines: [
      res('copy-sql', { activities: [{ name: 'Copy', type: 'Copy', inputs: [{ referenceName: 'SqlTable', type: 'DatasetReference' }], outputs: [] }] }),
      res('branchy', { activities: [{ name: 'If', type: 'IfCondition', typeProperties: { ifTrueActivities: [{ name: 'Web', type: 'WebActivity', linkedServices: [{ referenceName: 'Api', type: 'LinkedServiceReference' }] }] } }] }),
      res('parent', { activities: [{ name: 'Run child', type: 'ExecutePipeline', typeProperties: { pipeline: { referenceName: 'copy-sql', type: 'PipelineReference' } } }] }),
      res('unrelated', { activities: [{ name: 'Wait', type: 'Wait', typeProperties: { waitTimeInSeconds: 1 } }] }),
    ],
    triggers: [res('hourly', { type: 'ScheduleTrigger', pipelines: [{ pipelineReference: { referenceName: 'parent', type: 'PipelineReference' } }] })],
  };
  const uses = findSecretUses(defs, [{ name: 'kv-data', url: 'https://kv-data.vault.azure.net' }]);
  const use = (ls: string) => uses.find((u) => u.linkedService === ls)!;

  it('flags a pinned secretVersion (rotation will not reach it) and follows datasets and ExecutePipeline to triggers', () => {
    expect(use('Sql')).toMatchObject({
      vault: 'kv-data', secretName: 'sql-password', secretVersion: 'a1b2c3', pinnedVersion: true, dynamic: false, property: 'typeProperties.password',
      datasets: ['SqlTable'], pipelines: ['copy-sql', 'parent'], triggers: ['hourly'],
    });
  });

  it('marks an expression secretName or a parameterized vault as dynamic ("possible")', () => {
    expect(use('Blob')).toMatchObject({ vault: 'kv-data', dynamic: true, secretName: "@concat('sas-', linkedService().env)", pipelines: [] });
    expect(use('Api')).toMatchObject({ vault: undefined, vaultUrl: '@linkedService().vaultUrl', dynamic: true, secretName: 'api-key', pipelines: ['branchy'] });
  });

  it('keeps references to vaults that are not configured, by URL', () => {
    expect(use('Ftp')).toMatchObject({ vault: undefined, vaultUrl: 'https://elsewhere.vault.azure.net/', secretName: 'ftp-password', dynamic: false });
    expect(uses).toHaveLength(4);
    const ftp = toConsumers('adf-x', uses).find((c) => c.name === 'Ftp')!;
    expect(ftp.secret).toEqual({ vault: 'elsewhere.vault.azure.net', name: 'ftp-password' });
    expect(toConsumers('adf-x', uses).find((c) => c.name === 'Sql')!.secret).toEqual({ vault: 'kv-data', name: 'sql-password', version: 'a1b2c3' });
  });
});
