import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ArmError, DataFactoryClient } from '../../src/providers/datafactory/arm.js';
import { startDataFactoryEmulator, type DataFactoryEmulator } from '../../src/sandbox/datafactory/index.js';
import { seedDataFactory, type SeededDataFactory } from '../../src/sandbox/datafactory/seed.js';
import { startSeededEntra, type EntraFixture } from './entra-fixtures.js';

// ARM / Data Factory emulator: api-version, auth, paging, exact linked-service JSON, faults through DataFactoryClient.

const VAULT_URLS = { 'kv-prod': 'https://127.0.0.1:44301', 'kv-dev': 'https://127.0.0.1:44302' };
const WORKSPACE_HOSTS = { 'ws-prod': 'https://127.0.0.1:45001', 'ws-dev': 'https://127.0.0.1:45002' };

let f: EntraFixture;
let adf: DataFactoryEmulator;
let seeded: SeededDataFactory;
let token: string;

const client = (opts: { timeoutMs?: number; maxRetries?: number } = {}) =>
  new DataFactoryClient({ baseUrl: adf.url, credential: f.keywardenCredential(), clock: f.clock, backoffBaseMs: 10, ...opts });
const ref = () => ({ subscriptionId: seeded.subscriptionId, resourceGroup: seeded.resourceGroup, factory: seeded.factory });
const factoryPath = () => `/subscriptions/${seeded.subscriptionId}/resourceGroups/${seeded.resourceGroup}/providers/Microsoft.DataFactory/factories/${seeded.factory}`;
const get = async (path: string, bearer: string | null = token) => {
  const res = await fetch(`${adf.url}${path}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped wire JSON under test
  return { status: res.status, headers: res.headers, body: await res.json() as Record<string, any> };
};

beforeAll(async () => {
  f = await startSeededEntra();
  adf = await startDataFactoryEmulator({ validator: f.entra.validator, clock: f.clock, pageSize: 2 });
  seeded = seedDataFactory(adf, { vaultUrls: VAULT_URLS, workspaceHosts: WORKSPACE_HOSTS });
  token = (await f.keywardenCredential().getToken('https://management.azure.com/.default')).token;
});
afterAll(async () => {
  await adf?.close();
  await f?.entra.close();
});
beforeEach(() => {
  adf.server.clearFaults();
  adf.server.setLatency(0);
  adf.server.clearRequests();
  adf.state.restoreAccess(f.seeded.keywarden.clientId);
});

describe('ARM Data Factory emulator', () => {
  it('requires api-version=2018-06-01', async () => {
    const missing = await get(`${factoryPath()}/linkedservices`);
    expect(missing).toMatchObject({ status: 400, body: { error: { code: 'MissingApiVersionParameter' } } });
    const wrong = await get(`${factoryPath()}/linkedservices?api-version=2017-09-01-preview`);
    expect(wrong).toMatchObject({ status: 400, body: { error: { code: 'InvalidApiVersionParameter' } } });
  });

  it('refuses requests without a token or with a token for another resource', async () => {
    expect(await get(`${factoryPath()}?api-version=2018-06-01`, null)).toMatchObject({ status: 401, body: { error: { code: 'AuthenticationFailed' } } });
    const graphToken = f.entra.issueToken(f.seeded.keywarden.clientId, 'https://graph.microsoft.com/.default');
    expect(await get(`${factoryPath()}?api-version=2018-06-01`, graphToken)).toMatchObject({ status: 401, body: { error: { code: 'InvalidAuthenticationToken' } } });
  });

  it('pages linked services with nextLink and returns the exact reference JSON shapes', async () => {
    const first = await get(`${factoryPath()}/linkedservices?api-version=2018-06-01`);
    expect(first.status).toBe(200);
    expect(first.body.value).toHaveLength(2);
    expect(first.body.nextLink).toMatch(/api-version=2018-06-01/);
    expect(first.body.value[0]).toEqual({
      id: `${factoryPath()}/linkedservices/LS_KeyVault_Prod`, name: 'LS_KeyVault_Prod', type: 'Microsoft.DataFactory/factories/linkedservices',
      etag: expect.stringMatching(/^"[0-9a-f]{8}-/),
      properties: { annotations: [], type: 'AzureKeyVault', typeProperties: { baseUrl: `${VAULT_URLS['kv-prod']}/` } },
    });
    const all = await client().listLinkedServices(ref());
    expect(all.map((l) => l.name)).toEqual(['LS_KeyVault_Prod', 'LS_KeyVault_Dev', 'LS_Databricks_Prod', 'LS_Databricks_ETL', 'LS_Databricks_DevCI', 'LS_Databricks_Analytics']);
    expect(all.find((l) => l.name === 'LS_Databricks_Prod')!.properties).toEqual({
      annotations: [], type: 'AzureDatabricks',
      typeProperties: {
        domain: WORKSPACE_HOSTS['ws-prod'], existingClusterId: '0101-123456-bobjdbc1',
        accessToken: { type: 'AzureKeyVaultSecret', store: { referenceName: 'LS_KeyVault_Prod', type: 'LinkedServiceReference' }, secretName: 'adb-prod-bob-pipeline' },
      },
    });
    expect(all.find((l) => l.name === 'LS_Databricks_ETL')!.properties.typeProperties).toMatchObject({ instancePoolId: expect.any(String) });
    expect(adf.server.requests.filter((r) => r.path.endsWith('/linkedservices')).length).toBe(1 + 3);
  });

  it('lists factories by subscription, pipelines, datasets and triggers through DataFactoryClient', async () => {
    const factories = await client().listFactories(seeded.subscriptionId);
    expect(factories).toEqual([expect.objectContaining({ name: 'adf-prod', type: 'Microsoft.DataFactory/factories', id: factoryPath() })]);
    const defs = await client().readFactory(ref());
    expect(defs.pipelines.map((p) => p.name)).toEqual(['nightly-etl', 'bob-reports', 'dev-ci', 'analytics-nightly']);
    expect(defs.datasets).toEqual([]);
    expect(defs.triggers.map((t) => t.name)).toEqual(['nightly-0200']);
  });

  it('answers 404 for an unknown factory and resource group', async () => {
    await expect(client().listLinkedServices({ ...ref(), factory: 'adf-nope' })).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    await expect(client().listPipelines({ ...ref(), resourceGroup: 'rg-nope' })).rejects.toMatchObject({ statusCode: 404, code: 'ResourceGroupNotFound' });
  });

  it('answers 403 AuthorizationFailed once the caller\'s Reader access is withdrawn', async () => {
    adf.state.withdrawAccess(f.seeded.keywarden.clientId);
    const err = await client().listLinkedServices(ref()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArmError);
    expect(err).toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
    expect((err as Error).message).toMatch(/Reader role/);
  });
});

describe('ARM faults through DataFactoryClient', () => {
  it('waits out a 429 with Retry-After, then succeeds', async () => {
    adf.server.injectFault({ path: '/pipelines', status: 429, retryAfter: 1, times: 1 });
    const started = Date.now();
    expect(await client().listPipelines(ref())).toHaveLength(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(adf.server.requests[0]).toMatchObject({ status: 429, injected: 'fault' });
  });

  it('retries 500s, then gives up with ArmError InternalServerError when they persist', async () => {
    adf.server.injectFault({ path: '/triggers', status: 500, times: 2 });
    expect(await client().listTriggers(ref())).toHaveLength(1);
    adf.server.injectFault({ path: '/triggers', status: 500, times: Infinity });
    await expect(client({ maxRetries: 1 }).listTriggers(ref())).rejects.toMatchObject({ statusCode: 500, code: 'InternalServerError' });
  });

  it('turns latency beyond the timeout into a Timeout error', async () => {
    adf.server.setLatency(300);
    await expect(client({ timeoutMs: 100, maxRetries: 0 }).listFactories(seeded.subscriptionId)).rejects.toMatchObject({ code: 'Timeout' });
  });
});
