import { z } from 'zod';
import { APPROVAL_ACTIONS } from '../approvals/types.js';
import { autoRotationSchema, governanceSchema } from './governance.js';

/** Keywarden's configuration: one file (YAML or JSON) plus env for secrets (`env:VAR_NAME` values). */

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'use letters, digits, ".", "_" or "-" (max 63 chars)');
const url = z.string().url('must be a full URL such as https://host:port');
const days = z.number().int().positive();

export const workspaceSchema = z.object({
  name,
  host: url,
  /** Azure resource id; sent as X-Databricks-Azure-Workspace-Resource-Id when the SP is not yet a workspace member. */
  resourceId: z.string().optional(),
  environment: z.string().default('default'),
  auth: z.union([
    z.object({ type: z.literal('entra'), spManagementHeaders: z.boolean().default(false) }),
    /** A PAT read from Key Vault ("vault/secret") or given directly (use env:VAR). */
    z.object({ type: z.literal('pat'), keyVaultSecret: z.string().regex(/^[^/]+\/[^/]+$/, 'use "<vault>/<secret>"').optional(), token: z.string().optional() })
      .refine((a) => Boolean(a.keyVaultSecret) !== Boolean(a.token), 'set exactly one of keyVaultSecret or token'),
  ]).default({ type: 'entra', spManagementHeaders: false }),
});

export const vaultSchema = z.object({ name, url, environment: z.string().default('default') });

export const credentialRefSchema = z.object({
  kind: z.enum(['databricks-pat', 'entra-password']),
  /** Workspace name (PAT) or application id (Entra). */
  scope: z.string(),
  /** token_id / keyId when known. */
  nativeId: z.string().optional(),
  /** PAT comment to match when the token id is not known. */
  comment: z.string().optional(),
});

export const channelSchema = z.object({
  name,
  conversationId: z.string().min(1),
  serviceUrl: url,
  tenantId: z.string().min(1),
  teamId: z.string().optional(),
  channelId: z.string().optional(),
  /** Scopes (workspace/vault/app names) or environments routed here; empty = everything not routed elsewhere. */
  routes: z.array(z.string()).default([]),
});

const thresholds = z.array(z.number().int().positive()).nonempty().default([30, 14, 7, 1])
  .refine((t) => t.every((d, i) => i === 0 || d < t[i - 1]!), 'list thresholds in descending order, e.g. [30, 14, 7, 1]');

export const policyOverrideSchema = z.object({
  kind: z.enum(['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate']).optional(),
  scope: z.string().optional(),
  thresholdsDays: thresholds.optional(),
  maxLifetimeDays: days.optional(),
  notRotatedDays: days.optional(),
  unusedDays: days.optional(),
});

const hourOfDay = z.number().int().min(0).max(24);

/** One pipeline identity (a factory's managed identity) and its standing approval: what it gets without a click. */
export const pipelineCallerSchema = z.object({
  /** Entra object id of the caller's service principal (the factory's managed identity "principalId"). */
  objectId: z.string().regex(/^[0-9a-fA-F-]{36}$/, 'use the object (principal) id, a GUID'),
  name,
  /** Workspaces it may be granted access to without an approver (databricks.workspaces names). */
  workspaces: z.array(z.string()).default([]),
  /** Key Vaults it may name secrets in (keyVault.vaults names); any other vault is refused. */
  vaults: z.array(z.string()).nonempty('name at least one vault the pipeline may write its secrets to'),
  /** Every secret name it passes must start with this, so it cannot overwrite anyone else's secret. */
  secretPrefix: z.string().regex(/^[0-9a-zA-Z-]{1,60}$/, 'use letters, digits and "-" (Key Vault secret name rules)'),
  limits: z.object({
    maxHours: z.number().positive().default(4),
    maxCapacity: z.number().int().positive().default(4),
    /** Node types it may ask for; empty = only workflows.jit.defaultNodeType. */
    nodeTypes: z.array(z.string()).default([]),
    /** UTC hours of day [from, to) when requests are auto-approved; [0, 24] = any time. */
    hours: z.tuple([hourOfDay, hourOfDay]).default([0, 24]),
  }).default({}),
});

