import { AdjustableClock } from '../../src/clock.js';
import { DatabricksClient, type DatabricksClientOptions } from '../../src/providers/databricks/client.js';
import type { DatabricksEmulator, DatabricksWorkspaceHandle } from '../../src/sandbox/databricks/emulator.js';
import { startDatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';
import type { TokenValidator } from '../../src/sandbox/auth.js';

/** One emulated workspace with an admin, a user and a service principal, for the client tests. */

export const NOW = Date.UTC(2026, 10, 22, 5, 0, 0);
export const SP_APP = 'fb58f866-62b3-4e08-8f3f-c599db43ffe2';
/** Above 2^53 on purpose: a lossy parse would turn it into …992. */
export const ADMIN_ID = '9007199254740993';
export const JANE_ID = '4005002501632047';
export const SP_ID = '7405617279531127';
export const WORKSPACE_ID = '9005977231308781';

export interface TestWorkspace {
  emu: DatabricksEmulator;
  ws: DatabricksWorkspaceHandle;
  clock: AdjustableClock;
  adminPat: string;
  client(overrides?: Partial<DatabricksClientOptions>): DatabricksClient;
}

export async function startTestWorkspace(options: { tokenValidator?: TokenValidator; extraWorkspaces?: Array<{ name: string; workspaceId: string }> } = {}): Promise<TestWorkspace> {
  const clock = new AdjustableClock({ frozenAt: NOW });
  const emu = await startDatabricksEmulator({
    clock, tokenValidator: options.tokenValidator,
    workspaces: [{ name: 'ws-test', workspaceId: WORKSPACE_ID }, ...(options.extraWorkspaces ?? [])],
  });
  const ws = emu.workspace('ws-test');
  ws.addUser({ userName: 'admin@contoso.com', displayName: 'Admin', admin: true, id: ADMIN_ID });
  ws.addUser({ userName: 'jane@contoso.com', displayName: 'Jane', id: JANE_ID });
  ws.addUser({ userName: 'old@contoso.com', displayName: 'Old', id: '202480738464078', active: false });
  ws.addServicePrincipal({ applicationId: SP_APP, displayName: 'adf-sp', id: SP_ID });
  const adminPat = ws.addToken({ ownerName: 'admin@contoso.com', comment: 'admin', expiryTime: -1 }).tokenValue;
  ws.setTokenPermissions([{ type: 'user', name: 'jane@contoso.com' }]);
  return {
    emu, ws, clock, adminPat,
    client: (overrides = {}) => new DatabricksClient({
      host: ws.url, auth: { pat: adminPat }, timeoutMs: 5_000, clock,
      retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, ...overrides,
    }),
  };
}
