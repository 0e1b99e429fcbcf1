import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import type { Credential } from '../../src/domain/credential.js';
import { createAzureCredential } from '../../src/providers/azure-credential.js';
import { GraphClient } from '../../src/providers/entra/graph.js';
import { createEntraInventory } from '../../src/providers/entra/inventory.js';
import { verifyClientSecret } from '../../src/providers/entra/verify.js';
import { KEYWARDEN_GRAPH_PERMISSIONS } from '../../src/sandbox/entra/seed.js';
import { START, startSeededEntra, type EntraFixture } from '../sandbox/entra-fixtures.js';

// The seeded Contoso tenant read through the product path: config → credential → GraphClient → inventory.

let f: EntraFixture;
let graph: GraphClient;

beforeAll(async () => {
  f = await startSeededEntra({ graphPageSize: 4 });
  // Built exactly as the product builds it from config.
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
  f.entra.directory.grant(f.seeded.keywarden.clientId, ...KEYWARDEN_GRAPH_PERMISSIONS);
  f.entra.graph.clearRequests();
});

const scan = () => createEntraInventory({ tenantLabel: 'contoso', graph }).scan({});
const byName = (creds: Credential[], name: string) => creds.find((c) => c.name === name)!;

describe('createEntraInventory over the seeded tenant', () => {
  it('returns one credential per app and SP password and certificate, with the documented ids and fields', async () => {
    const inv = await scan();
    expect(inv).toMatchObject({ estate: 'entra', scope: 'contoso', host: f.entra.graphUrl, facts: {} });
    expect(inv.credentials.map((c) => c.name).sort()).toEqual([
      'etl-ingest / etl-ingest-2026', 'hr-sync / hr-sync-long-lived', 'hr-sync / hr-sync-secret', 'keywarden-bot / keywarden-bot-secret',
      'legacy-crm / legacy-crm-secret', 'partner-sftp / CN=partner-sftp.contoso.com', 'reporting-svc / reporting-svc-secret',
      'reporting-svc / reporting-svc-sp-secret',
    ]);
    const etl = f.seeded.apps['etl-ingest']!;
    expect(byName(inv.credentials, 'etl-ingest / etl-ingest-2026')).toEqual({
      id: `entra-password:${etl.appId}:${f.seeded.etlSecret.keyId}`,
      kind: 'entra-password',
      nativeId: f.seeded.etlSecret.keyId,
      name: 'etl-ingest / etl-ingest-2026',
      where: { estate: 'entra', scope: etl.appId, host: f.entra.graphUrl, label: 'app etl-ingest' },
      // The people who answer for it, from /applications/{id}/owners (the human first), not the app itself.
      owner: { id: f.seeded.estateUsers.alice.id, name: 'Alice Admin', kind: 'user', active: true, entraObjectId: f.seeded.estateUsers.alice.id },
      owners: [
        { id: f.seeded.apps['keywarden-bot']!.spObjectId, name: 'keywarden-bot', kind: 'service-principal', applicationId: f.seeded.apps['keywarden-bot']!.appId, active: true },
        { id: f.seeded.estateUsers.alice.id, name: 'Alice Admin', kind: 'user', active: true, entraObjectId: f.seeded.estateUsers.alice.id },
      ],
      createdAt: START - 76 * DAY_MS,
      expiresAt: f.seeded.etlSecret.expiresAt,
      // From the beta sign-in activity report (AuditLog.Read.All).
      lastUsedAt: START - 20 * DAY_MS,
      heldIn: [],
      consumers: [],
      attributes: {
        appId: etl.appId, appObjectId: etl.objectId, objectType: 'application', objectId: etl.objectId, displayName: 'etl-ingest',
        credentialDisplayName: 'etl-ingest-2026', hint: f.seeded.etlSecret.value.slice(0, 3),
      },
    });
  });

  it('covers every threshold of the estate doc, the SP-level secret and the certificate', async () => {
    const creds = (await scan()).credentials;
    const days = (name: string) => Math.round((byName(creds, name).expiresAt! - START) / DAY_MS);
    expect(days('etl-ingest / etl-ingest-2026')).toBe(14);
    expect(days('reporting-svc / reporting-svc-secret')).toBe(30);
    expect(days('reporting-svc / reporting-svc-sp-secret')).toBe(60);
    expect(days('keywarden-bot / keywarden-bot-secret')).toBe(90);
    expect(days('legacy-crm / legacy-crm-secret')).toBe(-5);
    expect(days('partner-sftp / CN=partner-sftp.contoso.com')).toBe(7);
    expect(days('hr-sync / hr-sync-secret')).toBe(1);
    expect(days('hr-sync / hr-sync-long-lived')).toBe(720);
    const sp = byName(creds, 'reporting-svc / reporting-svc-sp-secret');
    expect(sp.attributes).toMatchObject({ objectType: 'servicePrincipal', objectId: f.seeded.apps['reporting-svc']!.spObjectId, appObjectId: f.seeded.apps['reporting-svc']!.objectId });
    expect(sp.id).toMatch(new RegExp(`^entra-password:${f.seeded.apps['reporting-svc']!.appId}:`));
    const cert = byName(creds, 'partner-sftp / CN=partner-sftp.contoso.com');
    expect(cert).toMatchObject({ kind: 'entra-certificate', attributes: { certificateType: 'AsymmetricX509Cert', hint: null } });
  });

  it('an SP-level secret is placed on the service principal and owned by the SP\'s owners; an ownerless app says so', async () => {
    const creds = (await scan()).credentials;
    const sp = byName(creds, 'reporting-svc / reporting-svc-sp-secret');
    expect(sp.where.label).toBe('service principal reporting-svc');
    expect(sp.owner).toMatchObject({ name: 'Bob Dev', kind: 'user', entraObjectId: f.seeded.estateUsers.bob.id });
    expect(f.entra.graph.requests.some((r) => r.path === `/v1.0/servicePrincipals/${f.seeded.apps['reporting-svc']!.spObjectId}/owners`)).toBe(true);
    const cert = byName(creds, 'partner-sftp / CN=partner-sftp.contoso.com');
    expect(cert.owners).toEqual([]);
    expect(cert.owner).toMatchObject({ name: 'partner-sftp', kind: 'application' });
  });

  it('owners Graph will not give keep the credential, owned by the app, with the reason noted', async () => {
    f.entra.graph.injectFault({ path: '/owners', status: 403, times: Infinity, body: { error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' } } });
    try {
      // An SP's owners are one call of their own (SP listings are not expanded).
      const sp = byName((await scan()).credentials, 'reporting-svc / reporting-svc-sp-secret');
      expect(sp.owner).toMatchObject({ name: 'reporting-svc', kind: 'application' });
      expect(sp.owners).toBeUndefined();
      expect(String(sp.attributes.ownersError)).toContain('Authorization_RequestDenied');
    } finally {
      f.entra.graph.clearFaults();
    }
  });

  it('reads app owners with the apps listing, and an app with 20 or more owners from its own owners list', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    const hr = f.seeded.apps['hr-sync']!;
    for (let i = 0; i < 23; i++) {
      const id = `0ae0a0e0-0000-4000-8000-${String(i).padStart(12, '0')}`;
      f.entra.directory.addUser({ id, displayName: `Owner ${i}`, userPrincipalName: `owner${i}@contoso.com`, accountEnabled: true });
      f.entra.directory.addOwner({ kind: 'application', id: hr.objectId }, id);
    }
    const creds = (await scan()).credentials;
    const paths = f.entra.graph.requests.map((r) => r.path);
    expect(f.entra.graph.requests.filter((r) => r.path === '/v1.0/applications').every((r) => decodeURIComponent(r.query).includes('$expand=owners'))).toBe(true);
    // etl-ingest's two owners came with the listing: no call of its own; same owners as before.
    expect(paths).not.toContain(`/v1.0/applications/${etl.objectId}/owners`);
    expect(byName(creds, 'etl-ingest / etl-ingest-2026').owners?.map((o) => o.name)).toEqual(['keywarden-bot', 'Alice Admin']);
    // Graph expands at most 20 owners and gives no link to the rest: hr-sync's list is read in full, once.
    const hrOwners = f.entra.graph.requests.filter((r) => r.path === `/v1.0/applications/${hr.objectId}/owners`);
    expect(hrOwners.filter((r) => !decodeURIComponent(r.query).includes('$skiptoken'))).toHaveLength(1);
    expect(byName(creds, 'hr-sync / hr-sync-secret').owners?.map((o) => o.name)).toContain('Owner 22');
  });

  it('asks for the next page of service principals while the owners of the page before are still being read', async () => {
    const sps = Array.from({ length: 8 }, (_, i) => f.entra.directory.addApplication({ displayName: `paging-sp-${i}` }).sp);
    for (const sp of sps) {
      f.entra.directory.addPassword({ kind: 'servicePrincipal', id: sp.id }, { displayName: `${sp.displayName}-secret`, endDateTime: START + 90 * DAY_MS });
      f.entra.directory.addOwner({ kind: 'servicePrincipal', id: sp.id }, f.seeded.estateUsers.bob.id);
    }
    f.entra.graph.setLatency(20);
    try {
      const pages: Credential[][] = [];
      await createEntraInventory({ tenantLabel: 'contoso', graph, concurrency: 1 }).stream({}, async (page) => { pages.push(page); });
      // A page of four SPs that each hold a secret (four owners calls, one at a time), and the listing page after it.
      const full = pages.find((p) => p.filter((c) => c.attributes.objectType === 'servicePrincipal').length === 4)!;
      const fullSps = new Set(full.map((c) => c.attributes.objectId as string));
      const pageNo = Math.floor([...f.entra.directory.servicePrincipals.keys()].indexOf([...fullSps][0]!) / 4);
      const done = f.entra.graph.requests.map((r) => r.path);
      const nextPage = done.map((p, i) => (p === '/v1.0/servicePrincipals' ? i : -1)).filter((i) => i >= 0)[pageNo + 1]!;
      const lastOwnersOfPage = Math.max(...done.map((p, i) => ([...fullSps].some((id) => p === `/v1.0/servicePrincipals/${id}/owners`) ? i : -1)));
      // Before, the next page was asked for only once every owner of the page before had answered (Graph's window drained).
      expect(nextPage).toBeGreaterThan(0);
      expect(nextPage).toBeLessThan(lastOwnersOfPage);
    } finally {
      f.entra.graph.setLatency(0);
    }
  });

  it('reads only (GETs, all pages) and never carries a secret value', async () => {
    const inv = await scan();
    expect(new Set(f.entra.graph.requests.map((r) => r.method))).toEqual(new Set(['GET']));
    expect(f.entra.graph.requests.filter((r) => r.path === '/v1.0/applications')).toHaveLength(Math.ceil(f.entra.directory.applications.size / 4));
    const text = JSON.stringify(inv);
    expect(text).not.toContain(f.seeded.keywarden.clientSecret);
    expect(text).not.toContain(f.seeded.etlSecret.value);
  });

  it('fails the scan with a GraphError naming the missing permission when Application.Read.All is withdrawn', async () => {
    f.entra.directory.withdraw(f.seeded.keywarden.clientId, 'Application.Read.All', 'Application.ReadWrite.OwnedBy');
    const err = await scan().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'GraphError', statusCode: 403, code: 'Authorization_RequestDenied' });
    expect((err as Error).message).toMatch(/Application\.Read\.All/);
  });
});

describe('rotating the seeded etl-ingest secret through the providers', () => {
  it('adds a secret to the owned app, verifies it for real, and removes the old one', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    const added = await graph.addPassword(etl.objectId, { displayName: 'keywarden-rotation-1', endDateTime: START + 180 * DAY_MS });
    const verify = (secret: string) => verifyClientSecret({
      tenantId: f.seeded.tenantId, clientId: etl.appId, secret, authorityHost: f.entra.authorityHost, scope: '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default',
    });
    expect(await verify(added.secretText)).toEqual({ ok: true });
    expect(await graph.removePassword(etl.objectId, f.seeded.etlSecret.keyId)).toBe('removed');
    expect(await verify(f.seeded.etlSecret.value)).toMatchObject({ ok: false, code: 'AADSTS7000215' });
    const after = (await scan()).credentials.filter((c) => c.attributes.appId === etl.appId);
    expect(after.map((c) => c.nativeId)).toEqual([added.keyId]);
  });
});
