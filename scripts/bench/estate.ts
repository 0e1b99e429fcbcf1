import { randomBytes } from 'node:crypto';
import type { Clock } from '../../src/clock.js';
import { DAY_MS } from '../../src/clock.js';
import { KV_TAGS, MANAGED_BY_VALUE } from '../../src/domain/credential.js';
import type { DatabricksEmulator } from '../../src/sandbox/databricks/emulator.js';
import type { DataFactoryEmulator } from '../../src/sandbox/datafactory/index.js';
import type { EmulatorServer } from '../../src/sandbox/emulator.js';
import type { EntraEmulator } from '../../src/sandbox/entra/index.js';
import { startSandboxClouds, type SandboxConfigFragment } from '../../src/sandbox/estate.js';
import type { KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { SANDBOX_VAULTS } from '../../src/sandbox/keyvault/seed.js';
import { SANDBOX_WORKSPACES } from '../../src/sandbox/databricks/seed.js';
import { seededRandom } from './measure.js';

/**
 * The sandbox estate of docs/sandbox-estate.md, started and seeded by startSandboxClouds (Entra → Databricks → Key
 * Vault → Data Factory), then grown to bench size: thousands of PATs, secrets and Entra credentials with spread-out expiries.
 */

export interface EstateSizes {
  /** Workspaces in all (at least the sandbox's 3). */
  workspaces: number;
  /** Vaults in all (at least the sandbox's 2). */
  vaults: number;
  tokensPerWorkspace: number;
  usersPerWorkspace: number;
  servicePrincipalsPerWorkspace: number;
  secretsPerVault: number;
  entraApps: number;
  credentialsPerApp: number;
  linkedServices: number;
}

export const DEFAULT_SIZES: EstateSizes = {
  workspaces: 3,
  vaults: 2,
  tokensPerWorkspace: 2_000,
  usersPerWorkspace: 150,
  servicePrincipalsPerWorkspace: 30,
  secretsPerVault: 1_000,
  entraApps: 500,
  credentialsPerApp: 2,
  linkedServices: 200,
};

/** Key Vault's real maximum page (the emulator's default of 5 exists to exercise paging in tests). */
const KV_PAGE_SIZE = 25;

export interface EstateCounts {
  workspaces: number;
  tokens: number;
  scimUsers: number;
  scimServicePrincipals: number;
  vaults: number;
  secrets: number;
  entraApps: number;
  entraCredentials: number;
  linkedServices: number;
}

export interface BenchEstate {
  config: SandboxConfigFragment;
  counts: EstateCounts;
  /** Every HTTP(S) server of the estate, by name. */
  servers: Map<string, EmulatorServer>;
  /** Rotates `fraction` of the PATs, Key Vault secrets (a new version) and Entra apps (one more secret); returns how many. */
  change(fraction: number): number;
  close(): Promise<void>;
}

function changeEstate(handles: { databricks: DatabricksEmulator; keyVault: KeyVaultEmulatorHandle; entra: EntraEmulator }, fraction: number, clock: Clock, round: number): number {
  const now = clock.now();
  let changed = 0;
  const every = Math.max(1, Math.round(1 / fraction));
  for (const ws of handles.databricks.workspaces) {
    const tokens = ws.tokens();
    for (let i = round % every; i < tokens.length; i += every) {
      const t = tokens[i]!;
      ws.revokeToken(t.tokenId);
      ws.addToken({ ownerName: t.ownerName, comment: `${t.comment}-r${round}`, createdAt: now, expiryTime: now + 90 * DAY_MS, lastUsedDay: 0 });
      changed += 1;
    }
  }
  for (const vault of handles.keyVault.vaults.values()) {
    const names = vault.secretNames();
    for (let i = round % every; i < names.length; i += every) {
      vault.seedSecret(names[i]!, { value: randomBytes(18).toString('base64url'), exp: now + 90 * DAY_MS, created: now, updated: now });
      changed += 1;
    }
  }
  const apps = [...handles.entra.directory.applications.values()];
  for (let i = round % every; i < apps.length; i += every) {
    handles.entra.directory.addPassword({ kind: 'application', id: apps[i]!.id }, { displayName: `bench-rotated-${round}`, startDateTime: now, endDateTime: now + 180 * DAY_MS, addedAt: Number.NEGATIVE_INFINITY });
    changed += 1;
  }
  return changed;
}

const pad = (n: number, width = 4) => String(n).padStart(width, '0');

function growDatabricks(databricks: DatabricksEmulator, sizes: EstateSizes, clock: Clock, rand: () => number, keywardenAppId: string): Map<string, string[]> {
  const now = clock.now();
  const tokenIds = new Map<string, string[]>();
  const seeded = new Set(SANDBOX_WORKSPACES.map((w) => w.name));
  for (const ws of databricks.workspaces) {
    // Keywarden's identity is a workspace admin (the sandbox seed does this for its own workspaces).
    if (!seeded.has(ws.name)) ws.addServicePrincipal({ applicationId: keywardenAppId, displayName: 'keywarden', admin: true });
    const owners: string[] = [];
    for (let i = 0; i < sizes.usersPerWorkspace; i++) {
      const userName = `user${pad(i)}@contoso.com`;
      ws.addUser({ userName, displayName: `User ${pad(i)}`, active: rand() > 0.05 });
      owners.push(userName);
    }
    for (let i = 0; i < sizes.servicePrincipalsPerWorkspace; i++) {
      const applicationId = `22222222-2222-4222-8222-${pad(i, 12)}`;
      ws.addServicePrincipal({ applicationId, displayName: `sp-bench-${pad(i)}` });
      owners.push(applicationId);
    }
    const ids: string[] = [];
    for (let i = 0; i < sizes.tokensPerWorkspace; i++) {
      const createdAt = now - Math.floor(rand() * 200) * DAY_MS;
      const lifetimeDays = 30 + Math.floor(rand() * 335);
      const expiryTime = rand() < 0.05 ? -1 : createdAt + lifetimeDays * DAY_MS;
      const used = rand() < 0.9 ? now - Math.floor(rand() * 120) * DAY_MS : 0;
      const { tokenId } = ws.addToken({ ownerName: owners[i % owners.length]!, comment: `bench-${ws.name}-${pad(i)}`, createdAt, expiryTime, lastUsedDay: used });
      ids.push(tokenId);
    }
    tokenIds.set(ws.name, ids);
  }
  return tokenIds;
}

function growKeyVault(keyVault: KeyVaultEmulatorHandle, sizes: EstateSizes, tokenIds: Map<string, string[]>, clock: Clock, rand: () => number): void {
  const now = clock.now();
  const workspaces = [...tokenIds.keys()];
  for (const vault of keyVault.vaults.values()) {
    for (let i = 0; i < sizes.secretsPerVault; i++) {
      const created = now - Math.floor(rand() * 300) * DAY_MS;
      const exp = rand() < 0.1 ? undefined : now + Math.floor(rand() * 400 - 20) * DAY_MS;
      // A third hold a bench PAT (tagged the way Keywarden tags what it rotates), so correlation has work to do.
      let tags: Record<string, string> | undefined;
      if (i % 3 === 0) {
        const workspace = workspaces[i % workspaces.length]!;
        const ids = tokenIds.get(workspace)!;
        tags = {
          [KV_TAGS.managedBy]: MANAGED_BY_VALUE, [KV_TAGS.credentialKind]: 'databricks-pat',
          [KV_TAGS.credentialId]: ids[(i * 7) % ids.length]!, [KV_TAGS.workspace]: workspace,
        };
      }
      vault.seedSecret(`bench-secret-${pad(i)}`, { value: randomBytes(18).toString('base64url'), exp, tags, created, updated: created });
    }
  }
}

function growEntra(entra: EntraEmulator, sizes: EstateSizes, clock: Clock, rand: () => number): void {
  const now = clock.now();
  const dir = entra.directory;
  for (let i = 0; i < sizes.entraApps; i++) {
    const { app, sp } = dir.addApplication({
      displayName: `bench-app-${pad(i)}`, appId: `33333333-3333-4333-8333-${pad(i, 12)}`,
      objectId: `a1a1a1a1-0000-4000-8000-${pad(i, 12)}`, spObjectId: `5f5f5f5f-0000-4000-8000-${pad(i, 12)}`, createdAt: now - 500 * DAY_MS,
    });
    for (let k = 0; k < sizes.credentialsPerApp; k++) {
      // Every fifth app keeps its second secret on the service principal (invisible in the portal's app blade).
      const target = k === 1 && i % 5 === 0 ? { kind: 'servicePrincipal' as const, id: sp.id } : { kind: 'application' as const, id: app.id };
      const start = now - Math.floor(rand() * 300) * DAY_MS;
      dir.addPassword(target, { displayName: `bench-secret-${k}`, startDateTime: start, endDateTime: start + (60 + Math.floor(rand() * 600)) * DAY_MS, addedAt: Number.NEGATIVE_INFINITY });
    }
  }
}

function growDataFactory(dataFactory: DataFactoryEmulator, sizes: EstateSizes, seeded: { subscriptionId: string; resourceGroup: string; factory: string }, workspaceHost: string): void {
  const { state } = dataFactory;
  const factory = state.factory(seeded.subscriptionId, seeded.resourceGroup, seeded.factory);
  if (!factory) throw new Error(`bench estate: the seeded factory ${seeded.factory} is missing`);
  for (let i = 0; i < sizes.linkedServices; i++) {
    const store = i % 2 === 0 ? 'LS_KeyVault_Prod' : 'LS_KeyVault_Dev';
    state.put(factory, 'linkedservices', `LS_Bench_${pad(i)}`, {
      annotations: [], type: 'AzureDatabricks',
      typeProperties: {
        domain: workspaceHost, existingClusterId: `0101-000000-bench${pad(i)}`,
        accessToken: { type: 'AzureKeyVaultSecret', store: { referenceName: store, type: 'LinkedServiceReference' }, secretName: `bench-secret-${pad((i * 3) % Math.max(1, sizes.secretsPerVault))}` },
      },
    });
    if (i % 4 === 0) {
      state.put(factory, 'pipelines', `bench-pipeline-${pad(i)}`, {
        annotations: [], activities: [{
          name: 'Run', type: 'DatabricksNotebook', dependsOn: [], userProperties: [],
          typeProperties: { notebookPath: `/Shared/bench/${i}` }, linkedServiceName: { referenceName: `LS_Bench_${pad(i)}`, type: 'LinkedServiceReference' },
        }],
      });
    }
  }
}

export async function startBenchEstate(options: { clock: Clock; sizes?: Partial<EstateSizes> }): Promise<BenchEstate> {
  const sizes = { ...DEFAULT_SIZES, ...options.sizes };
  const { clock } = options;
  const rand = seededRandom(20260401);
  const extraWorkspaces = Array.from({ length: Math.max(0, sizes.workspaces - SANDBOX_WORKSPACES.length) }, (_, i) => ({
    name: `bench-ws-${pad(i, 3)}`, workspaceId: `5${String(i).padStart(15, '0')}`,
  }));
  const extraVaults = Array.from({ length: Math.max(0, sizes.vaults - SANDBOX_VAULTS.length) }, (_, i) => `bench-kv-${pad(i, 3)}`);
  const clouds = await startSandboxClouds({
    clock, keyVaultPageSize: KV_PAGE_SIZE, extra: { workspaces: extraWorkspaces, vaults: extraVaults },
    // Bench size. Bulk values stay inside this process and are never logged, so they are not registered.
    grow({ handles: { databricks, keyVault, entra, dataFactory }, seeds }) {
      const tokenIds = growDatabricks(databricks, sizes, clock, rand, seeds.entra.apps['keywarden-bot']!.appId);
      growKeyVault(keyVault, sizes, tokenIds, clock, rand);
      growEntra(entra, sizes, clock, rand);
      growDataFactory(dataFactory, sizes, seeds.dataFactory, databricks.urls()['ws-prod']!);
    },
  });
  const close = () => clouds.close();
  try {
    const { config, handles: { entra, databricks, keyVault, dataFactory } } = clouds;
    // Graph honours $top up to 999 on applications and service principals (Keywarden asks for 999); the sandbox's
    // default cap of 100 is there so small tests see paging.
    entra.graphPageSize = 999;
    const servers = new Map<string, EmulatorServer>([['entra-authority', entra.authority], ['graph', entra.graph], ['arm', dataFactory.server]]);
    for (const ws of databricks.workspaces) servers.set(`databricks:${ws.name}`, ws.server);
    for (const v of keyVault.vaults.values()) servers.set(`keyvault:${v.name}`, v.server);

    const counts: EstateCounts = {
      workspaces: databricks.workspaces.length,
      tokens: databricks.workspaces.reduce((n, ws) => n + ws.tokens().length, 0),
      scimUsers: databricks.workspaces.reduce((n, ws) => n + ws.users().length, 0),
      scimServicePrincipals: databricks.workspaces.reduce((n, ws) => n + ws.servicePrincipals().length, 0),
      vaults: keyVault.vaults.size,
      secrets: [...keyVault.vaults.values()].reduce((n, v) => n + v.secretNames().length, 0),
      entraApps: entra.directory.applications.size,
      entraCredentials: [...entra.directory.applications.values(), ...entra.directory.servicePrincipals.values()]
        .reduce((n, h) => n + h.passwordCredentials.length + h.keyCredentials.length, 0),
      linkedServices: dataFactory.state.factories.reduce((n, f) => n + f.children.linkedservices.size, 0),
    };
    let round = 0;
    return { config, counts, servers, close, change: (fraction) => changeEstate({ databricks, keyVault, entra }, fraction, clock, ++round) };
  } catch (err) {
    await close();
    throw err;
  }
}
