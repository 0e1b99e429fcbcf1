import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { DatabricksClient } from '../../src/providers/databricks/client.js';
import type { DatabricksEmulator, DatabricksWorkspaceHandle } from '../../src/sandbox/databricks/emulator.js';
import { startDatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';

// Scoped PATs on the wire (reference/apis-turn2.md §1): create / on-behalf-of take `scopes`, TokenInfo reports them only on
// scoped tokens, auto-scoping's RUNNING state leaves them undecided, and the Token API needs the `authentication` scope.

const NOW = Date.UTC(2026, 10, 22, 5, 0, 0);
const SP_APP = 'fb58f866-62b3-4e08-8f3f-c599db43ffe2';

let emu: DatabricksEmulator;
let ws: DatabricksWorkspaceHandle;
let admin: DatabricksClient;

beforeAll(async () => {
  const clock = new AdjustableClock({ frozenAt: NOW });
  emu = await startDatabricksEmulator({ clock, workspaces: [{ name: 'ws-a', workspaceId: '2290583947562031' }] });
  ws = emu.workspace('ws-a');
  ws.addUser({ userName: 'admin@contoso.com', displayName: 'Admin', admin: true });
  ws.addServicePrincipal({ applicationId: SP_APP, displayName: 'adf-sp' });
  ws.setTokenPermissions([{ type: 'service-principal', name: SP_APP }]);
  const pat = ws.addToken({ ownerName: 'admin@contoso.com', comment: 'admin', expiryTime: -1 }).tokenValue;
  admin = new DatabricksClient({ host: ws.url, auth: { pat }, clock, retry: { maxAttempts: 1 } });
});
afterAll(async () => emu?.close());

describe('scoped PATs', () => {
  it('on-behalf-of create keeps the scopes; token-management reports them; an all-APIs token has none', async () => {
    const scoped = await admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: DAY_MS / 1000, comment: 'scoped', scopes: ['sql', 'jobs:read'] });
    expect(scoped.tokenInfo.scopes).toEqual(['sql', 'jobs:read']);
    const open = await admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: DAY_MS / 1000, comment: 'open' });
    expect(open.tokenInfo.scopes).toBeUndefined();
    const listed = await admin.listTokens();
    expect(listed.find((t) => t.tokenId === scoped.tokenInfo.tokenId)).toMatchObject({ scopes: ['sql', 'jobs:read'] });
    expect(listed.find((t) => t.tokenId === open.tokenInfo.tokenId)?.scopes).toBeUndefined();
    expect(ws.tokens().find((t) => t.tokenId === scoped.tokenInfo.tokenId)?.scopes).toEqual(['sql', 'jobs:read']);
  });

  it('auto-scoping still running leaves the scopes unreadable, with the reason', async () => {
    const t = ws.addToken({ ownerName: SP_APP, comment: 'autoscoped', expiryTime: NOW + DAY_MS, autoscopeState: 'AUTOSCOPE_STATE_RUNNING' });
    expect(await admin.getToken(t.tokenId)).toMatchObject({ scopesUnreadable: 'auto-scoping is still inferring them' });
  });

  it('refuses scopes that are not a list of scope names', async () => {
    await expect(admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 3600, comment: 'bad', scopes: ['SQL everything'] }))
      .rejects.toMatchObject({ statusCode: 400, code: 'INVALID_PARAMETER_VALUE' });
  });

  it('a token without the authentication scope cannot use the Token API; with authentication:read it can list', async () => {
    const sqlOnly = await admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 3600, comment: 'sql only', scopes: ['sql'] });
    await expect(admin.withToken(sqlOnly.tokenValue).listOwnTokens()).rejects.toMatchObject({ statusCode: 403, code: 'PERMISSION_DENIED' });
    const reader = await admin.createOboToken({ applicationId: SP_APP, lifetimeSeconds: 3600, comment: 'reader', scopes: ['sql', 'authentication:read'] });
    const own = await admin.withToken(reader.tokenValue).listOwnTokens();
    expect(own.find((t) => t.tokenId === reader.tokenInfo.tokenId)?.scopes).toEqual(['sql', 'authentication:read']);
    await expect(admin.withToken(reader.tokenValue).createToken({ lifetimeSeconds: 3600, comment: 'nope' })).rejects.toMatchObject({ statusCode: 403 });
  });
});
