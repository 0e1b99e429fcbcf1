import { ClientSecretCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { redactText } from '../../src/logging/redact.js';
import { DatabricksClient, DatabricksError } from '../../src/providers/databricks/client.js';
import type { EntraEmulator } from '../../src/sandbox/entra/index.js';
import { startEntraEmulator } from '../../src/sandbox/entra/index.js';
import { seedEntra } from '../../src/sandbox/entra/seed.js';
import { ADMIN_ID, JANE_ID, NOW, SP_APP, SP_ID, WORKSPACE_ID, startTestWorkspace, type TestWorkspace } from './databricks-testkit.js';

// The real DatabricksClient against the emulated workspace over HTTP.

let t: TestWorkspace;
let admin: DatabricksClient;

beforeAll(async () => {
  t = await startTestWorkspace();
  admin = t.client();
});
afterAll(async () => {
  await t?.emu.close();
});

async function rejection(p: Promise<unknown>): Promise<DatabricksError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DatabricksError);
  return err as DatabricksError;
}

describe('DatabricksClient against the emulator', () => {
  it('creates, lists, verifies and deletes its own token; the value is registered for redaction', async () => {
    const jane = admin.withToken(t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'jane-main', expiryTime: NOW + 30 * DAY_MS }).tokenValue);
    const created = await jane.createToken({ lifetimeSeconds: 3600, comment: 'chatops-rot:r-1' });
    expect(created.tokenValue).toMatch(/^dapi[0-9a-f]{32}(-2)?$/);
    expect(redactText(`value=${created.tokenValue}`)).not.toContain(created.tokenValue);
    expect(created.tokenInfo).toEqual({ tokenId: expect.stringMatching(/^[0-9a-f]{64}$/), creationTime: NOW, expiryTime: NOW + 3_600_000, comment: 'chatops-rot:r-1', lastAccessedTime: undefined });

    // Verification the way rotation does it: the new value lists its own token_id.
    const own = await jane.withToken(created.tokenValue).listOwnTokens();
    expect(own.map((x) => x.tokenId)).toContain(created.tokenInfo.tokenId);
    expect(await jane.deleteOwnToken(created.tokenInfo.tokenId)).toBe(true);
    expect(await jane.deleteOwnToken(created.tokenInfo.tokenId)).toBe(false);
    const err = await rejection(jane.withToken(created.tokenValue).listOwnTokens());
    expect(err).toMatchObject({ code: 'HTTP_403', statusCode: 403, serverMessage: 'Invalid access token.' });
    expect(err.message).not.toContain(created.tokenValue);
  });

  it('lists every token with exact big-number ids, and filters by creator', async () => {
    const all = await admin.listTokens();
    const mine = all.find((x) => x.comment === 'admin')!;
    expect(mine).toMatchObject({ ownerId: ADMIN_ID, createdById: ADMIN_ID, createdByUsername: 'admin@contoso.com', workspaceId: WORKSPACE_ID, expiryTime: -1 });
    const byId = await admin.listTokens({ createdById: JANE_ID });
    expect(byId.length).toBeGreaterThan(0);
    expect(byId.every((x) => x.createdById === JANE_ID)).toBe(true);
    expect((await admin.listTokens({ createdByUsername: 'admin@contoso.com' })).map((x) => x.comment)).toContain('admin');
    expect(await admin.listTokens({ createdByUsername: 'nobody@contoso.com' })).toEqual([]);
    expect(await admin.getToken(mine.tokenId)).toEqual(mine);
  });

  it('getToken / deleteToken treat a missing token as gone', async () => {
    expect(await admin.getToken('deadbeef')).toBeUndefined();
    const { tokenId } = t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'to-revoke', expiryTime: NOW + DAY_MS });
    expect(await admin.deleteToken(tokenId)).toBe(true);
    expect(await admin.deleteToken(tokenId)).toBe(false);
    expect(t.ws.tokens({ includeRevoked: true }).find((x) => x.tokenId === tokenId)?.revoked).toBe(true);
  });

  it('on-behalf-of: needs an admin, an SP in the workspace, and CAN_USE for the SP', async () => {
    const unknown = await rejection(admin.createOboToken({ applicationId: '00000000-0000-0000-0000-000000000000', lifetimeSeconds: 3600, comment: 'x' }));
    expect(unknown).toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST', statusCode: 404 });

    const noCanUse = await rejection(admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 3600, comment: 'x' }));
    expect(noCanUse).toMatchObject({ code: 'PERMISSION_DENIED', statusCode: 403 });
    expect(noCanUse.message).toContain('On-behalf-of token creation for service principals is not enabled');
    expect(noCanUse.message).toContain('CAN_USE');

    const janeClient = admin.withToken(t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'jane-obo', expiryTime: NOW + DAY_MS }).tokenValue);
    expect(await rejection(janeClient.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 3600, comment: 'x' }))).toMatchObject({ code: 'PERMISSION_DENIED' });

    const perms = await admin.grantTokenUse([{ type: 'service-principal', principal: SP_APP }]);
    expect(perms.entries).toContainEqual({ type: 'service-principal', principal: SP_APP, displayName: 'adf-sp', levels: [{ level: 'CAN_USE', inherited: false }] });
    const obo = await admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 3600, comment: 'chatops-jit:j-7' });
    expect(obo.tokenInfo).toMatchObject({ ownerId: SP_ID, createdById: ADMIN_ID, createdByUsername: 'admin@contoso.com', workspaceId: WORKSPACE_ID, expiryTime: NOW + 3_600_000, comment: 'chatops-jit:j-7' });
    // The OBO token authenticates as the SP.
    const me = await admin.withToken(obo.tokenValue).me();
    expect(me).toMatchObject({ id: SP_ID, userName: SP_APP, displayName: 'adf-sp', isAdmin: false });
  });

  it('enforces maxTokenLifetimeDays on create with a clear error', async () => {
    t.ws.setConf({ maxTokenLifetimeDays: '90' });
    try {
      const err = await rejection(admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 91 * 86400, comment: 'too-long' }));
      expect(err).toMatchObject({ code: 'INVALID_PARAMETER_VALUE', statusCode: 400 });
      expect(err.message).toContain('maximum lifetime of 90 days');
      expect(await admin.getWorkspaceConf(['maxTokenLifetimeDays', 'enableTokensConfig'])).toEqual({ maxTokenLifetimeDays: '90', enableTokensConfig: null });
      const ok = await admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 90 * 86400, comment: 'just-right' });
      expect(ok.tokenInfo.expiryTime).toBe(NOW + 90 * DAY_MS);
    } finally {
      t.ws.setConf({ maxTokenLifetimeDays: '0' });
    }
  });

  it('refuses the 601st token of an owner with QUOTA_EXCEEDED, without retrying', async () => {
    t.ws.addUser({ userName: 'busy@contoso.com' });
    t.ws.setTokenPermissions([{ type: 'user', name: 'jane@contoso.com' }, { type: 'user', name: 'busy@contoso.com' }, { type: 'service-principal', name: SP_APP }]);
    let pat = '';
    for (let i = 0; i < 600; i++) pat = t.ws.addToken({ ownerName: 'busy@contoso.com', comment: `t${i}`, expiryTime: NOW + DAY_MS }).tokenValue;
    t.ws.clearRequests();
    const err = await rejection(admin.withToken(pat).createToken({ lifetimeSeconds: 3600, comment: 'one-more' }));
    expect(err).toMatchObject({ code: 'QUOTA_EXCEEDED', statusCode: 400 });
    expect(err.message).toContain('600 tokens');
    expect(t.ws.requests().filter((r) => r.path === '/api/2.0/token/create')).toHaveLength(1);
  });

  it('expired and revoked tokens get 403 "Invalid access token."; the HTML form parses too', async () => {
    const { tokenValue, tokenId } = t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'short', expiryTime: NOW + DAY_MS });
    const jane = admin.withToken(tokenValue);
    await jane.listOwnTokens();
    t.clock.advance(2 * DAY_MS);
    const expired = await rejection(jane.listOwnTokens());
    expect(expired).toMatchObject({ code: 'HTTP_403', statusCode: 403, serverMessage: 'Invalid access token.' });
    expect(expired.message).toMatch(/expired, revoked/);

    const other = t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'revoked', expiryTime: -1 });
    t.ws.revokeToken(other.tokenId);
    t.ws.setHtmlAuthErrors(true);
    try {
      const html = await rejection(admin.withToken(other.tokenValue).listOwnTokens());
      expect(html).toMatchObject({ code: 'HTTP_403', statusCode: 403, serverMessage: 'Invalid access token.' });
    } finally {
      t.ws.setHtmlAuthErrors(false);
    }
    expect(await admin.getToken(tokenId)).toBeDefined(); // expired tokens stay listed until deleted
  });

  it('updates last_used_day, truncated to the day, when a token authenticates', async () => {
    const { tokenValue, tokenId } = t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'usage', expiryTime: -1 });
    expect((await admin.getToken(tokenId))?.lastUsedDay).toBeUndefined();
    await admin.withToken(tokenValue).listOwnTokens();
    const day = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
    expect((await admin.getToken(tokenId))?.lastUsedDay).toBe(day(t.clock.now()));
    t.clock.advance(3 * DAY_MS + 5 * 3_600_000);
    await admin.withToken(tokenValue).listOwnTokens();
    expect((await admin.getToken(tokenId))?.lastUsedDay).toBe(day(t.clock.now()));
  });

  it('pages through SCIM users and service principals', async () => {
    t.ws.clearRequests();
    const users = await admin.listUsers({ pageSize: 1, attributes: 'id,userName,active' });
    expect(users.map((u) => u.userName)).toEqual(['admin@contoso.com', 'jane@contoso.com', 'old@contoso.com', 'busy@contoso.com']);
    expect(users.find((u) => u.userName === 'old@contoso.com')).toMatchObject({ id: '202480738464078', active: false });
    expect(users[0]!.id).toBe(ADMIN_ID);
    const starts = t.ws.requests().filter((r) => r.path.endsWith('/Users')).map((r) => new URLSearchParams(r.query).get('startIndex'));
    expect(starts).toEqual(['1', '2', '3', '4', '5']);
    expect(await admin.listServicePrincipals()).toEqual([{ id: SP_ID, applicationId: SP_APP, displayName: 'adf-sp', active: true, groups: [], entitlements: ['workspace-access'] }]);
    expect(await admin.listUsers({ filter: 'userName eq "jane@contoso.com"' })).toHaveLength(1);
    expect(await admin.me()).toMatchObject({ id: ADMIN_ID, userName: 'admin@contoso.com', isAdmin: true, active: true });
  });

  it('reads token permissions', async () => {
    const perms = await admin.getTokenPermissions();
    expect(perms.exists).toBe(true);
    expect(perms.entries[0]).toEqual({ type: 'group', principal: 'admins', displayName: undefined, levels: [{ level: 'CAN_MANAGE', inherited: false }] });
    expect(perms.entries.map((e) => e.principal)).toContain('jane@contoso.com');
  });

  it('manages instance pools and treats a deleted pool as gone', async () => {
    const { instancePoolId } = await admin.createInstancePool({
      name: 'adf-jit-j-8', nodeTypeId: 'Standard_DS3_v2', minIdleInstances: 0, maxCapacity: 10, idleInstanceAutoterminationMinutes: 10,
      customTags: { 'chatops-request': 'j-8' }, azureAttributes: { availability: 'ON_DEMAND_AZURE', spotBidMaxPrice: -1 }, preloadedSparkVersions: ['15.4.x-scala2.12'],
    });
    const pool = await admin.getInstancePool(instancePoolId);
    expect(pool).toMatchObject({ instancePoolId, name: 'adf-jit-j-8', state: 'ACTIVE', maxCapacity: 10, customTags: { 'chatops-request': 'j-8' }, stats: { usedCount: 0 } });
    expect(pool?.defaultTags.InstancePoolCreator).toBe(ADMIN_ID);
    await admin.editInstancePool({ instancePoolId, name: 'adf-jit-j-8', nodeTypeId: 'Standard_DS3_v2', maxCapacity: 4, customTags: { 'chatops-request': 'j-8' } });
    expect((await admin.listInstancePools()).find((p) => p.instancePoolId === instancePoolId)?.maxCapacity).toBe(4);
    expect(await admin.deleteInstancePool(instancePoolId)).toBe(true);
    expect(await admin.getInstancePool(instancePoolId)).toBeUndefined();
    expect(await admin.deleteInstancePool(instancePoolId)).toBe(false);
    expect(await admin.listInstancePools()).toEqual([]);
  });
});

