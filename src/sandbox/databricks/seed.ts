import type { Clock } from '../../clock.js';
import { DAY_MS } from '../../clock.js';
import { registerSecret } from '../../logging/redact.js';
import type { DatabricksEmulator, DatabricksWorkspaceSpec } from './emulator.js';
import type { TokenGrant } from './model.js';

/** The Databricks part of the sandbox estate (docs/sandbox-estate.md): the names here are a contract. */

export const SANDBOX_WORKSPACES: DatabricksWorkspaceSpec[] = [
  { name: 'ws-prod', workspaceId: '7405617279531127' },
  { name: 'ws-dev', workspaceId: '2290583947562031' },
  { name: 'ws-analytics', workspaceId: '8816029461735542' },
];

/**
 * SCIM ids, the same in every workspace (identity federation). sp-etl's id is above 2^53 on purpose:
 * any lossy JSON parse breaks the owner join of its tokens.
 */
export const SANDBOX_SCIM_IDS = {
  'alice.admin@contoso.com': '202480738464078',
  'bob.dev@contoso.com': '5750939285643221',
  'carol.former@contoso.com': '1298374650192837',
  'sp-etl': '9007199254740993',
  'sp-reporting': '8123456789012345',
  keywarden: '3141592653589793',
} as const;

export interface DatabricksSeedOptions {
  clock: Clock;
  /** Entra application ids of the sandbox apps (the SPs' applicationId). */
  appIds: { keywarden: string; etl: string; reporting: string };
}

export interface SeededToken {
  tokenId: string;
  tokenValue: string;
  /** Epoch ms, or -1 for never. */
  expiryTime: number;
}

export interface DatabricksSeed {
  /** Keyed "<workspace>/<comment>", e.g. "ws-prod/adf-etl". */
  tokens: Record<string, SeededToken>;
}

interface TokenPlan {
  workspace: string;
  comment: string;
  owner: string;
  /** Days from now; null = never expires. */
  expiresInDays: number | null;
  createdDaysAgo: number;
  lastUsedDaysAgo: number;
  /** API scopes; omitted = an all-APIs token. */
  scopes?: string[];
}

// Creation dates keep lifetimes at ≤ 90 days and ages under 90 days unless the case is about them,
// and every token but the "unused" one was used recently, so each seeded case raises only its own finding.
const TOKENS: TokenPlan[] = [
  { workspace: 'ws-prod', comment: 'adf-etl', owner: 'sp-etl', expiresInDays: 7, createdDaysAgo: 83, lastUsedDaysAgo: 1 },
  // Scoped: SQL queries and reading job runs only; a rotation must keep exactly these scopes.
  { workspace: 'ws-prod', comment: 'reporting', owner: 'sp-reporting', expiresInDays: 30, createdDaysAgo: 60, lastUsedDaysAgo: 1, scopes: ['sql', 'jobs:read'] },
  { workspace: 'ws-prod', comment: 'bob-jdbc', owner: 'bob.dev@contoso.com', expiresInDays: 14, createdDaysAgo: 76, lastUsedDaysAgo: 1 },
  { workspace: 'ws-prod', comment: 'legacy-never', owner: 'alice.admin@contoso.com', expiresInDays: null, createdDaysAgo: 60, lastUsedDaysAgo: 2 },
  { workspace: 'ws-prod', comment: 'carol-notebook', owner: 'carol.former@contoso.com', expiresInDays: 90, createdDaysAgo: 0, lastUsedDaysAgo: 0 },
  { workspace: 'ws-prod', comment: 'stale-unused', owner: 'bob.dev@contoso.com', expiresInDays: 60, createdDaysAgo: 200, lastUsedDaysAgo: 75 },
  { workspace: 'ws-prod', comment: 'expired-etl', owner: 'sp-etl', expiresInDays: -2, createdDaysAgo: 30, lastUsedDaysAgo: 3 },
  { workspace: 'ws-dev', comment: 'dev-ci', owner: 'sp-etl', expiresInDays: 1, createdDaysAgo: 89, lastUsedDaysAgo: 1 },
  { workspace: 'ws-dev', comment: 'long-lived', owner: 'bob.dev@contoso.com', expiresInDays: 355, createdDaysAgo: 10, lastUsedDaysAgo: 1 },
  { workspace: 'ws-analytics', comment: 'analytics-sp', owner: 'sp-reporting', expiresInDays: 45, createdDaysAgo: 45, lastUsedDaysAgo: 1 },
  // A batch for "retire unused tokens" (issue 13): not rotated for 90+ days, three of them idle for weeks, one
  // (bi-export) still used daily; none expires within 45 days and none is a high finding, so no card opens for them.
  { workspace: 'ws-analytics', comment: 'old-notebook', owner: 'bob.dev@contoso.com', expiresInDays: 60, createdDaysAgo: 200, lastUsedDaysAgo: 70 },
  { workspace: 'ws-analytics', comment: 'poc-sandbox', owner: 'alice.admin@contoso.com', expiresInDays: 100, createdDaysAgo: 120, lastUsedDaysAgo: 40 },
  { workspace: 'ws-analytics', comment: 'reporting-legacy', owner: 'sp-reporting', expiresInDays: 60, createdDaysAgo: 150, lastUsedDaysAgo: 50 },
  { workspace: 'ws-analytics', comment: 'bi-export', owner: 'bob.dev@contoso.com', expiresInDays: 90, createdDaysAgo: 120, lastUsedDaysAgo: 1 },
  // Auto-rotation (README "run a rule"): a selector rule on ws-analytics PATs rotates the first (held in Key Vault, read by
  // Data Factory) and skips the second (held in Key Vault, no consumer, last used 45 days ago: revoke it instead).
  { workspace: 'ws-analytics', comment: 'analytics-nightly', owner: 'sp-reporting', expiresInDays: 12, createdDaysAgo: 78, lastUsedDaysAgo: 1 },
  { workspace: 'ws-analytics', comment: 'analytics-adhoc', owner: 'sp-reporting', expiresInDays: 12, createdDaysAgo: 78, lastUsedDaysAgo: 45 },
];

