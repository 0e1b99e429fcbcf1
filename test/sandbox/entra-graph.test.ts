import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { redactText } from '../../src/logging/redact.js';
import { GraphClient, GraphError } from '../../src/providers/entra/graph.js';
import { KEYWARDEN_GRAPH_PERMISSIONS, PLAYGROUND_USERS } from '../../src/sandbox/entra/seed.js';
import { startSeededEntra, type EntraFixture } from './entra-fixtures.js';

// Microsoft Graph contract: raw requests (shapes, paging, errors) and the GraphClient over the same wire.

let f: EntraFixture;
let token: string;
let graph: GraphClient;

const get = async (path: string, bearer: string | null = token) => {
  const res = await fetch(`${f.entra.graphUrl}${path}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped wire JSON under test
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
};

beforeAll(async () => {
  f = await startSeededEntra();
  token = (await f.keywardenCredential().getToken('https://graph.microsoft.com/.default')).token;
  graph = new GraphClient({ baseUrl: f.entra.graphUrl, credential: f.keywardenCredential(), clock: f.clock, backoffBaseMs: 10 });
});
afterAll(async () => {
  await f?.entra.close();
});
beforeEach(() => {
  f.entra.directory.grant(f.seeded.keywarden.clientId, ...KEYWARDEN_GRAPH_PERMISSIONS);
  f.entra.graph.clearFaults();
});

describe('Graph emulator: applications and servicePrincipals', () => {
  it('pages with $top and @odata.nextLink, keeping $select and $filter', async () => {
    const first = await get('/v1.0/applications?$select=id,appId,displayName&$top=4');
    expect(first.status).toBe(200);
    expect(first.body['@odata.context']).toMatch(/\$metadata#applications\(id,appId,displayName\)$/);
    expect(first.body.value).toHaveLength(4);
    expect(Object.keys(first.body.value[0])).toEqual(['id', 'appId', 'displayName']);
    const next = new URL(first.body['@odata.nextLink']);
    expect(next.searchParams.get('$select')).toBe('id,appId,displayName');
    const second = await get(next.pathname + next.search);
    expect(second.body.value).toHaveLength(2);
    expect(second.body['@odata.nextLink']).toBeUndefined();
    const names = [...first.body.value, ...second.body.value].map((a: { displayName: string }) => a.displayName);
    expect(names).toEqual(['etl-ingest', 'reporting-svc', 'keywarden-bot', 'legacy-crm', 'partner-sftp', 'hr-sync']);
  });

  it('GraphClient follows every page and returns typed applications with credentials', async () => {
    const apps = await graph.listApplications({ top: 2 });
    expect(apps).toHaveLength(6);
    const etl = apps.find((a) => a.displayName === 'etl-ingest')!;
    expect(etl.passwordCredentials![0]).toEqual({
      customKeyIdentifier: null, displayName: 'etl-ingest-2026', endDateTime: new Date(f.seeded.etlSecret.expiresAt).toISOString().replace('.000Z', 'Z'),
      hint: f.seeded.etlSecret.value.slice(0, 3), keyId: f.seeded.etlSecret.keyId, secretText: null,
      startDateTime: new Date(f.clock.now() - 76 * DAY_MS).toISOString().replace('.000Z', 'Z'),
    });
    const sftp = apps.find((a) => a.displayName === 'partner-sftp')!;
    expect(sftp.keyCredentials![0]).toMatchObject({ type: 'AsymmetricX509Cert', usage: 'Verify', displayName: 'CN=partner-sftp.contoso.com' });
    expect(f.entra.graph.requests.filter((r) => r.path === '/v1.0/applications').length).toBeGreaterThanOrEqual(3);
  });

  it('filters by appId, gets by object id and by (appId=\'…\')', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    const filtered = await graph.listApplications({ filter: `appId eq '${etl.appId}'` });
    expect(filtered.map((a) => a.id)).toEqual([etl.objectId]);
    const sps = await graph.listServicePrincipals({ filter: `appId eq '${etl.appId}'` });
    expect(sps.map((s) => s.id)).toEqual([etl.spObjectId]);
    expect((await graph.getApplication(etl.objectId)).displayName).toBe('etl-ingest');
    const byAppId = await get(`/v1.0/applications(appId='${etl.appId}')?$select=id,displayName`);
    expect(byAppId.body).toMatchObject({ id: etl.objectId, displayName: 'etl-ingest' });
    expect(byAppId.body['@odata.context']).toMatch(/#applications\/\$entity$/);
  });

  it('shows service-principal-level passwords on /servicePrincipals only', async () => {
    const rep = f.seeded.apps['reporting-svc']!;
    const sp = await graph.getServicePrincipal(rep.spObjectId);
    expect(sp.passwordCredentials!.map((p) => p.displayName)).toEqual(['reporting-svc-sp-secret']);
    expect((await graph.getApplication(rep.objectId)).passwordCredentials!.map((p) => p.displayName)).toEqual(['reporting-svc-secret']);
  });

  it('answers unknown $select properties, unsupported filters, bad $top and unknown ids with Graph error bodies', async () => {
    const badSelect = await get('/v1.0/applications?$select=id,secretStuff');
    expect(badSelect.status).toBe(400);
    expect(badSelect.body.error).toMatchObject({ code: 'Request_BadRequest', message: expect.stringContaining("'secretStuff'") });
    expect(badSelect.body.error.innerError).toEqual({ date: expect.any(String), 'request-id': expect.any(String), 'client-request-id': expect.any(String) });
    expect((await get("/v1.0/applications?$filter=notes eq 'x'")).body.error.code).toBe('Request_UnsupportedQuery');
    expect((await get('/v1.0/applications?$top=1000')).status).toBe(400);
    const missing = await get('/v1.0/applications/00000000-dead-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('Request_ResourceNotFound');
    await expect(graph.getApplication('00000000-dead-4000-8000-000000000000')).rejects.toMatchObject({ name: 'GraphError', code: 'Request_ResourceNotFound', statusCode: 404, requestId: expect.any(String) });
  });

  it('refuses missing and wrong-audience tokens with 401 InvalidAuthenticationToken', async () => {
    expect(await get('/v1.0/applications', null)).toMatchObject({ status: 401, body: { error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty.' } } });
    const vaultToken = f.entra.issueToken(f.seeded.keywarden.clientId, 'https://vault.azure.net/.default');
    const wrong = await get('/v1.0/applications', vaultToken);
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).toMatch(/audience/);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });
});

describe('Graph emulator: addPassword / removePassword and permissions', () => {
  it('returns the secret once (40 chars with 8Q~, hint = first 3 chars) and never again on read', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    const added = await graph.addPassword(etl.objectId, { displayName: 'rotation-once', endDateTime: f.clock.now() + 90 * DAY_MS });
    expect(added.secretText).toHaveLength(40);
    expect(added.secretText.slice(3, 6)).toBe('8Q~');
    expect(added.hint).toBe(added.secretText.slice(0, 3));
    expect(added.endDateTime).toBe(new Date(f.clock.now() + 90 * DAY_MS).toISOString().replace('.000Z', 'Z'));
    // Registered for redaction the moment the client held it.
    expect(redactText(`value=${added.secretText}`)).not.toContain(added.secretText);
    const app = await graph.getApplication(etl.objectId);
    const stored = app.passwordCredentials!.find((p) => p.keyId === added.keyId)!;
    expect(stored).toMatchObject({ displayName: 'rotation-once', hint: added.hint, secretText: null });
    expect(JSON.stringify(app)).not.toContain(added.secretText);
    expect(await graph.removePassword(etl.objectId, added.keyId)).toBe('removed');
    expect(await graph.removePassword(etl.objectId, added.keyId)).toBe('already-gone');
  });

  it('answers removePassword with 204 No Content on the wire', async () => {
    const etl = f.seeded.apps['etl-ingest']!;
    const added = await graph.addPassword(etl.objectId, { displayName: 'rotation-204', endDateTime: f.clock.now() + DAY_MS });
    const res = await fetch(`${f.entra.graphUrl}/v1.0/applications/${etl.objectId}/removePassword`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ keyId: added.keyId }),
    });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
  });

  it('lets Application.ReadWrite.OwnedBy write only apps whose owners include the caller\'s SP', async () => {
    const rep = f.seeded.apps['reporting-svc']!;
    const err = await graph.addPassword(rep.objectId, { displayName: 'not-mine', endDateTime: f.clock.now() + DAY_MS }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect(err).toMatchObject({ code: 'Authorization_RequestDenied', statusCode: 403 });
    expect((err as Error).message).toMatch(/Application\.ReadWrite\.OwnedBy/);
    expect((await graph.getApplication(rep.objectId)).passwordCredentials!.some((p) => p.displayName === 'not-mine')).toBe(false);
  });

  it('answers 403 Authorization_RequestDenied once a permission is withdrawn', async () => {
    f.entra.directory.withdraw(f.seeded.keywarden.clientId, 'Application.ReadWrite.OwnedBy');
    const etl = f.seeded.apps['etl-ingest']!;
    await expect(graph.addPassword(etl.objectId, { displayName: 'withdrawn', endDateTime: f.clock.now() + DAY_MS }))
      .rejects.toMatchObject({ code: 'Authorization_RequestDenied', statusCode: 403 });
    f.entra.directory.withdraw(f.seeded.keywarden.clientId, 'Application.Read.All');
    await expect(graph.listApplications()).rejects.toMatchObject({ code: 'Authorization_RequestDenied', statusCode: 403 });
  });

  it('lists owners with their @odata.type', async () => {
    const owners = await graph.listOwners(f.seeded.apps['etl-ingest']!.objectId);
    expect(owners).toEqual([
      expect.objectContaining({ '@odata.type': '#microsoft.graph.servicePrincipal', id: f.seeded.apps['keywarden-bot']!.spObjectId, displayName: 'keywarden-bot' }),
      expect.objectContaining({ '@odata.type': '#microsoft.graph.user', id: f.seeded.estateUsers.alice.id, displayName: 'Alice Admin' }),
    ]);
    const botOwners = await graph.listOwners(f.seeded.apps['keywarden-bot']!.objectId);
    expect(botOwners).toEqual([expect.objectContaining({ '@odata.type': '#microsoft.graph.user', displayName: 'Alex Wilber' })]);
  });

  it('owners page with @odata.nextLink; without User.Read* a user owner is only its type and id', async () => {
    const pageSize = f.entra.graphPageSize;
    f.entra.graphPageSize = 1;
    try {
      f.entra.directory.withdraw(f.seeded.keywarden.clientId, 'User.ReadBasic.All');
      f.entra.graph.clearRequests();
      const owners = await graph.listOwners(f.seeded.apps['etl-ingest']!.objectId);
      expect(owners).toHaveLength(2);
      expect(owners[1]).toEqual({ '@odata.type': '#microsoft.graph.user', id: f.seeded.estateUsers.alice.id });
      expect(f.entra.graph.requests.filter((r) => r.path.endsWith('/owners'))).toHaveLength(2);
    } finally {
      f.entra.graphPageSize = pageSize;
    }
  });

  it('GET /users filters by userPrincipalName / mail with eq and in (at most 15 values) and needs User.Read*', async () => {
    const users = await graph.listUsers({ filter: "userPrincipalName in ('BOB.dev@contoso.com','nobody@contoso.com','alice.admin@contoso.com')" });
    expect(users.map((u) => u.id).sort()).toEqual([f.seeded.estateUsers.alice.id, f.seeded.estateUsers.bob.id]);
    expect(users[0]).toEqual(expect.objectContaining({ userPrincipalName: expect.any(String), displayName: expect.any(String), accountEnabled: true }));
    expect(await graph.listUsers({ filter: "mail eq 'LeeG@contoso.com'" })).toEqual([expect.objectContaining({ id: f.seeded.users.lee.id })]);
    const sixteen = Array.from({ length: 16 }, (_, i) => `'u${i}@contoso.com'`).join(',');
    await expect(graph.listUsers({ filter: `userPrincipalName in (${sixteen})` })).rejects.toMatchObject({ statusCode: 400, code: 'Request_UnsupportedQuery' });
    f.entra.directory.withdraw(f.seeded.keywarden.clientId, 'User.ReadBasic.All');
    await expect(graph.listUsers({ filter: "mail eq 'LeeG@contoso.com'" })).rejects.toMatchObject({ statusCode: 403, code: 'Authorization_RequestDenied' });
  });
});

describe('Graph emulator: approver group membership', () => {
  it('answers group members, checkMemberGroups and getMemberGroups', async () => {
    const members = await get(`/v1.0/groups/${f.seeded.approverGroupId}/members`);
    expect(members.body.value.map((m: { displayName: string }) => m.displayName)).toEqual(['Alex Wilber', 'Megan Bowen']);
    expect(await graph.isMemberOfAny(PLAYGROUND_USERS.alex.id, [f.seeded.approverGroupId])).toBe(true);
    expect(await graph.isMemberOfAny(PLAYGROUND_USERS.megan.id, ['11111111-0000-4000-8000-000000000000', f.seeded.approverGroupId])).toBe(true);
    expect(await graph.isMemberOfAny(PLAYGROUND_USERS.lee.id, [f.seeded.approverGroupId])).toBe(false);
    expect(await graph.isMemberOfAny('00000000-0000-0000-0000-0000000000ff', [f.seeded.approverGroupId])).toBe(false);
    expect(await graph.isMemberOfAny(PLAYGROUND_USERS.alex.id, [])).toBe(false);
    const res = await fetch(`${f.entra.graphUrl}/v1.0/users/${PLAYGROUND_USERS.alex.id}/getMemberGroups`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ securityEnabledOnly: false }),
    });
    expect((await res.json() as { value: string[] }).value).toEqual([f.seeded.approverGroupId]);
  });

  it('refuses membership checks without GroupMember.Read.All', async () => {
    f.entra.directory.withdraw(f.seeded.keywarden.clientId, 'GroupMember.Read.All');
    await expect(graph.isMemberOfAny(PLAYGROUND_USERS.alex.id, [f.seeded.approverGroupId])).rejects.toMatchObject({ statusCode: 403, code: 'Authorization_RequestDenied' });
  });
});
