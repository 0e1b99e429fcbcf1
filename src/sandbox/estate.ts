import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { configSchema, type KeywardenConfig } from '../config/schema.js';
import { registerSecret } from '../logging/redact.js';
import { seedDatabricks, SANDBOX_WORKSPACES, type DatabricksSeed } from './databricks/seed.js';
import type { DatabricksWorkspaceSpec } from './databricks/emulator.js';
import { startDatabricksEmulator, type DatabricksEmulator } from './databricks/emulator.js';
import { startDataFactoryEmulator, type DataFactoryEmulator } from './datafactory/index.js';
import { seedDataFactory, type SeededDataFactory } from './datafactory/seed.js';
import { DEFAULT_FACTORY_PRINCIPAL_ID } from './datafactory/state.js';
import { JIT_FACTORY_APP_ID, JIT_FACTORY_PRINCIPAL_ID, JIT_SECRET_PREFIX, KEYWARDEN_API_URI, seedJitPipelineFactory } from './datafactory/jit-pipeline.js';
import { startEntraEmulator, type EntraEmulator } from './entra/index.js';
import { seedEntra, type SeededEntra } from './entra/seed.js';
import { startKeyVaultEmulator, type KeyVaultEmulatorHandle } from './keyvault/emulator.js';
import { seedKeyVault, SANDBOX_VAULTS, type KeyVaultSeedResult } from './keyvault/seed.js';
import { ensureSandboxTls, TEST_CA_DIR, type SandboxTls } from './tls.js';

/**
 * The whole emulated estate of docs/sandbox-estate.md in this process: Entra → Databricks → Key Vault → Data Factory,
 * started and seeded in that order so cross-references resolve, plus the config that points Keywarden at them.
 */

export interface SandboxCloudsOptions {
  clock?: Clock;
  /** Default: the CA in $KEYWARDEN_CA_DIR or .test-ca (what scripts/with-ca.ts and the CLI trust). */
  tls?: SandboxTls;
  host?: string;
  /** Key Vault's page size (default: the emulator's small one, which exercises paging). */
  keyVaultPageSize?: number;
  /** More (empty) workspaces and vaults besides the sandbox's own, e.g. for the bench's large estates. */
  extra?: { workspaces?: DatabricksWorkspaceSpec[]; vaults?: string[] };
  /** Runs once every cloud is started and seeded, before the config is made (the bench grows the estate here). */
  grow?(clouds: Pick<SandboxClouds, 'handles' | 'seeds'>): void | Promise<void>;
}

/** A config fragment (zod input shape): merge it over a base config and parse with configSchema. */
export interface SandboxConfigFragment {
  azure: { tenantId: string; authorityHost: string; credential: { type: 'client-secret'; clientId: string; clientSecret: string } };
  databricks: { workspaces: Array<{ name: string; host: string; auth: { type: 'entra' } }> };
  keyVault: {
    vaults: Array<{ name: string; url: string }>;
    mappings: Array<{ secret: string; holds: { kind: 'databricks-pat'; scope: string; comment: string } }>;
    disableChallengeResourceVerification: true;
  };
  entra: { enabled: true; tenantId: string; graphUrl: string };
  dataFactory: { armUrl: string; factories: Array<{ name: string; subscriptionId: string; resourceGroup: string }> };
  approvals: { groups: string[] };
  policy: { patCreationAllowList: string[] };
  /** The SP a human-owned pipeline token is moved to, per workspace (ws-prod: sp-etl). */
  governance: { moveToServicePrincipal: { servicePrincipals: Array<{ workspace: string; applicationId: string; name: string }> } };
  pipelines: {
    audiences: string[];
    tenantId: string;
    callers: Array<{ objectId: string; name: string; workspaces: string[]; vaults: string[]; secretPrefix: string; limits: { maxHours: number; maxCapacity: number; nodeTypes: string[] } }>;
  };
}

export interface SandboxClouds {
  tenantId: string;
  urls: { authorityHost: string; graph: string; arm: string; workspaces: Record<string, string>; vaults: Record<string, string> };
  handles: { entra: EntraEmulator; databricks: DatabricksEmulator; keyVault: KeyVaultEmulatorHandle; dataFactory: DataFactoryEmulator };
  seeds: { entra: SeededEntra; databricks: DatabricksSeed; keyVault: KeyVaultSeedResult; dataFactory: SeededDataFactory };
  config: SandboxConfigFragment;
  close(): Promise<void>;
}

/**
 * Who the sandbox's operators approved to hold PATs: admins, the pipeline SPs and the users whose tokens are seeded.
 * ws-dev's grant to the whole `users` group is the one seeded pat-creation-open case.
 */
