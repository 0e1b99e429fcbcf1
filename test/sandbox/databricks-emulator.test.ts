import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import type { DatabricksEmulator, DatabricksWorkspaceHandle } from '../../src/sandbox/databricks/emulator.js';
import { startDatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';

// Wire-level contract of the emulated workspace: exact paths, field names, number formats and error bodies
// (reference/databricks-api.md §13). Raw fetch on purpose: these are the bytes a real client would see.

const NOW = Date.UTC(2026, 10, 22, 5, 0, 0);
const SP_APP = 'fb58f866-62b3-4e08-8f3f-c599db43ffe2';

let emu: DatabricksEmulator;
let ws: DatabricksWorkspaceHandle;
let clock: AdjustableClock;
let adminPat: string;
let janePat: string;

async function call(method: string, path: string, opts: { token?: string | null; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? adminPat : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(ws.url + path, { method, headers, body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire bodies are inspected field by field
  return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) as Record<string, any> };
}

beforeAll(async () => {
  clock = new AdjustableClock({ frozenAt: NOW });
  emu = await startDatabricksEmulator({
    clock,
    workspaces: [{ name: 'ws-a', workspaceId: 9005977231308781n }, { name: 'ws-b', workspaceId: '2290583947562031' }],
  });
  ws = emu.workspace('ws-a');
  ws.addUser({ userName: 'admin@contoso.com', displayName: 'Admin', admin: true, id: 9007199254740993n });
  ws.addUser({ userName: 'jane@contoso.com', displayName: 'Jane', id: '4005002501632047' });
  ws.addServicePrincipal({ applicationId: SP_APP, displayName: 'adf-sp', id: '7405617279531127' });
  adminPat = ws.addToken({ ownerName: 'admin@contoso.com', comment: 'admin', expiryTime: -1 }).tokenValue;
  ws.setTokenPermissions([{ type: 'user', name: 'jane@contoso.com' }]);
  janePat = ws.addToken({ ownerName: 'jane@contoso.com', comment: 'jane', expiryTime: NOW + 30 * DAY_MS }).tokenValue;
});

afterAll(async () => {
  await emu?.close();
});

describe('Databricks emulator: wire contract', () => {
  it('serves each workspace on its own port', () => {
    const urls = emu.urls();
    expect(Object.keys(urls)).toEqual(['ws-a', 'ws-b']);
    expect(urls['ws-a']).not.toEqual(urls['ws-b']);
    expect(emu.workspace('ws-b').workspaceId).toBe('2290583947562031');
  });

  it('token/create answers F1: a dapi value shown once and PublicTokenInfo in epoch ms', async () => {
    const res = await call('POST', '/api/2.0/token/create', { body: { lifetime_seconds: 7776000, comment: 'chatops-rot:r-42' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['token_info', 'token_value']);
    expect(body.token_value).toMatch(/^dapi[0-9a-f]{32}(-2)?$/);
    expect(Object.keys(body.token_info).sort()).toEqual(['comment', 'creation_time', 'expiry_time', 'token_id']);
    expect(body.token_info.token_id).toMatch(/^[0-9a-f]{64}$/);
    expect(body.token_info.creation_time).toBe(NOW);
    expect(body.token_info.expiry_time).toBe(NOW + 7776000 * 1000);
  });

  it('token-management writes 15–16-digit ids as bare JSON numbers and -1 for never', async () => {
    const res = await call('GET', '/api/2.0/token-management/tokens?created_by_username=admin%40contoso.com');
    expect(res.status).toBe(200);
    expect(res.text).toContain('"owner_id":9007199254740993');
    expect(res.text).toContain('"created_by_id":9007199254740993');
    expect(res.text).toContain('"workspace_id":9005977231308781');
    expect(res.text).toMatch(/"comment":"admin"/);
    expect(res.text).toMatch(/"expiry_time":-1/);
    const byId = await call('GET', '/api/2.0/token-management/tokens?created_by_id=4005002501632047');
    expect(byId.text).toContain('"comment":"jane"');
    expect(byId.text).not.toContain('"comment":"admin"');
    const none = await call('GET', '/api/2.0/token-management/tokens?created_by_username=nobody%40contoso.com');
    expect(none.text).toBe('{}');
  });

  it('answers errors in the string form and the numeric form', async () => {
    const missing = await call('GET', '/api/2.0/token-management/tokens/deadbeef');
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({ error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Token with id deadbeef does not exist.' });

    const unknownPat = await call('GET', '/api/2.0/token/list', { token: `dapi${'0'.repeat(32)}` });
    expect(unknownPat.status).toBe(403);
    expect(unknownPat.json()).toEqual({ error_code: 403, message: 'Invalid access token.' });
    expect(unknownPat.headers.get('x-databricks-reason-phrase')).toBe('Invalid access token.');

    const noAuth = await call('GET', '/api/2.0/token/list', { token: null });
    expect(noAuth.status).toBe(401);
    expect(noAuth.json()).toEqual({ error_code: 401, message: 'Credential was not sent or was of an unsupported type for this API.' });

    const scim = await call('GET', '/api/2.0/preview/scim/v2/Users/123');
    expect(scim.status).toBe(404);
    expect(scim.json()).toEqual({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], detail: 'User not found.', status: '404' });

    const badJson = await call('POST', '/api/2.0/token/create', { body: '{not json' });
    expect(badJson.status).toBe(400);
    expect(badJson.json().error_code).toBe('MALFORMED_REQUEST');

    ws.setHtmlAuthErrors(true);
    try {
      const html = await call('GET', '/api/2.0/token/list', { token: `dapi${'1'.repeat(32)}` });
      expect(html.status).toBe(403);
      expect(html.headers.get('content-type')).toMatch(/text\/html/);
      expect(html.text).toContain('<pre>    Invalid access token.</pre>');
    } finally {
      ws.setHtmlAuthErrors(false);
    }
  });

  it('refuses token management to a non-admin with PERMISSION_DENIED', async () => {
    const res = await call('GET', '/api/2.0/token-management/tokens', { token: janePat });
    expect(res.status).toBe(403);
    expect(res.json()).toEqual({ error_code: 'PERMISSION_DENIED', message: 'Only Admins can access token management APIs.' });
    // …while the Token API works for her (she holds CAN_USE).
    expect((await call('GET', '/api/2.0/token/list', { token: janePat })).status).toBe(200);
  });

  it('pages SCIM lists from a 1-based startIndex, with string ids and the active flag', async () => {
    const first = (await call('GET', '/api/2.0/preview/scim/v2/Users?attributes=id,userName,active&startIndex=1&count=1')).json();
    expect(first).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 2, startIndex: 1, itemsPerPage: 1 });
    expect(first.Resources).toEqual([{ id: '9007199254740993', userName: 'admin@contoso.com', active: true }]);
    const second = (await call('GET', '/api/2.0/preview/scim/v2/Users?attributes=id,userName,active&startIndex=2&count=1')).json();
    expect(second.Resources).toEqual([{ id: '4005002501632047', userName: 'jane@contoso.com', active: true }]);
    const past = (await call('GET', '/api/2.0/preview/scim/v2/Users?startIndex=3&count=1')).json();
    expect(past).toMatchObject({ totalResults: 2, startIndex: 3, itemsPerPage: 0, Resources: [] });

    const sps = (await call('GET', `/api/2.0/preview/scim/v2/ServicePrincipals?filter=${encodeURIComponent(`applicationId eq "${SP_APP}"`)}`)).json();
    expect(sps.Resources).toHaveLength(1);
    expect(sps.Resources[0]).toMatchObject({ id: '7405617279531127', applicationId: SP_APP, displayName: 'adf-sp', active: true });

    const me = (await call('GET', '/api/2.0/preview/scim/v2/Me')).json();
    expect(me).toMatchObject({ id: '9007199254740993', userName: 'admin@contoso.com', active: true });
    expect(me.groups).toContainEqual(expect.objectContaining({ display: 'admins' }));
  });

  it('workspace-conf reads string values and refuses non-string writes', async () => {
    const notString = await call('PATCH', '/api/2.0/workspace-conf', { body: { maxTokenLifetimeDays: 90 } });
    expect(notString.status).toBe(400);
    expect(notString.json()).toEqual({ error_code: 'INVALID_PARAMETER_VALUE', message: 'Some values are not allowed: {"maxTokenLifetimeDays":90}' });
    const empty = await call('PATCH', '/api/2.0/workspace-conf', { body: { maxTokenLifetimeDays: '' } });
    expect(empty.json().message).toBe('Some values are not allowed: {"maxTokenLifetimeDays":""}');
    const byJane = await call('PATCH', '/api/2.0/workspace-conf', { token: janePat, body: { maxTokenLifetimeDays: '90' } });
    expect(byJane.status).toBe(403);

    const set = await call('PATCH', '/api/2.0/workspace-conf', { body: { maxTokenLifetimeDays: '365' } });
    expect(set.status).toBe(204);
    expect(set.text).toBe('');
    const read = await call('GET', '/api/2.0/workspace-conf?keys=maxTokenLifetimeDays,enableTokensConfig');
    expect(read.json()).toEqual({ maxTokenLifetimeDays: '365', enableTokensConfig: null });
    await call('PATCH', '/api/2.0/workspace-conf', { body: { maxTokenLifetimeDays: '0' } });
  });

  it('token permissions: PUT replaces the grants and revokes the tokens of whoever loses CAN_USE', async () => {
    const levels = (await call('GET', '/api/2.0/permissions/authorization/tokens/permissionLevels')).json();
    expect(levels.permission_levels.map((l: { permission_level: string }) => l.permission_level)).toContain('CAN_USE');

    const janeToken = ws.tokens().find((t) => t.comment === 'jane')!;
    const put = await call('PUT', '/api/2.0/permissions/authorization/tokens', {
      body: { access_control_list: [{ service_principal_name: SP_APP, permission_level: 'CAN_USE' }] },
    });
    expect(put.status).toBe(200);
    expect(put.json()).toEqual({
      object_id: 'authorization/tokens', object_type: 'tokens',
      access_control_list: [
        { group_name: 'admins', all_permissions: [{ permission_level: 'CAN_MANAGE', inherited: false }] },
        { service_principal_name: SP_APP, display_name: 'adf-sp', all_permissions: [{ permission_level: 'CAN_USE', inherited: false }] },
      ],
    });
    const after = ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === janeToken.tokenId)!;
    expect(after).toMatchObject({ revoked: true, revokedReason: 'lost CAN_USE on tokens' });
    expect((await call('GET', '/api/2.0/token/list', { token: janePat })).status).toBe(403);
    // The admin's tokens survive: admins hold CAN_MANAGE whatever the ACL says.
    expect((await call('GET', '/api/2.0/token/list')).status).toBe(200);

    const cannotGrantManage = await call('PATCH', '/api/2.0/permissions/authorization/tokens', {
      body: { access_control_list: [{ user_name: 'jane@contoso.com', permission_level: 'CAN_MANAGE' }] },
    });
    expect(cannotGrantManage.status).toBe(400);
    const patch = await call('PATCH', '/api/2.0/permissions/authorization/tokens', {
      body: { access_control_list: [{ user_name: 'jane@contoso.com', permission_level: 'CAN_USE' }] },
    });
    expect(patch.json().access_control_list).toHaveLength(3);
  });

  it('instance pools: create, get (F11 shape), list, edit, states and delete', async () => {
    expect((await call('GET', '/api/2.0/instance-pools/list')).text).toBe('{}');
    const spec = {
      instance_pool_name: 'adf-jit-j-7', node_type_id: 'Standard_DS3_v2', min_idle_instances: 0, max_capacity: 10,
      idle_instance_autotermination_minutes: 10, custom_tags: { 'chatops-expires': '2026-11-23T05:00:00Z', 'chatops-request': 'j-7' },
      azure_attributes: { availability: 'ON_DEMAND_AZURE', spot_bid_max_price: -1 }, preloaded_spark_versions: ['15.4.x-scala2.12'],
    };
    const created = (await call('POST', '/api/2.0/instance-pools/create', { body: spec })).json();
    expect(created.instance_pool_id).toMatch(/^\d{4}-\d{6}-pool-[0-9a-f]{8}$/);
    const id = created.instance_pool_id as string;

    const dup = await call('POST', '/api/2.0/instance-pools/create', { body: spec });
    expect(dup.status).toBe(400);
    expect(dup.json()).toEqual({ error_code: 'INVALID_PARAMETER_VALUE', message: 'Instance pool with name adf-jit-j-7 already exists.' });
    expect((await call('POST', '/api/2.0/instance-pools/create', { token: janePat, body: { ...spec, instance_pool_name: 'x' } })).status).toBe(403);

    const got = (await call('GET', `/api/2.0/instance-pools/get?instance_pool_id=${id}`)).json();
    expect(got).toMatchObject({
      ...spec, instance_pool_id: id, state: 'ACTIVE', enable_elastic_disk: true, status: {},
      default_tags: { Vendor: 'Databricks', InstancePoolCreator: '9007199254740993', InstancePoolName: 'adf-jit-j-7', InstancePoolId: id },
      stats: { used_count: 0, idle_count: 0, pending_used_count: 0, pending_idle_count: 0 },
    });

    const edited = await call('POST', '/api/2.0/instance-pools/edit', { body: { instance_pool_id: id, instance_pool_name: 'adf-jit-j-7', node_type_id: 'Standard_DS3_v2', max_capacity: 5 } });
    expect(edited.json()).toEqual({});
    const afterEdit = (await call('GET', `/api/2.0/instance-pools/get?instance_pool_id=${id}`)).json();
    expect(afterEdit.max_capacity).toBe(5);
    expect(afterEdit.custom_tags).toEqual({}); // edit replaces tags: resend them
    const badEdit = await call('POST', '/api/2.0/instance-pools/edit', { body: { instance_pool_id: id, instance_pool_name: 'adf-jit-j-7', node_type_id: 'Standard_E8s_v3' } });
    expect(badEdit.status).toBe(400);

    ws.setPoolState(id, 'STOPPED');
    expect((await call('GET', '/api/2.0/instance-pools/list')).json().instance_pools[0].state).toBe('STOPPED');

    expect((await call('POST', '/api/2.0/instance-pools/delete', { body: { instance_pool_id: id } })).json()).toEqual({});
    const gone = await call('GET', `/api/2.0/instance-pools/get?instance_pool_id=${id}`);
    expect(gone.status).toBe(404);
    expect(gone.json()).toEqual({ error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Can't find an instance pool with id: ${id}.` });
    expect(ws.pools({ includeDeleted: true }).find((p) => p.instance_pool_id === id)?.state).toBe('DELETED');
  });

  it('token permissions: a PAT whose owner lost CAN_USE indirectly (left a granted group) stops working, and works again when it returns', async () => {
    ws.addUser({ userName: 'etl-runner@contoso.com', displayName: 'ETL Runner', id: '4005002501632048' });
    const runner = ws.model.findByUserName('etl-runner@contoso.com')!;
    runner.groups.add('etl-runners');
    ws.model.addGrants([{ type: 'group', name: 'etl-runners' }]);
    const pat = ws.addToken({ ownerName: 'etl-runner@contoso.com', comment: 'runner', expiryTime: NOW + 30 * DAY_MS }).tokenValue;
    expect((await call('GET', '/api/2.0/token/list', { token: pat })).status).toBe(200);
    runner.groups.delete('etl-runners');
    const refused = await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat });
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ message: 'Invalid access token.' }); // the same answer as any refused token
    expect(ws.tokens().some((t) => t.comment === 'runner')).toBe(true); // not deleted, only unusable
    runner.groups.add('etl-runners');
    expect((await call('GET', '/api/2.0/preview/scim/v2/Me', { token: pat })).status).toBe(200);
  });

  it('answers an unknown endpoint with ENDPOINT_NOT_FOUND', async () => {
    const res = await call('GET', '/api/2.0/clusters/nope');
    expect(res.status).toBe(404);
    expect(res.json().error_code).toBe('ENDPOINT_NOT_FOUND');
  });
});