/** Seeds users, SPs, token permissions, workspace-conf and tokens; returns the token values (the Key Vault seed stores some). */
export function seedDatabricks(emulator: DatabricksEmulator, options: DatabricksSeedOptions): DatabricksSeed {
  const now = options.clock.now();
  const { appIds } = options;
  const ids = SANDBOX_SCIM_IDS;

  for (const spec of SANDBOX_WORKSPACES) {
    const ws = emulator.workspace(spec.name);
    if (ws.workspaceId !== String(spec.workspaceId)) {
      throw new Error(`seedDatabricks: workspace ${spec.name} must have workspace_id ${spec.workspaceId} (got ${ws.workspaceId}); start the emulator with SANDBOX_WORKSPACES`);
    }
    ws.addUser({ userName: 'alice.admin@contoso.com', displayName: 'Alice Admin', admin: true, id: ids['alice.admin@contoso.com'] });
    ws.addUser({ userName: 'bob.dev@contoso.com', displayName: 'Bob Dev', id: ids['bob.dev@contoso.com'] });
    ws.addUser({ userName: 'carol.former@contoso.com', displayName: 'Carol Former', active: false, id: ids['carol.former@contoso.com'] });
    ws.addServicePrincipal({ applicationId: appIds.etl, displayName: 'sp-etl', id: ids['sp-etl'] });
    ws.addServicePrincipal({ applicationId: appIds.reporting, displayName: 'sp-reporting', id: ids['sp-reporting'] });
    // Keywarden's own identity: a workspace admin, so it can use token-management and OBO.
    ws.addServicePrincipal({ applicationId: appIds.keywarden, displayName: 'keywarden', admin: true, id: ids.keywarden });
    ws.setConf({ enableTokensConfig: 'true' });
  }

  // Who may hold PATs: the token owners (SPs need CAN_USE for OBO rotation); ws-dev is open to everyone.
  const sp = (applicationId: string): TokenGrant => ({ type: 'service-principal', name: applicationId });
  const user = (name: string): TokenGrant => ({ type: 'user', name });
  emulator.workspace('ws-prod').setTokenPermissions([
    sp(appIds.etl), sp(appIds.reporting), user('bob.dev@contoso.com'), user('carol.former@contoso.com'),
  ]);
  emulator.workspace('ws-dev').setTokenPermissions([{ type: 'group', name: 'users' }]);
  emulator.workspace('ws-dev').setConf({ maxTokenLifetimeDays: '90' });
  // Bob uses tokens in ws-analytics too (old-notebook, bi-export: the retire-unused batch).
  emulator.workspace('ws-analytics').setTokenPermissions([sp(appIds.reporting), user('bob.dev@contoso.com')]);

  const tokens: Record<string, SeededToken> = {};
  for (const plan of TOKENS) {
    const ws = emulator.workspace(plan.workspace);
    const isSp = plan.owner.startsWith('sp-');
    const expiryTime = plan.expiresInDays === null ? -1 : now + plan.expiresInDays * DAY_MS;
    const created = ws.addToken({
      ownerName: plan.owner,
      comment: plan.comment,
      createdAt: now - plan.createdDaysAgo * DAY_MS,
      expiryTime,
      lastUsedDay: now - plan.lastUsedDaysAgo * DAY_MS,
      // SP tokens were minted on-behalf-of by the workspace admin.
      createdByName: isSp ? 'alice.admin@contoso.com' : undefined,
      ...(plan.scopes ? { scopes: plan.scopes } : {}),
    });
    registerSecret(created.tokenValue);
    tokens[`${plan.workspace}/${plan.comment}`] = { ...created, expiryTime };
  }
  return { tokens };
}