export const SANDBOX_PAT_CREATION_ALLOW_LIST = ['admins', 'sp-etl', 'sp-reporting', 'bob.dev@contoso.com', 'carol.former@contoso.com'];

/** The untagged pipeline secret that only a configured mapping links to its PAT (docs/sandbox-estate.md). */
export const SANDBOX_KV_MAPPINGS: SandboxConfigFragment['keyVault']['mappings'] = [
  { secret: 'kv-prod/adb-prod-bob-pipeline', holds: { kind: 'databricks-pat', scope: 'ws-prod', comment: 'bob-jdbc' } },
];

/** The config that points Keywarden at a running set of emulators. */
export function sandboxConfigFragment(p: {
  entra: EntraEmulator; entraSeed: SeededEntra; workspaces: Record<string, string>; vaults: Record<string, string>;
  dataFactory: DataFactoryEmulator; dataFactorySeed: SeededDataFactory;
}): SandboxConfigFragment {
  const { entra, entraSeed, workspaces, vaults, dataFactory, dataFactorySeed } = p;
  return {
    azure: {
      tenantId: entra.tenantId, authorityHost: entra.authorityHost,
      credential: { type: 'client-secret', clientId: entraSeed.keywarden.clientId, clientSecret: entraSeed.keywarden.clientSecret },
    },
    databricks: { workspaces: Object.entries(workspaces).map(([name, url]) => ({ name, host: url, auth: { type: 'entra' as const } })) },
    keyVault: {
      vaults: Object.entries(vaults).map(([name, url]) => ({ name, url })),
      mappings: SANDBOX_KV_MAPPINGS.map((m) => ({ ...m, holds: { ...m.holds } })),
      disableChallengeResourceVerification: true,
    },
    entra: { enabled: true, tenantId: entra.tenantId, graphUrl: entra.graphUrl },
    dataFactory: {
      armUrl: dataFactory.url,
      factories: [{ name: dataFactorySeed.factory, subscriptionId: dataFactorySeed.subscriptionId, resourceGroup: dataFactorySeed.resourceGroup }],
    },
    approvals: { groups: [entraSeed.approverGroupId] },
    policy: { patCreationAllowList: [...SANDBOX_PAT_CREATION_ALLOW_LIST] },
    // bob's pipeline token (kv-prod/adb-prod-bob-pipeline) moves to sp-etl, which holds CAN_USE in ws-prod.
    governance: { moveToServicePrincipal: { servicePrincipals: [{ workspace: 'ws-prod', applicationId: entraSeed.apps['etl-ingest']!.appId, name: 'sp-etl' }] } },
    // The adf-analytics factory's identity may ask for JIT access in ws-prod (secrets in kv-prod, named adf-jit-…).
    pipelines: {
      audiences: [KEYWARDEN_API_URI],
      tenantId: entra.tenantId,
      callers: [{
        objectId: JIT_FACTORY_PRINCIPAL_ID, name: 'adf-analytics', workspaces: ['ws-prod'], vaults: ['kv-prod'], secretPrefix: JIT_SECRET_PREFIX,
        limits: { maxHours: 4, maxCapacity: 4, nodeTypes: ['Standard_DS3_v2'] },
      }],
    },
  };
}

