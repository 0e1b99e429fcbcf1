import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DatabricksClient, DatabricksError } from '../../src/providers/databricks/client.js';
import { parseErrorBody } from '../../src/providers/databricks/errors.js';
import { parseJsonLossless } from '../../src/providers/databricks/json.js';
import { EmulatorServer, type EmulatorResponse } from '../../src/sandbox/emulator.js';

// The client against the literal fixtures of reference/databricks-api.md §13, served byte for byte by a
// protocol-edge server that also records exactly what the client sent.

type Fixture = { status: number; text: string; headers?: Record<string, string> };
const json = (status: number, text: string, headers: Record<string, string> = {}): Fixture => ({ status, text, headers: { 'content-type': 'application/json', ...headers } });

const F1 = `{"token_value":"dapi0123456789abcdef0123456789abcdef-3",
 "token_info":{"token_id":"5684c955822ac792a51ae2aeb80190f13457bab3e2e2934c133a08b38454816c",
               "creation_time":1779214116316,"expiry_time":1786990116316,"comment":"chatops-rot:r-42"}}`;
const F2 = `{"token_infos":[{"token_id":"5684c955822ac792a51ae2aeb80190f13457bab3e2e2934c133a08b38454816c",
   "creation_time":1779214116316,"expiry_time":1786990116316,"comment":"chatops-rot:r-42","last_accessed_time":1779300000000},
  {"token_id":"a103958085a89029d2a6067afcc5188c8fb8845ba1e138600bf8a182b6b3c25b",
   "creation_time":1707961870431,"expiry_time":-1,"comment":"legacy"}]}`;
const F4 = `{"token_infos":[
  {"token_id":"5684c955822ac792a51ae2aeb80190f13457bab3e2e2934c133a08b38454816c","creation_time":1580265020299,
   "expiry_time":1588041020299,"comment":"This is for the ABC department automation scripts.",
   "created_by_id":202480738464078,"created_by_username":"jsmith@example.com","owner_id":202480738464078,
   "workspace_id":5750939285643220,"last_used_day":1710374400000},
  {"token_id":"b1f0c3e2d4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f809","creation_time":1700000000000,
   "expiry_time":-1,"comment":"adf-pipeline (OBO)","created_by_id":202480738464078,
   "created_by_username":"admin@contoso.com","owner_id":4005002501632047,"workspace_id":5750939285643220},
  {"token_id":"c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00","creation_time":1650000000000,
   "expiry_time":-1,"comment":"big-id owner","created_by_id":9007199254740993,"created_by_username":"old@contoso.com",
   "owner_id":9007199254740993,"workspace_id":9005977231308781}]}`;
const F7 = `{"token_value":"dapicbd47dac9bba881f2f00727e8ab5b5cc",
 "token_info":{"token_id":"9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9","creation_time":1779214116316,
   "expiry_time":1779217716316,"comment":"chatops-jit:j-7","created_by_id":202480738464078,
   "created_by_username":"admin@contoso.com","owner_id":4005002501632047,"workspace_id":5750939285643220}}`;
const F8 = `{"object_id":"authorization/tokens","object_type":"tokens","access_control_list":[
  {"group_name":"admins","all_permissions":[{"permission_level":"CAN_MANAGE","inherited":false}]},
  {"group_name":"users","all_permissions":[{"permission_level":"CAN_USE","inherited":false}]},
  {"service_principal_name":"fb58f866-62b3-4e08-8f3f-c599db43ffe2","display_name":"adf-sp",
   "all_permissions":[{"permission_level":"CAN_USE","inherited":false}]}]}`;
