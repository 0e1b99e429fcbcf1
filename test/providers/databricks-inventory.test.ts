import { ClientSecretCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { workspaceSchema } from '../../src/config/schema.js';
import type { Credential, EstateInventory } from '../../src/domain/credential.js';
import { databricksAuthFromConfig } from '../../src/providers/databricks/auth.js';
import { DatabricksClient, DatabricksError } from '../../src/providers/databricks/client.js';
import { createDatabricksInventory, type DatabricksInventorySource } from '../../src/providers/databricks/inventory.js';
import type { DatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';
import { startDatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';
import { SANDBOX_SCIM_IDS, SANDBOX_WORKSPACES, seedDatabricks, type DatabricksSeed } from '../../src/sandbox/databricks/seed.js';
import type { EntraEmulator } from '../../src/sandbox/entra/index.js';
import { startEntraEmulator } from '../../src/sandbox/entra/index.js';
import { seedEntra, type SeededEntra } from '../../src/sandbox/entra/seed.js';

// The seeded sandbox estate (docs/sandbox-estate.md) read through the product's Databricks provider,
// authenticated as keywarden-bot with @azure/identity against the emulated Entra token endpoint.

const NOW = Date.UTC(2026, 10, 22, 5, 0, 0);
const day = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

let clock: AdjustableClock;
let entra: EntraEmulator;
let entraSeed: SeededEntra;
let dbx: DatabricksEmulator;
let seed: DatabricksSeed;
const sources: Record<string, DatabricksInventorySource> = {};
const scans: Record<string, EstateInventory> = {};

function pat(scope: string, comment: string): Credential {
  const found = scans[scope]!.credentials.find((c) => c.name === comment);
  if (!found) throw new Error(`no PAT ${comment} in ${scope}`);
  return found;
}

beforeAll(async () => {
  clock = new AdjustableClock({ frozenAt: NOW });
  entra = await startEntraEmulator({ clock });
  entraSeed = seedEntra(entra, { clock });
  dbx = await startDatabricksEmulator({ clock, tokenValidator: entra.validator, workspaces: SANDBOX_WORKSPACES });
  seed = seedDatabricks(dbx, {
    clock,
    appIds: { keywarden: entraSeed.keywarden.clientId, etl: entraSeed.apps['etl-ingest']!.appId, reporting: entraSeed.apps['reporting-svc']!.appId },
  });
  const credential = new ClientSecretCredential(entraSeed.tenantId, entraSeed.keywarden.clientId, entraSeed.keywarden.clientSecret, {
    authorityHost: entra.authorityHost, disableInstanceDiscovery: true,
  });
  for (const ws of dbx.workspaces) {
    const workspace = workspaceSchema.parse({ name: ws.name, host: ws.url });
    const client = new DatabricksClient({ host: workspace.host, auth: databricksAuthFromConfig(workspace, { credential }), clock, timeoutMs: 10_000, retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 } });
    sources[ws.name] = createDatabricksInventory({ workspace, client });
    ws.clearRequests();
  }
  for (const [name, source] of Object.entries(sources)) scans[name] = await source.scan();
});

afterAll(async () => {
  await dbx?.close();
  await entra?.close();
});

describe('seeded Databricks estate through the provider', () => {
  it('finds exactly the seeded tokens in each workspace', () => {
    const names = (scope: string) => scans[scope]!.credentials.map((c) => c.name).sort();
    expect(names('ws-prod')).toEqual(['adf-etl', 'bob-jdbc', 'carol-notebook', 'expired-etl', 'legacy-never', 'reporting', 'stale-unused']);
    expect(names('ws-dev')).toEqual(['dev-ci', 'long-lived']);
    expect(names('ws-analytics')).toEqual(['analytics-adhoc', 'analytics-nightly', 'analytics-sp', 'bi-export', 'old-notebook', 'poc-sandbox', 'reporting-legacy']);
    expect(Object.keys(seed.tokens).sort()).toEqual([
      'ws-analytics/analytics-adhoc', 'ws-analytics/analytics-nightly', 'ws-analytics/analytics-sp', 'ws-analytics/bi-export', 'ws-analytics/old-notebook', 'ws-analytics/poc-sandbox', 'ws-analytics/reporting-legacy', 'ws-dev/dev-ci', 'ws-dev/long-lived', 'ws-prod/adf-etl', 'ws-prod/bob-jdbc', 'ws-prod/carol-notebook',
      'ws-prod/expired-etl', 'ws-prod/legacy-never', 'ws-prod/reporting', 'ws-prod/stale-unused',
    ]);
  });

  it('ws-prod/adf-etl: SP-owned (the id above 2^53 joins exactly), expiring in 7 days — rotatable', () => {
    const c = pat('ws-prod', 'adf-etl');
    const { tokenId } = seed.tokens['ws-prod/adf-etl']!;
    expect(c).toMatchObject({
      id: `databricks-pat:ws-prod:${tokenId}`, kind: 'databricks-pat', nativeId: tokenId,
      where: { estate: 'databricks', scope: 'ws-prod', host: dbx.workspace('ws-prod').url, label: 'ws-prod' },
      owner: { id: SANDBOX_SCIM_IDS['sp-etl'], name: 'sp-etl', kind: 'service-principal', active: true, applicationId: entraSeed.apps['etl-ingest']!.appId },
      expiresAt: NOW + 7 * DAY_MS, lastUsedAt: day(NOW - DAY_MS), enabled: true, heldIn: [], consumers: [],
      attributes: { tokenId, comment: 'adf-etl', workspaceId: '7405617279531127', ownerId: '9007199254740993', createdByUsername: 'alice.admin@contoso.com' },
    });
    expect(seed.tokens['ws-prod/adf-etl']!.expiryTime).toBe(NOW + 7 * DAY_MS);
  });

  it('ws-prod/reporting: sp-reporting, +30d', () => {
    expect(pat('ws-prod', 'reporting')).toMatchObject({ owner: { name: 'sp-reporting', kind: 'service-principal' }, expiresAt: NOW + 30 * DAY_MS });
  });

  it('ws-prod/bob-jdbc: a human-owned PAT, +14d', () => {
    expect(pat('ws-prod', 'bob-jdbc')).toMatchObject({ owner: { name: 'bob.dev@contoso.com', kind: 'user', active: true }, expiresAt: NOW + 14 * DAY_MS });
  });

  it('ws-prod/legacy-never: never expires (expiry_time -1 → null)', () => {
    expect(pat('ws-prod', 'legacy-never')).toMatchObject({ owner: { name: 'alice.admin@contoso.com', kind: 'user' }, expiresAt: null });
  });

  it('ws-prod/carol-notebook: owner deactivated in SCIM', () => {
    expect(pat('ws-prod', 'carol-notebook')).toMatchObject({ owner: { name: 'carol.former@contoso.com', kind: 'user', active: false }, expiresAt: NOW + 90 * DAY_MS });
  });

  it('ws-prod/stale-unused: created 200 days ago, last used 75 days ago', () => {
    expect(pat('ws-prod', 'stale-unused')).toMatchObject({ createdAt: NOW - 200 * DAY_MS, lastUsedAt: day(NOW - 75 * DAY_MS), expiresAt: NOW + 60 * DAY_MS });
  });

  it('ws-prod/expired-etl: expired two days ago (still listed)', () => {
    expect(pat('ws-prod', 'expired-etl')).toMatchObject({ owner: { name: 'sp-etl' }, expiresAt: NOW - 2 * DAY_MS });
  });

  it('ws-dev/dev-ci: SP-owned, +1d', () => {
    expect(pat('ws-dev', 'dev-ci')).toMatchObject({ owner: { name: 'sp-etl', kind: 'service-principal' }, expiresAt: NOW + DAY_MS });
  });

  it('ws-dev/long-lived: a 365-day lifetime in a workspace whose maximum is 90 days', () => {
    const c = pat('ws-dev', 'long-lived');
    expect(c.expiresAt! - c.createdAt!).toBe(365 * DAY_MS);
    expect(scans['ws-dev']!.facts.maxTokenLifetimeDays).toBe(90);
    expect(c.attributes.maxTokenLifetimeDays).toBe(90);
  });

  it('ws-dev: token permissions let every user create PATs', () => {
    expect(scans['ws-dev']!.facts.tokenUsers).toEqual([{ principal: 'users', type: 'group' }]);
  });

  it('ws-prod / ws-analytics: CAN_USE only for the token owners, no workspace maximum', () => {
    expect(scans['ws-prod']!.facts).toEqual({
      maxTokenLifetimeDays: null,
      tokensEnabled: true,
      tokenUsers: [
        { principal: 'sp-etl', type: 'service-principal' }, { principal: 'sp-reporting', type: 'service-principal' },
        { principal: 'bob.dev@contoso.com', type: 'user' }, { principal: 'carol.former@contoso.com', type: 'user' },
      ],
    });
    expect(scans['ws-analytics']!.facts.tokenUsers).toEqual([{ principal: 'sp-reporting', type: 'service-principal' }, { principal: 'bob.dev@contoso.com', type: 'user' }]);
    expect(pat('ws-analytics', 'analytics-sp')).toMatchObject({ owner: { name: 'sp-reporting' }, expiresAt: NOW + 45 * DAY_MS });
  });

  it('a workspace with PATs disabled (enableTokensConfig "false") says so: tokensEnabled false, its PATs disabled', async () => {
    dbx.workspace('ws-analytics').setConf({ enableTokensConfig: 'false' });
    try {
      const inv = await sources['ws-analytics']!.scan();
      expect(inv.facts.tokensEnabled).toBe(false);
      expect(inv.credentials.find((c) => c.name === 'analytics-sp')).toMatchObject({ enabled: false, attributes: { tokensDisabled: true } });
    } finally {
      dbx.workspace('ws-analytics').setConf({ enableTokensConfig: 'true' });
    }
  });

  it('a scan calls only GETs, as keywarden, and carries no token value', () => {
    for (const ws of dbx.workspaces) {
      const log = ws.requests();
      expect(log.length).toBeGreaterThanOrEqual(5);
      expect(log.every((r) => r.method === 'GET')).toBe(true);
      expect(log.every((r) => r.status === 200)).toBe(true);
      expect(new Set(log.map((r) => r.path))).toEqual(new Set([
        '/api/2.0/workspace-conf', '/api/2.0/permissions/authorization/tokens', '/api/2.0/token-management/tokens',
        '/api/2.0/preview/scim/v2/Users', '/api/2.0/preview/scim/v2/ServicePrincipals',
      ]));
    }
    const text = JSON.stringify(scans);
    for (const t of Object.values(seed.tokens)) expect(text).not.toContain(t.tokenValue);
    // The scan authenticated with Entra, so no PAT's last_used_day moved.
    expect(dbx.workspace('ws-prod').tokens().find((t) => t.comment === 'legacy-never')?.lastUsedDay).toBe(day(NOW - 2 * DAY_MS));
  });

  it('seeded token values authenticate in their own workspace only', async () => {
    const { tokenValue } = seed.tokens['ws-dev/dev-ci']!;
    const dev = new DatabricksClient({ host: dbx.workspace('ws-dev').url, auth: { pat: tokenValue }, clock });
    expect((await dev.listOwnTokens()).map((t) => t.comment)).toEqual(['dev-ci']);
    const prod = new DatabricksClient({ host: dbx.workspace('ws-prod').url, auth: { pat: tokenValue }, clock, retry: { maxAttempts: 1 } });
    await expect(prod.listOwnTokens()).rejects.toMatchObject({ code: 'HTTP_403' });
  });

  it('a workspace answering 500s fails its scan with a typed error while the others still scan', async () => {
    const dev = dbx.workspace('ws-dev');
    dev.injectFault({ method: 'GET', path: '/api/2.0/token-management/tokens', status: 500, times: Infinity });
    try {
      const err = await sources['ws-dev']!.scan().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(DatabricksError);
      expect(err).toMatchObject({ code: 'INTERNAL_ERROR', statusCode: 500 });
      expect(dev.requests().filter((r) => r.path === '/api/2.0/token-management/tokens' && r.injected === 'fault').length).toBe(3);
      expect((await sources['ws-analytics']!.scan()).credentials).toHaveLength(7);
    } finally {
      dev.clearFaults();
    }
  });
});