export async function startSandboxClouds(options: SandboxCloudsOptions = {}): Promise<SandboxClouds> {
  const clock = options.clock ?? systemClock;
  const tls = options.tls ?? ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR);
  const host = options.host ?? '127.0.0.1';
  const started: Array<{ close(): Promise<void> }> = [];
  const closeAll = async () => {
    await Promise.all(started.splice(0).reverse().map((h) => h.close().catch(() => undefined)));
  };

  try {
    const entra = await startEntraEmulator({ clock, tls, host });
    started.push(entra);
    const entraSeed = seedEntra(entra, { clock });
    registerSecret(entraSeed.keywarden.clientSecret);
    const app = (name: string) => entraSeed.apps[name]!.appId;

    const databricks = await startDatabricksEmulator({ workspaces: [...SANDBOX_WORKSPACES, ...(options.extra?.workspaces ?? [])], clock, tokenValidator: entra.validator, host });
    started.push(databricks);
    const databricksSeed = seedDatabricks(databricks, { clock, appIds: { keywarden: app('keywarden-bot'), etl: app('etl-ingest'), reporting: app('reporting-svc') } });

    const keyVault = await startKeyVaultEmulator({
      tls, tenantId: entra.tenantId, clock, host, tokenValidator: entra.validator, authorityHost: entra.authorityHost,
      vaults: [...SANDBOX_VAULTS, ...(options.extra?.vaults ?? [])].map((name) => ({ name })), ...(options.keyVaultPageSize === undefined ? {} : { pageSize: options.keyVaultPageSize }),
    });
    started.push(keyVault);
    const tokens = Object.entries(databricksSeed.tokens).map(([key, t]) => {
      const [workspace, comment] = key.split('/') as [string, string];
      return { workspace, comment, tokenId: t.tokenId, value: t.tokenValue, expiryTime: t.expiryTime };
    });
    const keyVaultSeed = seedKeyVault(keyVault, { clock, databricks: { tokens }, entra: { etlSecret: entraSeed.etlSecret } });

    entra.directory.registerApi(KEYWARDEN_API_URI);
    entra.directory.addManagedIdentity({ displayName: 'adf-analytics', objectId: JIT_FACTORY_PRINCIPAL_ID, appId: JIT_FACTORY_APP_ID });
    // adf-prod's pipelines (bob-reports, nightly-etl) read their Databricks tokens from Key Vault as this identity.
    entra.directory.addManagedIdentity({ displayName: 'adf-prod', objectId: DEFAULT_FACTORY_PRINCIPAL_ID });
    const dataFactory = await startDataFactoryEmulator({
      validator: entra.validator, clock, tls, host, identityToken: (principalId, resource) => entra.issueManagedIdentityToken(principalId, resource),
    });
    started.push(dataFactory);
    const workspaces = databricks.urls();
    const vaults = keyVault.urls();
    const dataFactorySeed = seedDataFactory(dataFactory, {
      vaultUrls: { 'kv-prod': vaults['kv-prod']!, 'kv-dev': vaults['kv-dev']! },
      workspaceHosts: { 'ws-prod': workspaces['ws-prod']!, 'ws-dev': workspaces['ws-dev']!, 'ws-analytics': workspaces['ws-analytics'] },
    });
    seedJitPipelineFactory(dataFactory, { vaultUrl: vaults['kv-prod']! });

    const handles = { entra, databricks, keyVault, dataFactory };
    const seeds = { entra: entraSeed, databricks: databricksSeed, keyVault: keyVaultSeed, dataFactory: dataFactorySeed };
    await options.grow?.({ handles, seeds });

    const config = sandboxConfigFragment({ entra, entraSeed, workspaces, vaults, dataFactory, dataFactorySeed });

    return {
      tenantId: entra.tenantId,
      urls: { authorityHost: entra.authorityHost, graph: entra.graphUrl, arm: dataFactory.url, workspaces, vaults },
      handles,
      seeds,
      config,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Lays the sandbox fragment over a config input, section by section (the fragment wins). */
export function withSandboxConfig(base: Record<string, unknown>, fragment: SandboxConfigFragment): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [section, values] of Object.entries(fragment)) {
    const current = base[section];
    out[section] = current && typeof current === 'object' && !Array.isArray(current) ? { ...(current as object), ...values } : values;
  }
  return out;
}

/**
 * For `keywarden start` in sandbox mode (the shape of src/cli/start.ts's SandboxStarter): starts the clouds with the
 * CA in config.sandbox.dataDir and returns the config pointing at them.
 */
/**
 * Who keeps CAN_USE on tokens after /restrict-tokens in the sandbox (docs/sandbox-estate.md): the pipeline SPs. Applied by
 * `npm start` only when the config names no allow-list, so ws-dev's and ws-prod's findings get their button.
 */
export function sandboxTokenAllowList(appIds: { etl: string; reporting: string }): KeywardenConfig['governance']['workspaceControls']['tokenAllowList'] {
  return [
    { workspace: 'ws-dev', groups: [], servicePrincipals: [appIds.etl], users: [] },
    { workspace: 'ws-prod', groups: [], servicePrincipals: [appIds.etl, appIds.reporting], users: [] },
  ];
}

export async function startSandboxForKeywarden(context: { config: KeywardenConfig; clock: Clock }): Promise<{ config: KeywardenConfig; clouds: SandboxClouds; close(): Promise<void> }> {
  const clouds = await startSandboxClouds({ clock: context.clock, tls: ensureSandboxTls(context.config.sandbox.dataDir) });
  try {
    const config = configSchema.parse(withSandboxConfig(context.config as unknown as Record<string, unknown>, clouds.config));
    const controls = config.governance.workspaceControls;
    if (controls.tokenAllowList.length === 0) {
      const apps = clouds.seeds.entra.apps;
      controls.tokenAllowList = sandboxTokenAllowList({ etl: apps['etl-ingest']!.appId, reporting: apps['reporting-svc']!.appId });
    }
    return { config, clouds, close: () => clouds.close() };
  } catch (err) {
    await clouds.close();
    throw err;
  }
}