/** One API's per-host budget: requests started per second and requests in flight (absent = the published limit). */
const requestLimitSchema = z.object({
  perSecond: z.number().positive().max(100_000).optional(),
  inFlight: z.number().int().min(1).max(256).optional(),
}).default({});

export const configSchema = z.object({
  mode: z.enum(['sandbox', 'production']).default('sandbox'),
  server: z.object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(3978),
    /** A turn that runs longer is answered 503 + Retry-After (Teams gives up after 10–15 s anyway). */
    turnTimeoutSeconds: z.number().positive().max(300).default(15),
  }).default({}),
  store: z.object({
    /** sqlite: one instance, one file (the default). azure-tables: two or more replicas on one Storage account. */
    type: z.enum(['sqlite', 'azure-tables']).default('sqlite'),
    path: z.string().default('./data/keywarden.db'),
    azure: z.object({
      /** https://<account>.table.core.windows.net — used with azure.credential (production). */
      tableEndpoint: url.optional(),
      /** https://<account>.blob.core.windows.net — holds the leader lease and values too big for a table row. */
      blobEndpoint: url.optional(),
      /** Azurite / development only (env:VAR): account key auth instead of azure.credential. */
      connectionString: z.string().min(1).optional(),
      table: z.string().regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'use 3-63 letters and digits, starting with a letter').default('keywarden'),
      container: z.string().regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'use 3-63 lowercase letters, digits and single hyphens').default('keywarden'),
      leaseBlob: z.string().min(1).max(1024).default('leader'),
      leaseSeconds: z.number().int().min(15, 'a blob lease lasts 15-60 s').max(60, 'a blob lease lasts 15-60 s').default(30),
    }).optional(),
  }).default({}).superRefine((store, ctx) => {
    if (store.type !== 'azure-tables') return;
    const a = store.azure;
    if (!a) {
      ctx.addIssue({ code: 'custom', path: ['azure'], message: 'store.type azure-tables needs store.azure with tableEndpoint and blobEndpoint (or connectionString for azurite)' });
    } else if (!a.connectionString && !(a.tableEndpoint && a.blobEndpoint)) {
      ctx.addIssue({ code: 'custom', path: ['azure'], message: 'set both tableEndpoint and blobEndpoint (https://<account>.table/.blob.core.windows.net), or connectionString: env:VAR for azurite' });
    }
  }),
  audit: z.object({
    /** HMAC key of the audit chain, read from Key Vault at start and never stored beside the log. */
    keySecret: z.object({ vault: z.string().min(1), name }).optional(),
    /** Where the chain head is copied at intervals, one secret version per anchor (default: keySecret's vault). */
    anchorSecret: z.object({ vault: z.string().min(1), name }).optional(),
    anchorEveryEntries: z.number().int().positive().default(100),
    anchorEveryMinutes: z.number().positive().default(15),
  }).default({}),
  log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).default({}),
  bot: z.object({
    appId: z.string().optional(),
    appPassword: z.string().optional(),
    appType: z.enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI']).default('SingleTenant'),
    tenantId: z.string().optional(),
    /** Display name used in the app package and cards. */
    name: z.string().max(30, 'Teams allows at most 30 characters in a short app name').default('Keywarden'),
    /** Teams app id in the package (defaults to appId). */
    teamsAppId: z.string().optional(),
    /** The bot's public host, listed in the manifest's validDomains. */
    domain: z.string().default('keywarden.contoso.com'),
    developer: z.object({
      name: z.string().max(32).default('Contoso Platform Team'),
      websiteUrl: url.default('https://keywarden.contoso.com'),
    }).default({}),
    /** How inbound Bot Framework tokens are checked (production); change only for sovereign clouds or a test issuer. */
    inbound: z.object({
      openIdMetadataUrl: url.default('https://login.botframework.com/v1/.well-known/openidconfiguration'),
      issuer: z.string().min(1).default('https://api.botframework.com'),
      /** Each fetch of the metadata or the signing keys gives up after this long. */
      keyFetchTimeoutSeconds: z.number().positive().max(60).default(5),
      /** Signing keys are refreshed in the background this often (and on an unknown key id, at most once a minute). */
      keyRefreshMinutes: z.number().positive().default(60),
      /** Requests whose token is being checked at once; more get 503 + Retry-After. */
      maxConcurrentChecks: z.number().int().min(1).max(1000).default(32),
    }).default({}),
  }).default({}),
  azure: z.object({
    tenantId: z.string().optional(),
    authorityHost: url.optional(),
    credential: z.object({
      type: z.enum(['default', 'managed-identity', 'workload-identity', 'client-secret', 'client-certificate']).default('default'),
      clientId: z.string().optional(),
      clientSecret: z.string().optional(),
      certificatePath: z.string().optional(),
    }).default({}),
  }).default({}),
  databricks: z.object({
    workspaces: z.array(workspaceSchema).default([]),
    /** Entra resource for Azure Databricks. */
    scope: z.string().default('2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default'),
    timeoutSeconds: z.number().positive().default(30),
  }).default({}),
  keyVault: z.object({
    vaults: z.array(vaultSchema).default([]),
    /** Links a secret ("vault/secret") to the credential it holds when it carries no Keywarden tags yet. */
    mappings: z.array(z.object({ secret: z.string().regex(/^[^/]+\/[^/]+$/, 'use "<vault>/<secret>"'), holds: credentialRefSchema })).default([]),
    /** Sandbox/tests only: the emulator is not on *.vault.azure.net. */
    disableChallengeResourceVerification: z.boolean().default(false),
    /** List every secret's versions at each scan (one call per secret): version id, count and disabled versions as attributes. */
    versionHistory: z.boolean().default(false),
  }).default({}),
  entra: z.object({
    enabled: z.boolean().default(true),
    tenantId: z.string().optional(),
    graphUrl: url.default('https://graph.microsoft.com'),
  }).default({}),
  dataFactory: z.object({
    armUrl: url.default('https://management.azure.com'),
    factories: z.array(z.object({ name, subscriptionId: z.string(), resourceGroup: z.string() })).default([]),
  }).default({}),
  policy: z.object({
    thresholdsDays: thresholds,
    notRotatedDays: days.default(90),
    unusedDays: days.default(60),
    maxLifetimeDays: z.object({
      'databricks-pat': days.default(90),
      'keyvault-secret': days.default(365),
      'entra-password': days.default(180),
      'entra-certificate': days.default(365),
    }).default({}),
    /** Principals allowed CAN_USE on Databricks tokens; anything else is a finding. */
    patCreationAllowList: z.array(z.string()).default(['admins']),
    overrides: z.array(policyOverrideSchema).default([]),
  }).default({}),
  scanner: z.object({
    schedule: z.string().default('0 */6 * * *'),
    timezone: z.string().optional(),
    scanOnStart: z.boolean().default(true),
    concurrencyPerHost: z.number().int().min(1).max(32).default(4),
    /** Run scans on a thread of their own, so the bot answers clicks while a scan runs (needs a store file or Azure Tables). */
    thread: z.boolean().default(true),
    /** Heap limit of the scan thread; past it the scan fails with an error naming this setting. */
    threadMemoryMb: z.number().int().min(64).max(16_384).default(512),
    /**
     * How long the scan thread stays after a scan: long enough for a `/scan` soon after, short against the hours between
     * scheduled scans (then its memory goes back to the system); 0 ends it with each scan.
     */
    threadIdleSeconds: z.number({ invalid_type_error: 'scanner.threadIdleSeconds must be a whole number of seconds from 0 to 86400 (0: the scan thread ends with each scan)' })
      .int('scanner.threadIdleSeconds must be a whole number of seconds from 0 to 86400 (0: the scan thread ends with each scan)')
      .min(0, 'scanner.threadIdleSeconds must be a whole number of seconds from 0 to 86400 (0: the scan thread ends with each scan)')
      .max(86_400, 'scanner.threadIdleSeconds must be at most 86400 (a day); 0 ends the scan thread with each scan').default(300),
    /**
     * Threads that run the sources' calls and parsing beside the scan thread (0: the scan thread does it all); unset:
     * one less than the machine's cores, at most 2 (src/scanner/thread/fetch-protocol.ts).
     */
    fetchThreads: z.number({ invalid_type_error: 'scanner.fetchThreads must be a whole number from 0 to 16 (0: no fetch threads)' })
      .int('scanner.fetchThreads must be a whole number from 0 to 16 (0: no fetch threads)')
      .min(0, 'scanner.fetchThreads must be a whole number from 0 to 16 (0: no fetch threads)')
      .max(16, 'scanner.fetchThreads must be at most 16 — each thread is a V8 isolate of its own (tens of MB)').optional(),
    /** Per-host request budgets; each API's default comes from its published limit (src/providers/host-gate.ts). */
    requestLimits: z.object({
      keyVault: requestLimitSchema,
      databricks: requestLimitSchema,
      graph: requestLimitSchema,
      arm: requestLimitSchema,
    }).default({}),
  }).default({}),
  teams: z.object({
    channels: z.array(channelSchema).default([]),
    defaultChannel: z.string().optional(),
  }).default({}),
  alerts: z.object({
    /** Per-credential cards for credentials at or below this many days (the rest go in the digest). */
    cardAtDays: days.default(14),
    /** Findings at or above this severity also get their own card. */
    cardSeverity: z.enum(['low', 'medium', 'high', 'critical']).default('high'),
    mentionAtDays: days.default(7),
    snoozeMaxDays: days.default(30),
    /** Who may Acknowledge / Snooze besides approvers: Entra object ids and group ids. */
    responders: z.object({
      users: z.array(z.string()).default([]),
      groups: z.array(z.string()).default([]),
    }).default({}),
    ownerNotices: z.boolean().default(false),
    digest: z.boolean().default(true),
  }).default({}),
  approvals: z.object({
    users: z.array(z.string()).default([]),
    groups: z.array(z.string()).default([]),
    groupCacheMinutes: z.number().positive().default(5),
    nonceTtlMinutes: z.number().positive().default(30),
    /** A revoke of something used within this many days needs a second approver or an override reason. */
    revokeRecentUseDays: days.default(7),
    highRisk: z.array(z.object({
      action: z.enum(APPROVAL_ACTIONS),
      scopes: z.array(z.string()).default([]),
      approvals: z.number().int().min(2).max(5).default(2),
    })).default([]),
  }).default({}),
  workflows: z.object({
    graceHours: z.number().min(0).default(24),
    patLifetimeDays: days.default(90),
    entraSecretLifetimeDays: days.default(180),
    verifyTimeoutSeconds: z.number().positive().default(120),
    jit: z.object({
      maxHours: z.number().positive().default(24),
      defaultNodeType: z.string().default('Standard_DS3_v2'),
      maxCapacity: z.number().int().positive().default(10),
      vault: z.string().optional(),
      /** Entra application id of the service principal JIT tokens are created for (default: azure.credential.clientId). */
      applicationId: z.string().optional(),
    }).default({}),
  }).default({}),
  /** Standing auto-rotation rules (issue 11): defaults for rules approved in Teams. */
  autoRotation: autoRotationSchema,
  /** Governance remedies and the governance report (issue 13). */
  governance: governanceSchema,
  /** Pipelines (Data Factory) that ask for their own JIT PAT + pool over POST /api/jit, authenticated by Entra bearer tokens. */
  pipelines: z.object({
    /** Audiences the API accepts: Keywarden's application ID URI (v1 tokens) and/or its client id (v2 tokens). */
    audiences: z.array(z.string().min(1)).default([]),
    /** Tenant the callers' tokens must come from (default azure.tenantId). */
    tenantId: z.string().optional(),
    /** Where the tenant's signing keys are published (default azure.authorityHost, else https://login.microsoftonline.com). */
    authorityHost: url.optional(),
    /** Support channel (teams.channels name) that gets the grant threads (default: the default support channel). */
    channel: z.string().optional(),
    callers: z.array(pipelineCallerSchema).default([]),
  }).default({}),
  sandbox: z.object({
    playground: z.boolean().default(true),
    playgroundPort: z.number().int().min(0).max(65535).default(56150),
    /** Where the sandbox keeps its CA and state. */
    dataDir: z.string().default('./data/sandbox'),
  }).default({}),
});

export type KeywardenConfig = z.infer<typeof configSchema>;
export type WorkspaceConfig = z.infer<typeof workspaceSchema>;
export type VaultConfig = z.infer<typeof vaultSchema>;
export type ChannelConfig = z.infer<typeof channelSchema>;
export type PipelineCallerConfig = z.infer<typeof pipelineCallerSchema>;