describe('DatabricksClient with Entra auth (@azure/identity against the emulated token endpoint)', () => {
  let entra: EntraEmulator;
  let w: TestWorkspace;
  let credential: ClientSecretCredential;

  beforeAll(async () => {
    const { AdjustableClock } = await import('../../src/clock.js');
    const clock = new AdjustableClock();
    entra = await startEntraEmulator({ clock });
    const seeded = seedEntra(entra, { clock });
    w = await startTestWorkspace({ tokenValidator: entra.validator, extraWorkspaces: [{ name: 'ws-new', workspaceId: '2290583947562031' }] });
    // Entra tokens carry real time; the workspace clock only matters for PAT expiry here.
    w.ws.addServicePrincipal({ applicationId: seeded.keywarden.clientId, displayName: 'keywarden', admin: true });
    credential = new ClientSecretCredential(seeded.tenantId, seeded.keywarden.clientId, seeded.keywarden.clientSecret, {
      authorityHost: entra.authorityHost, disableInstanceDiscovery: true,
    });
  });
  afterAll(async () => {
    await w?.emu.close();
    await entra?.close();
  });

  it('authenticates as the workspace-admin SP with a bearer for 2ff814a6-…/.default', async () => {
    const client = new DatabricksClient({ host: w.ws.url, auth: { credential }, timeoutMs: 10_000 });
    expect(await client.me()).toMatchObject({ displayName: 'keywarden', isAdmin: true });
    expect((await client.listTokens()).length).toBeGreaterThan(0);
  });

  it('refuses an SP that is not in the workspace, unless the SP-management headers come along', async () => {
    const fresh = w.emu.workspace('ws-new');
    const plain = new DatabricksClient({ host: fresh.url, auth: { credential }, timeoutMs: 10_000 });
    const err = await rejection(plain.me());
    expect(err).toMatchObject({ code: 'PERMISSION_DENIED', statusCode: 403 });
    expect(err.message).toContain('X-Databricks-Azure-SP-Management-Token');

    const withHeaders = new DatabricksClient({
      host: fresh.url, timeoutMs: 10_000,
      auth: { credential, spManagement: { workspaceResourceId: '/subscriptions/0000/resourceGroups/rg-data/providers/Microsoft.Databricks/workspaces/ws-new' } },
    });
    expect(await withHeaders.me()).toMatchObject({ isAdmin: true });
    // G6: a workspace that never had a token has no token permission object yet.
    expect(await withHeaders.getTokenPermissions()).toEqual({ exists: false, entries: [] });
    const header = fresh.requests().at(-1);
    expect(header?.status).toBe(404);
  });
});
