import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import type { DatabricksEmulator, DatabricksWorkspaceHandle } from '../../src/sandbox/databricks/emulator.js';
import { startDatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';

// Token permissions and workspace-conf as apis-turn2 §2 describes them: PUT replaces, PATCH merges; a direct grant lost
// deletes that principal's tokens; a loss through a group leaves them refused until access returns; lifetimes above
// maxTokenLifetimeDays are refused for new tokens only. Raw fetch: the bytes a real client sees.

const NOW = Date.UTC(2026, 10, 22, 5, 0, 0);
const SP_APP = 'fb58f866-62b3-4e08-8f3f-c599db43ffe2';

let emu: DatabricksEmulator;
let ws: DatabricksWorkspaceHandle;
let adminPat: string;

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(ws.url + path, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire bodies are inspected field by field
  return { status: res.status, text, json: () => JSON.parse(text) as Record<string, any> };
}

beforeAll(async () => {
  const clock = new AdjustableClock({ frozenAt: NOW });
  emu = await startDatabricksEmulator({ clock, workspaces: [{ name: 'ws-a', workspaceId: '9005977231308781' }] });
  ws = emu.workspace('ws-a');
  ws.addUser({ userName: 'admin@contoso.com', displayName: 'Admin', admin: true });
  ws.addUser({ userName: 'jane@contoso.com', displayName: 'Jane' });
  ws.addUser({ userName: 'dev@contoso.com', displayName: 'Dev' });
  ws.addServicePrincipal({ applicationId: SP_APP, displayName: 'adf-sp' });
  ws.setGroupMember('dev@contoso.com', 'data-eng', true);
  adminPat = ws.addToken({ ownerName: 'admin@contoso.com', comment: 'admin', expiryTime: -1 }).tokenValue;
  ws.setTokenPermissions([{ type: 'user', name: 'jane@contoso.com' }, { type: 'group', name: 'data-eng' }, { type: 'service-principal', name: SP_APP }]);
});

afterAll(async () => {
  await emu?.close();
});

describe('Databricks emulator: who may use tokens', () => {
  it('PATCH merges grants; PUT replaces them; GET shows admins CAN_MANAGE and each CAN_USE', async () => {
    const patched = await call('PATCH', '/api/2.0/permissions/authorization/tokens', adminPat, { access_control_list: [{ group_name: 'users', permission_level: 'CAN_USE' }] });
    expect(patched.status).toBe(200);
    expect(patched.json().access_control_list.map((e: Record<string, unknown>) => e.group_name ?? e.user_name ?? e.service_principal_name))
      .toEqual(['admins', 'jane@contoso.com', 'data-eng', SP_APP, 'users']);
    const put = await call('PUT', '/api/2.0/permissions/authorization/tokens', adminPat, { access_control_list: [
      { user_name: 'jane@contoso.com', permission_level: 'CAN_USE' }, { group_name: 'data-eng', permission_level: 'CAN_USE' }, { service_principal_name: SP_APP, permission_level: 'CAN_USE' },
    ] });
    expect(put.status).toBe(200);
    expect(put.json().access_control_list).toHaveLength(4);
  });

  it('a direct grant lost deletes the tokens at once; a group grant lost refuses them until access returns', async () => {
    const jane = ws.addToken({ ownerName: 'jane@contoso.com', comment: 'jane', expiryTime: NOW + 30 * DAY_MS });
    const dev = ws.addToken({ ownerName: 'dev@contoso.com', comment: 'dev', expiryTime: NOW + 30 * DAY_MS });
    expect((await call('GET', '/api/2.0/token/list', jane.tokenValue)).status).toBe(200);
    expect((await call('GET', '/api/2.0/token/list', dev.tokenValue)).status).toBe(200);

    const put = await call('PUT', '/api/2.0/permissions/authorization/tokens', adminPat, { access_control_list: [{ service_principal_name: SP_APP, permission_level: 'CAN_USE' }] });
    expect(put.status).toBe(200);
    // Jane's own grant went: her token is gone for good.
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === jane.tokenId)).toMatchObject({ revoked: true, revokedReason: 'lost CAN_USE on tokens' });
    expect((await call('GET', `/api/2.0/token-management/tokens/${jane.tokenId}`, adminPat)).status).toBe(404);
    const refused = await call('GET', '/api/2.0/token/list', jane.tokenValue);
    expect(refused.status).toBe(403);
    // Dev had it through data-eng: the token stays listed but authenticates nobody.
    expect((await call('GET', `/api/2.0/token-management/tokens/${dev.tokenId}`, adminPat)).status).toBe(200);
    const devRefused = await call('GET', '/api/2.0/token/list', dev.tokenValue);
    expect(devRefused.status).toBe(403);
    expect(devRefused.json()).toMatchObject({ message: 'Invalid access token.' });
    expect((await call('POST', '/api/2.0/token/create', dev.tokenValue, { lifetime_seconds: 3600 })).status).toBe(403);

    // Access returns (through another group): the same token works again.
    ws.setGroupMember('dev@contoso.com', 'analysts', true);
    await call('PATCH', '/api/2.0/permissions/authorization/tokens', adminPat, { access_control_list: [{ group_name: 'analysts', permission_level: 'CAN_USE' }] });
    expect((await call('GET', '/api/2.0/token/list', dev.tokenValue)).status).toBe(200);
    // Removed from the granted group: refused again, still not deleted.
    ws.setGroupMember('dev@contoso.com', 'analysts', false);
    expect((await call('GET', '/api/2.0/token/list', dev.tokenValue)).status).toBe(403);
    expect(ws.tokens().some((t) => t.tokenId === dev.tokenId)).toBe(true);
  });

  it('creating a token needs CAN_USE', async () => {
    const obo = await call('POST', '/api/2.0/token-management/on-behalf-of/tokens', adminPat, { application_id: SP_APP, lifetime_seconds: 3600 });
    expect(obo.status).toBe(200);
    await call('PUT', '/api/2.0/permissions/authorization/tokens', adminPat, { access_control_list: [] });
    const refused = await call('POST', '/api/2.0/token-management/on-behalf-of/tokens', adminPat, { application_id: SP_APP, lifetime_seconds: 3600 });
    expect(refused.status).toBe(403);
    expect(refused.json().message).toMatch(/On-behalf-of token creation for service principals is not enabled/);
  });

  it('workspace-conf: string values, "" refused, maxTokenLifetimeDays refuses longer new tokens and leaves existing ones', async () => {
    const long = ws.addToken({ ownerName: 'admin@contoso.com', comment: 'long', expiryTime: NOW + 400 * DAY_MS });
    expect((await call('PATCH', '/api/2.0/workspace-conf', adminPat, { maxTokenLifetimeDays: '' })).status).toBe(400);
    expect((await call('PATCH', '/api/2.0/workspace-conf', adminPat, { maxTokenLifetimeDays: 90 })).status).toBe(400);
    expect((await call('PATCH', '/api/2.0/workspace-conf', adminPat, { maxTokenLifetimeDays: '90' })).status).toBe(204);
    expect((await call('GET', '/api/2.0/workspace-conf?keys=maxTokenLifetimeDays', adminPat)).json()).toEqual({ maxTokenLifetimeDays: '90' });
    const tooLong = await call('POST', '/api/2.0/token/create', adminPat, { lifetime_seconds: 91 * 86_400 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json()).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
    expect((await call('POST', '/api/2.0/token/create', adminPat, { lifetime_seconds: 90 * 86_400 })).status).toBe(200);
    // Existing tokens are not touched by the limit.
    expect((await call('GET', '/api/2.0/token/list', long.tokenValue)).status).toBe(200);
    expect((await call('PATCH', '/api/2.0/workspace-conf', adminPat, { maxTokenLifetimeDays: '0' })).status).toBe(204);
    expect((await call('POST', '/api/2.0/token/create', adminPat, { lifetime_seconds: 400 * 86_400 })).status).toBe(200);
  });
});
