import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import type { Credential } from '../../src/domain/credential.js';
import { createAzureCredential } from '../../src/providers/azure-credential.js';
import { GraphClient } from '../../src/providers/entra/graph.js';
import { createEntraInventory } from '../../src/providers/entra/inventory.js';
import { readCredentialSignIns } from '../../src/providers/entra/signin-activity.js';
import { planRevoke } from '../../src/workflows/revoke/revoke.js';
import { KEYWARDEN_GRAPH_PERMISSIONS } from '../../src/sandbox/entra/seed.js';
import { START, startSeededEntra, type EntraFixture } from '../sandbox/entra-fixtures.js';

/**
 * Last use of Entra secrets and certificates from Graph's beta usage report (reports/appCredentialSignInActivities),
 * read through the product path (config → credential → GraphClient → inventory) against the Entra emulator: paged by
 * @odata.nextLink, mapped by keyId; without AuditLog.Read.All the report answers 403 and the last use stays unknown,
 * with the permission to grant on every Entra credential (and so in the revoke plan).
 */

let f: EntraFixture;
let graph: GraphClient;
const bot = () => f.seeded.keywarden.clientId;

beforeAll(async () => {
  f = await startSeededEntra({ graphPageSize: 2 });
  const credential = createAzureCredential({
    tenantId: f.seeded.tenantId, authorityHost: f.entra.authorityHost,
    credential: { type: 'client-secret', clientId: f.seeded.keywarden.clientId, clientSecret: f.seeded.keywarden.clientSecret },
  });
  graph = new GraphClient({ baseUrl: f.entra.graphUrl, credential, clock: f.clock });
});
afterAll(async () => {
  await f?.entra.close();
});
beforeEach(() => {
  f.entra.directory.grant(bot(), ...KEYWARDEN_GRAPH_PERMISSIONS);
  f.entra.graph.clearRequests();
});

const scan = () => createEntraInventory({ tenantLabel: 'contoso', graph }).scan({});
const byName = (creds: Credential[], name: string) => creds.find((c) => c.name === name)!;

describe('the beta sign-in activity report (emulator)', () => {
  it('answers the documented shape, paged, filterable by keyId; 403 without AuditLog.Read.All', async () => {
    const token = f.entra.issueToken(bot(), 'https://graph.microsoft.com/.default');
    const get = (path: string) => fetch(`${f.entra.graphUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const first = await get('/beta/reports/appCredentialSignInActivities');
    expect(first.status).toBe(200);
    const body = await first.json() as { value: Array<Record<string, unknown>>; '@odata.nextLink'?: string };
    expect(body.value).toHaveLength(2);
    expect(body['@odata.nextLink']).toContain('/beta/reports/appCredentialSignInActivities');
    const etl = f.seeded.etlSecret;
    const one = await (await get(`/beta/reports/appCredentialSignInActivities?$filter=keyId eq '${etl.keyId}'`)).json() as { value: Array<Record<string, unknown>> };
    expect(one.value).toEqual([expect.objectContaining({
      keyId: etl.keyId, keyType: 'clientSecret', appId: etl.appId, credentialOrigin: 'application',
      expirationDateTime: expect.any(String), signInActivity: { lastSignInDateTime: new Date(START - 20 * DAY_MS).toISOString().replace('.000Z', 'Z'), lastSignInRequestId: expect.any(String) },
    })]);
    const sp = await (await get(`/beta/reports/servicePrincipalSignInActivities?$filter=appId eq '${etl.appId}'`)).json() as { value: Array<Record<string, unknown>> };
    expect(sp.value[0]).toMatchObject({ appId: etl.appId, lastSignInActivity: { lastSignInDateTime: expect.any(String) } });

    f.entra.directory.withdraw(bot(), 'AuditLog.Read.All');
    const denied = await get('/beta/reports/appCredentialSignInActivities');
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('Authorization_RequestDenied');
  });
});

describe('Entra inventory with sign-in activity', () => {
  it('maps lastSignInDateTime by keyId onto secrets and certificates (null when the report has none), reading every page', async () => {
    const inv = await scan();
    expect(byName(inv.credentials, 'etl-ingest / etl-ingest-2026').lastUsedAt).toBe(START - 20 * DAY_MS);
    expect(byName(inv.credentials, 'hr-sync / hr-sync-secret').lastUsedAt).toBe(START - 2 * DAY_MS);
    expect(byName(inv.credentials, 'partner-sftp / CN=partner-sftp.contoso.com').lastUsedAt).toBe(START - 10 * DAY_MS);
    expect(byName(inv.credentials, 'reporting-svc / reporting-svc-sp-secret').lastUsedAt).toBeNull();
    expect(byName(inv.credentials, 'hr-sync / hr-sync-long-lived').lastUsedAt).toBeNull();
    const pages = f.entra.graph.requests.filter((r) => r.path === '/beta/reports/appCredentialSignInActivities');
    expect(pages.length).toBeGreaterThan(2);
    expect(inv.credentials.every((c) => c.attributes.lastUseUnknown === undefined)).toBe(true);
  });

  it('a sign-in with a secret at the token endpoint shows as its last use', async () => {
    const etl = f.seeded.etlSecret;
    await f.credentialFor(etl.appId, etl.value).getToken('https://graph.microsoft.com/.default');
    const read = await readCredentialSignIns(graph);
    expect(read.ok && read.byKeyId.get(etl.keyId)).toBe(START);
    const inv = await scan();
    expect(byName(inv.credentials, 'etl-ingest / etl-ingest-2026').lastUsedAt).toBe(START);
  });

  it('403 (no AuditLog.Read.All): the scan still succeeds, last use is unknown and says which permission to grant', async () => {
    f.entra.directory.withdraw(bot(), 'AuditLog.Read.All');
    const inv = await scan();
    const hr = byName(inv.credentials, 'hr-sync / hr-sync-secret');
    expect(hr.lastUsedAt).toBeUndefined();
    expect(hr.attributes.lastUseUnknown).toMatch(/AuditLog\.Read\.All/);
    expect(planRevoke(hr).warnings!.join(' ')).toMatch(/last use unknown — .*grant Keywarden's app the Microsoft Graph application permission AuditLog\.Read\.All/);
    expect(inv.credentials).toHaveLength(8);
  });
});