const F11 = `{"instance_pool_id":"1122-050000-pool-a1b2c3d4","instance_pool_name":"adf-jit-j-7","node_type_id":"Standard_DS3_v2",
 "min_idle_instances":0,"max_capacity":10,"idle_instance_autotermination_minutes":10,
 "custom_tags":{"chatops-expires":"2026-11-23T05:00:00Z","chatops-request":"j-7"},
 "default_tags":{"Vendor":"Databricks","InstancePoolCreator":"202480738464078","InstancePoolName":"adf-jit-j-7",
                 "InstancePoolId":"1122-050000-pool-a1b2c3d4"},
 "azure_attributes":{"availability":"ON_DEMAND_AZURE","spot_bid_max_price":-1},
 "preloaded_spark_versions":["15.4.x-scala2.12"],"enable_elastic_disk":true,"state":"ACTIVE",
 "stats":{"used_count":0,"idle_count":0,"pending_used_count":0,"pending_idle_count":0},"status":{}}`;
const F15 = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":2,"startIndex":1,"itemsPerPage":2,
 "Resources":[{"id":"4005002501632047","applicationId":"fb58f866-62b3-4e08-8f3f-c599db43ffe2","displayName":"adf-sp","active":true},
              {"id":"123456789","applicationId":"11111111-0000-0000-0000-111111111111","displayName":"old-sp","active":false}]}`;
const F15b = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":2,"startIndex":3,"itemsPerPage":0,"Resources":[]}';
const F17e = '{"error_code":403,"message":"This API is disabled for users without the databricks-sql-access or workspace-access entitlements. Contact your administrator for more information."}';
const F18 = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"User not found.","status":"404"}';
const HTML_403 = '<html><head><title>Error 403 Invalid access token.</title></head><body><h2>HTTP ERROR 403</h2>\n<p>Problem accessing /api/2.0/token/list. Reason:<pre>    Invalid access token.</pre></p></body></html>';

let routes: Record<string, Fixture | ((q: URLSearchParams) => Fixture)> = {};
const sent: Array<{ method: string; path: string; query: string; body: string; auth?: string }> = [];
let server: EmulatorServer;
let client: DatabricksClient;

beforeAll(async () => {
  server = new EmulatorServer({
    name: 'databricks-fixtures',
    handler: (req): EmulatorResponse => {
      sent.push({ method: req.method, path: req.path, query: req.url.search, body: req.bodyText, auth: req.headers.authorization });
      const route = routes[`${req.method} ${req.path}`];
      const f = typeof route === 'function' ? route(req.url.searchParams) : route;
      if (!f) return { status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND', message: 'no fixture' } };
      return { status: f.status, headers: { 'x-request-id': 'req-fixture-1', ...f.headers }, body: f.text };
    },
  });
  const url = await server.listen();
  client = new DatabricksClient({ host: url, auth: { pat: 'dapi0123456789abcdef0123456789abcdef' }, timeoutMs: 5_000, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  routes = {};
  sent.length = 0;
});

async function rejection(p: Promise<unknown>): Promise<DatabricksError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DatabricksError);
  return err as DatabricksError;
}

describe('lossless JSON', () => {
  it('keeps ids above 2^53 exact and leaves strings, floats and small numbers alone', () => {
    const v = parseJsonLossless('{"a":9007199254740993,"b":"9007199254740993 in text \\" 12345678901234567","c":-1,"d":1.5e300,"e":[7405617279531127]}') as Record<string, unknown>;
    expect(v).toEqual({ a: '9007199254740993', b: '9007199254740993 in text " 12345678901234567', c: -1, d: 1.5e300, e: ['7405617279531127'] });
    expect(JSON.parse('9007199254740993')).not.toBe(9007199254740993n.toString()); // why this module exists
  });
});

describe('DatabricksClient against the reference fixtures', () => {
  it('F1 / F2 / F2b: token create sends the exact body; list maps both infos; {} is an empty list', async () => {
    routes['POST /api/2.0/token/create'] = json(200, F1);
    const created = await client.createToken({ lifetimeSeconds: 7776000, comment: 'chatops-rot:r-42' });
    expect(JSON.parse(sent[0]!.body)).toEqual({ lifetime_seconds: 7776000, comment: 'chatops-rot:r-42' });
    expect(sent[0]!.auth).toBe('Bearer dapi0123456789abcdef0123456789abcdef');
    expect(created).toEqual({
      tokenValue: 'dapi0123456789abcdef0123456789abcdef-3',
      tokenInfo: { tokenId: '5684c955822ac792a51ae2aeb80190f13457bab3e2e2934c133a08b38454816c', creationTime: 1779214116316, expiryTime: 1786990116316, comment: 'chatops-rot:r-42', lastAccessedTime: undefined },
    });
    routes['GET /api/2.0/token/list'] = json(200, F2);
    const list = await client.listOwnTokens();
    expect(list[0]?.lastAccessedTime).toBe(1779300000000);
    expect(list[1]).toMatchObject({ comment: 'legacy', expiryTime: -1 });
    routes['GET /api/2.0/token/list'] = json(200, '{}');
    expect(await client.listOwnTokens()).toEqual([]);
  });

  it('F4: ids round-trip losslessly (9005977231308781, 9007199254740993) and the creator filter is sent', async () => {
    routes['GET /api/2.0/token-management/tokens'] = json(200, F4);
    const tokens = await client.listTokens({ createdByUsername: 'jsmith@example.com' });
    expect(new URLSearchParams(sent[0]!.query).get('created_by_username')).toBe('jsmith@example.com');
    expect(tokens.map((t) => [t.ownerId, t.createdById, t.workspaceId])).toEqual([
      ['202480738464078', '202480738464078', '5750939285643220'],
      ['4005002501632047', '202480738464078', '5750939285643220'],
      ['9007199254740993', '9007199254740993', '9005977231308781'],
    ]);
    expect(tokens[0]!.lastUsedDay).toBe(1710374400000);
    expect(tokens[1]!.lastUsedDay).toBeUndefined();
    await client.listTokens({ createdById: '9007199254740993' });
    expect(new URLSearchParams(sent[1]!.query).get('created_by_id')).toBe('9007199254740993');
  });

  it('F5e / F6: a missing token is undefined on get and false on delete', async () => {
    routes['GET /api/2.0/token-management/tokens/abc'] = json(404, '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Token with id abc does not exist."}');
    routes['DELETE /api/2.0/token-management/tokens/abc'] = json(404, '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Token with id abc does not exist."}');
    expect(await client.getToken('abc')).toBeUndefined();
    expect(await client.deleteToken('abc')).toBe(false);
    // Older platforms answered 400 with the same code: still "gone".
    routes['POST /api/2.0/token/delete'] = json(400, '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Token with id deadbeef does not exist."}');
    expect(await client.deleteOwnToken('deadbeef')).toBe(false);
    expect(JSON.parse(sent.at(-1)!.body)).toEqual({ token_id: 'deadbeef' });
  });

  it('F7 / F7e1–4: OBO sends application_id, lifetime_seconds and comment; errors keep their codes', async () => {
    routes['POST /api/2.0/token-management/on-behalf-of/tokens'] = json(200, F7);
    const obo = await client.createOboToken({ applicationId: 'fb58f866-62b3-4e08-8f3f-c599db43ffe2', lifetimeSeconds: 3600, comment: 'chatops-jit:j-7' });
    expect(JSON.parse(sent[0]!.body)).toEqual({ application_id: 'fb58f866-62b3-4e08-8f3f-c599db43ffe2', lifetime_seconds: 3600, comment: 'chatops-jit:j-7' });
    expect(obo.tokenInfo).toMatchObject({ ownerId: '4005002501632047', createdById: '202480738464078', expiryTime: 1779217716316 });
    const cases: Array<[number, string, string]> = [
      [403, 'PERMISSION_DENIED', '{"error_code":"PERMISSION_DENIED","message":"On-behalf-of token creation for service principals is not enabled for this workspace"}'],
      [404, 'RESOURCE_DOES_NOT_EXIST', '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Service principal with application id 00000000-0000-0000-0000-000000000000 does not exist."}'],
      [400, 'QUOTA_EXCEEDED', '{"error_code":"QUOTA_EXCEEDED","message":"Token quota exceeded."}'],
      [400, 'INVALID_PARAMETER_VALUE', '{"error_code":"INVALID_PARAMETER_VALUE","message":"Token lifetime exceeds the maximum lifetime of 90 days."}'],
    ];
    for (const [status, code, body] of cases) {
      routes['POST /api/2.0/token-management/on-behalf-of/tokens'] = json(status, body);
      const err = await rejection(client.createOboToken({ applicationId: 'x', lifetimeSeconds: 1, comment: 'x' }));
      expect(err).toMatchObject({ code, statusCode: status, requestId: 'req-fixture-1' });
      expect(err.serverMessage).toBe(JSON.parse(body).message);
    }
  });

  it('F8 / F8e: token permissions, and the fresh-workspace 404 means "no object yet"', async () => {
    routes['GET /api/2.0/permissions/authorization/tokens'] = json(200, F8);
    const perms = await client.getTokenPermissions();
    expect(perms.entries.map((e) => [e.type, e.principal, e.levels[0]?.level])).toEqual([
      ['group', 'admins', 'CAN_MANAGE'], ['group', 'users', 'CAN_USE'], ['service-principal', 'fb58f866-62b3-4e08-8f3f-c599db43ffe2', 'CAN_USE'],
    ]);
    routes['GET /api/2.0/permissions/authorization/tokens'] = json(404, '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"tokens tokens does not exist"}');
    expect(await client.getTokenPermissions()).toEqual({ exists: false, entries: [] });
    routes['PATCH /api/2.0/permissions/authorization/tokens'] = json(200, F8);
    await client.grantTokenUse([{ type: 'service-principal', principal: 'fb58f866-62b3-4e08-8f3f-c599db43ffe2' }, { type: 'group', principal: 'users' }]);
    expect(JSON.parse(sent.at(-1)!.body)).toEqual({ access_control_list: [
      { service_principal_name: 'fb58f866-62b3-4e08-8f3f-c599db43ffe2', permission_level: 'CAN_USE' },
      { group_name: 'users', permission_level: 'CAN_USE' },
    ] });
  });

  it('F9: workspace-conf asks for the keys in the query and keeps string values', async () => {
    routes['GET /api/2.0/workspace-conf'] = json(200, '{"enableTokensConfig":"true","maxTokenLifetimeDays":"90"}');
    expect(await client.getWorkspaceConf(['enableTokensConfig', 'maxTokenLifetimeDays'])).toEqual({ enableTokensConfig: 'true', maxTokenLifetimeDays: '90' });
    expect(new URLSearchParams(sent[0]!.query).get('keys')).toBe('enableTokensConfig,maxTokenLifetimeDays');
  });

  it('F10–F14: pool create/get/edit/delete bodies and shapes', async () => {
    routes['POST /api/2.0/instance-pools/create'] = json(200, '{"instance_pool_id":"1122-050000-pool-a1b2c3d4"}');
    routes['GET /api/2.0/instance-pools/get'] = json(200, F11);
    routes['POST /api/2.0/instance-pools/edit'] = json(200, '{}');
    routes['POST /api/2.0/instance-pools/delete'] = json(200, '{}');
    routes['GET /api/2.0/instance-pools/list'] = json(200, '{}');
    const { instancePoolId } = await client.createInstancePool({
      name: 'adf-jit-j-7', nodeTypeId: 'Standard_DS3_v2', minIdleInstances: 0, maxCapacity: 10, idleInstanceAutoterminationMinutes: 10,
      customTags: { 'chatops-expires': '2026-11-23T05:00:00Z', 'chatops-request': 'j-7' },
      azureAttributes: { availability: 'ON_DEMAND_AZURE', spotBidMaxPrice: -1 }, preloadedSparkVersions: ['15.4.x-scala2.12'],
    });
    expect(JSON.parse(sent[0]!.body)).toEqual({
      instance_pool_name: 'adf-jit-j-7', node_type_id: 'Standard_DS3_v2', min_idle_instances: 0, max_capacity: 10,
      idle_instance_autotermination_minutes: 10, custom_tags: { 'chatops-expires': '2026-11-23T05:00:00Z', 'chatops-request': 'j-7' },
      azure_attributes: { availability: 'ON_DEMAND_AZURE', spot_bid_max_price: -1 }, preloaded_spark_versions: ['15.4.x-scala2.12'],
    });
    const pool = await client.getInstancePool(instancePoolId);
    expect(new URLSearchParams(sent[1]!.query).get('instance_pool_id')).toBe('1122-050000-pool-a1b2c3d4');
    expect(pool).toMatchObject({ instancePoolId, name: 'adf-jit-j-7', state: 'ACTIVE', stats: { usedCount: 0, idleCount: 0 }, defaultTags: { InstancePoolCreator: '202480738464078' } });
    await client.editInstancePool({ instancePoolId, name: 'adf-jit-j-7', nodeTypeId: 'Standard_DS3_v2', maxCapacity: 5 });
    expect(JSON.parse(sent[2]!.body)).toEqual({ instance_pool_id: instancePoolId, instance_pool_name: 'adf-jit-j-7', node_type_id: 'Standard_DS3_v2', max_capacity: 5 });
    expect(await client.deleteInstancePool(instancePoolId)).toBe(true);
    expect(JSON.parse(sent[3]!.body)).toEqual({ instance_pool_id: instancePoolId });
    expect(await client.listInstancePools()).toEqual([]);
    routes['GET /api/2.0/instance-pools/get'] = json(404, '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Can\'t find an instance pool with id: 1122-050000-pool-zzzz."}');
    expect(await client.getInstancePool('1122-050000-pool-zzzz')).toBeUndefined();
  });

  it('F15 / F15b: SCIM paging advances startIndex by the page length until an empty page', async () => {
    routes['GET /api/2.0/preview/scim/v2/ServicePrincipals'] = (q) => json(200, q.get('startIndex') === '1' ? F15 : F15b);
    const sps = await client.listServicePrincipals({ attributes: 'id,applicationId,displayName,active', pageSize: 100 });
    expect(sps).toEqual([
      { id: '4005002501632047', applicationId: 'fb58f866-62b3-4e08-8f3f-c599db43ffe2', displayName: 'adf-sp', active: true },
      { id: '123456789', applicationId: '11111111-0000-0000-0000-111111111111', displayName: 'old-sp', active: false },
    ]);
    expect(sent.map((s) => Object.fromEntries(new URLSearchParams(s.query)))).toEqual([
      { attributes: 'id,applicationId,displayName,active', startIndex: '1', count: '100' },
      { attributes: 'id,applicationId,displayName,active', startIndex: '3', count: '100' },
    ]);
  });

  it('refuses to loop forever when a server ignores startIndex (the JS SDK bug, G15)', async () => {
    routes['GET /api/2.0/preview/scim/v2/ServicePrincipals'] = () => json(200, F15);
    const err = await rejection(client.listServicePrincipals());
    expect(err.code).toBe('UNEXPECTED_RESPONSE');
    expect(sent).toHaveLength(2);
  });

  it('F17 / F17e / F18: Me, the numeric 403 and the SCIM error object', async () => {
    routes['GET /api/2.0/preview/scim/v2/Me'] = json(200, '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"4005002501632047","userName":"fb58f866-62b3-4e08-8f3f-c599db43ffe2","displayName":"adf-sp","active":true,"entitlements":[{"value":"workspace-access"}],"groups":[{"display":"admins","type":"direct","value":"111","$ref":"Groups/111"}]}');
    expect(await client.me()).toEqual({ id: '4005002501632047', userName: 'fb58f866-62b3-4e08-8f3f-c599db43ffe2', displayName: 'adf-sp', active: true, groups: ['admins'], entitlements: ['workspace-access'], isAdmin: true });
    routes['GET /api/2.0/preview/scim/v2/Me'] = json(403, F17e);
    expect(await rejection(client.me())).toMatchObject({ code: 'HTTP_403', statusCode: 403, serverMessage: JSON.parse(F17e).message });
    routes['GET /api/2.0/preview/scim/v2/Users'] = json(404, F18);
    expect(await rejection(client.listUsers())).toMatchObject({ code: 'SCIM_404', statusCode: 404, serverMessage: 'User not found.' });
    routes['GET /api/2.0/preview/scim/v2/Users'] = json(400, '{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"scimType":"Invalid JSON provided in request body.","detail":"Request is unparsable, syntactically incorrect, or violates schema.","status":"400"}');
    expect(await rejection(client.listUsers())).toMatchObject({ code: 'SCIM_400', serverMessage: 'Request is unparsable, syntactically incorrect, or violates schema. — Invalid JSON provided in request body.' });
  });

  it('F21: 401 and the HTML 403 page; F23: a login redirect is not followed', async () => {
    routes['GET /api/2.0/token/list'] = json(401, '{"error_code":401,"message":"Credential was not sent or was of an unsupported type for this API."}');
    const unauth = await rejection(client.listOwnTokens());
    expect(unauth).toMatchObject({ code: 'HTTP_401', statusCode: 401 });
    expect(unauth.message).toMatch(/token_id is not its value/);
    routes['GET /api/2.0/token/list'] = { status: 403, text: HTML_403, headers: { 'content-type': 'text/html;charset=iso-8859-1' } };
    expect(await rejection(client.listOwnTokens())).toMatchObject({ code: 'HTTP_403', statusCode: 403, serverMessage: 'Invalid access token.' });
    routes['POST /api/2.0/token/create'] = { status: 302, text: '', headers: { location: '/login?next_url=/api/2.0/token/create' } };
    const redirect = await rejection(client.createToken({ lifetimeSeconds: 60, comment: 'x' }));
    expect(redirect).toMatchObject({ code: 'HTTP_302', statusCode: 302 });
    expect(redirect.message).toContain('not the accounts host');
    routes['GET /api/2.0/token/list'] = { status: 200, text: '<html><body>Sign in</body></html>', headers: { 'content-type': 'text/html' } };
    expect(await rejection(client.listOwnTokens())).toMatchObject({ code: 'UNEXPECTED_RESPONSE', statusCode: 200 });
  });

  it('F22: Retry-After is read from the header; RetryInfo and plain-text error forms parse too', async () => {
    routes['GET /api/2.0/token/list'] = json(429, '{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"GetUserPermissionsRequest RPC token bucket limit has been exceeded."}', { 'retry-after': '120' });
    const err = await rejection(client.listOwnTokens());
    // 120 s exceeds maxRetryAfterMs (60 s): fail fast with the hint instead of stalling a scan.
    expect(err).toMatchObject({ code: 'REQUEST_LIMIT_EXCEEDED', statusCode: 429, retryAfterMs: 120_000 });
    expect(sent).toHaveLength(1);
    expect(parseErrorBody(429, 'application/json', '{"error_code":"RESOURCE_EXHAUSTED","message":"slow down","details":[{"@type":"type.googleapis.com/google.rpc.RequestInfo","request_id":"r-9","serving_data":""},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retry_delay":"2s"}]}'))
      .toEqual({ code: 'RESOURCE_EXHAUSTED', message: 'slow down', requestId: 'r-9', retryAfterMs: 2000 });
    expect(parseErrorBody(400, 'text/plain', 'INVALID_STATE: Workspace is being deleted')).toEqual({ code: 'INVALID_STATE', message: 'Workspace is being deleted' });
    expect(parseErrorBody(500, 'application/json', '{"error":"Something broke"}')).toEqual({ code: 'HTTP_500', message: 'Something broke', requestId: undefined, retryAfterMs: undefined });
    expect(parseErrorBody(502, '', '')).toEqual({ code: 'HTTP_502', message: 'HTTP 502 with an empty body' });
  });
});
