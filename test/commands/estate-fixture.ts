import { DAY_MS } from '../../src/clock.js';
import type { Credential, CredentialKind, EstateInventory } from '../../src/domain/credential.js';
import { credentialId } from '../../src/domain/credential.js';
import type { InventorySource } from '../../src/scanner/scanner.js';

/**
 * A plain-data copy of docs/sandbox-estate.md for command and card tests that need no HTTP. The same cases are
 * checked through the real providers and emulators in test/scanner/estate.test.ts.
 */

type Spec = { name: string; kind: CredentialKind; scope: string; id?: string; exp: number | null; created?: number; lastUsed?: number | null; owner?: Credential['owner']; attributes?: Credential['attributes'] };

const bob = { name: 'bob.dev@contoso.com', kind: 'user' as const, active: true };
const spEtl = { name: 'sp-etl', kind: 'service-principal' as const, active: true };

export function seedLikeSources(now: number): InventorySource[] {
  const d = (n: number) => now + n * DAY_MS;
  const mk = (s: Spec): Credential => ({
    id: credentialId(s.kind, s.scope, s.id ?? s.name), kind: s.kind, nativeId: s.id ?? s.name, name: s.name,
    where: { estate: s.kind === 'databricks-pat' ? 'databricks' : s.kind === 'keyvault-secret' ? 'keyvault' : 'entra', scope: s.scope, label: s.scope },
    owner: s.owner, createdAt: s.created ?? d(-5), expiresAt: s.exp, lastUsedAt: s.lastUsed, heldIn: [], consumers: [], attributes: s.attributes ?? {},
  });
  const pat = (scope: string, name: string, exp: number | null, extra: Partial<Spec> = {}) => mk({ name, kind: 'databricks-pat', scope, exp, id: `tok-${name}`, owner: spEtl, attributes: { comment: name }, ...extra });
  const sec = (scope: string, name: string, exp: number | null, extra: Partial<Spec> = {}) => mk({ name, kind: 'keyvault-secret', scope, exp, ...extra });
  const tags = (ws: string, name: string) => ({ 'tag:credential-kind': 'databricks-pat', 'tag:workspace': ws, 'tag:credential-id': `tok-${name}` });
  const entra = (app: string, exp: number, extra: Partial<Spec> = {}) => mk({ name: `${app} / ${app}-secret`, kind: 'entra-password', scope: 'contoso', id: `key-${app}`, exp, owner: { name: app, kind: 'application' }, attributes: { appId: `app-${app}` }, ...extra });
  const inventories: EstateInventory[] = [
    { estate: 'databricks', scope: 'ws-prod', host: 'https://ws-prod', facts: {}, credentials: [
      pat('ws-prod', 'adf-etl', d(7)), pat('ws-prod', 'reporting', d(30)), pat('ws-prod', 'bob-jdbc', d(14), { owner: bob }),
      pat('ws-prod', 'legacy-never', null, { owner: { name: 'alice.admin@contoso.com', kind: 'user', active: true } }),
      pat('ws-prod', 'carol-notebook', d(90), { owner: { name: 'carol.former@contoso.com', kind: 'user', active: false }, created: d(0) }),
      pat('ws-prod', 'stale-unused', d(60), { owner: bob, created: d(-200), lastUsed: d(-75) }),
      pat('ws-prod', 'expired-etl', d(-2)),
    ] },
    { estate: 'databricks', scope: 'ws-dev', host: 'https://ws-dev', facts: { maxTokenLifetimeDays: 90, tokenUsers: [{ principal: 'users', type: 'group' }] }, credentials: [
      pat('ws-dev', 'dev-ci', d(1)), pat('ws-dev', 'long-lived', d(355), { owner: bob, created: d(-10) }),
    ] },
    { estate: 'databricks', scope: 'ws-analytics', host: 'https://ws-analytics', facts: {}, credentials: [pat('ws-analytics', 'analytics-sp', d(45))] },
    { estate: 'keyvault', scope: 'kv-prod', host: 'https://kv-prod', facts: {}, credentials: [
      sec('kv-prod', 'adb-prod-etl-token', d(7), { attributes: tags('ws-prod', 'adf-etl') }),
      sec('kv-prod', 'adb-prod-reporting-token', d(60), { attributes: tags('ws-prod', 'reporting') }),
      sec('kv-prod', 'adb-prod-bob-pipeline', d(14)),
      sec('kv-prod', 'etl-ingest-client-secret', d(14), { attributes: { 'tag:credential-kind': 'entra-password', 'tag:app-id': 'app-etl-ingest', 'tag:credential-id': 'key-etl-ingest' } }),
      sec('kv-prod', 'sql-admin-password', d(1)), sec('kv-prod', 'storage-account-key', d(-3)),
    ] },
    { estate: 'keyvault', scope: 'kv-dev', host: 'https://kv-dev', facts: {}, credentials: [
      sec('kv-dev', 'adb-dev-ci-token', d(1), { attributes: tags('ws-dev', 'dev-ci') }), sec('kv-dev', 'api-key-no-expiry', null),
      sec('kv-dev', 'old-shared-secret', d(200), { created: d(-200) }), sec('kv-dev', 'partner-webhook-key', d(30)),
    ] },
    { estate: 'entra', scope: 'contoso', host: 'https://graph', facts: {}, credentials: [
      entra('etl-ingest', d(14)), entra('reporting-svc', d(30)), entra('keywarden-bot', d(90)), entra('legacy-crm', d(-5)),
      mk({ name: 'partner-sftp / cert', kind: 'entra-certificate', scope: 'contoso', id: 'cert-partner', exp: d(7), owner: { name: 'partner-sftp', kind: 'application' } }),
      entra('hr-sync', d(1)),
    ] },
    { estate: 'datafactory', scope: 'adf-prod', host: 'https://arm', facts: {}, credentials: [], consumers: [
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_Prod', pipelines: ['bob-reports'], secret: { vault: 'kv-prod', name: 'adb-prod-bob-pipeline' } },
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_ETL', pipelines: ['nightly-etl'], secret: { vault: 'kv-prod', name: 'adb-prod-etl-token' } },
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_DevCI', pipelines: ['dev-ci'], secret: { vault: 'kv-dev', name: 'adb-dev-ci-token' } },
    ] },
  ];
  return inventories.map((inv) => ({ estate: inv.estate, scope: inv.scope, host: inv.host, scan: async () => inv }));
}

export const SEED_MAPPINGS = [{ secret: 'kv-prod/adb-prod-bob-pipeline', holds: { kind: 'databricks-pat' as const, scope: 'ws-prod', comment: 'bob-jdbc' } }];

/**
 * The names /expiring 14d must list, by blast radius × urgency (secrets that mirror a held credential fold into its row):
 * bob-jdbc (14 d, read by a Data Factory pipeline) ranks above partner-sftp (7 d, no known consumer).
 */
export const EXPIRING_14D = [
  'legacy-crm / legacy-crm-secret', 'storage-account-key', 'expired-etl',
  'dev-ci', 'hr-sync / hr-sync-secret', 'sql-admin-password',
  'adf-etl', 'bob-jdbc',
  'partner-sftp / cert', 'etl-ingest / etl-ingest-secret',
];
