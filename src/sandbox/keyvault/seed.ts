import { randomBytes } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { DAY_MS } from '../../clock.js';
import { KV_TAGS, MANAGED_BY_VALUE } from '../../domain/credential.js';
import type { KeyVaultEmulatorHandle, SecretVersionView } from './emulator.js';

/** Seeds the Key Vault part of docs/sandbox-estate.md: kv-prod and kv-dev with the secrets the tests expect. */

export const SANDBOX_VAULTS = ['kv-prod', 'kv-dev'] as const;

/** A PAT created by the Databricks seed (only the fields the vault needs). */
export interface SeededPat {
  /** Workspace name, e.g. "ws-prod". */
  workspace: string;
  comment: string;
  tokenId: string;
  /** The dapi… value the secret holds. */
  value: string;
  /** Epoch ms, or -1 for never. */
  expiryTime: number;
}

/** The etl-ingest client secret created by the Entra seed. */
export interface SeededEntraSecret {
  keyId: string;
  value: string;
  /** Epoch ms or an ISO date (Graph's form). */
  endDateTime: number | string;
  /** The application's appId (also the scope of its credential ids). */
  appId: string;
}

export interface KeyVaultSeedInput {
  clock: Clock;
  databricks: { tokens: SeededPat[] };
  entra: { etlSecret: SeededEntraSecret };
}

export interface SeededSecret {
  vault: string;
  name: string;
  version: string;
  /** The secret's id as the service reports it. */
  id: string;
  exp?: number;
}

export interface KeyVaultSeedResult {
  /** Vault name → URL. */
  vaults: Record<string, string>;
  secrets: SeededSecret[];
}

export class KeyVaultSeedError extends Error {
  readonly code = 'KeyVaultSeedError';
}

const randomValue = (): string => randomBytes(24).toString('base64url');

function patTags(pat: SeededPat): Record<string, string> {
  return {
    [KV_TAGS.managedBy]: MANAGED_BY_VALUE,
    [KV_TAGS.credentialKind]: 'databricks-pat',
    [KV_TAGS.credentialId]: pat.tokenId,
    [KV_TAGS.workspace]: pat.workspace,
  };
}

function toEpochMs(value: number | string, what: string): number {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) throw new KeyVaultSeedError(`${what}: "${String(value)}" is not a date; pass epoch ms or an ISO date.`);
  return ms;
}

/** Writes the seeded secrets straight into the emulator (so creation dates can lie in the past). */
export function seedKeyVault(handle: KeyVaultEmulatorHandle, input: KeyVaultSeedInput): KeyVaultSeedResult {
  const now = input.clock.now();
  const days = (n: number): number => now + n * DAY_MS;
  for (const name of SANDBOX_VAULTS) {
    if (!handle.vaults.has(name)) {
      throw new KeyVaultSeedError(`The Key Vault emulator has no vault "${name}": start it with vaults [${SANDBOX_VAULTS.map((v) => `{ name: '${v}' }`).join(', ')}].`);
    }
  }
  const pat = (workspace: string, comment: string): SeededPat => {
    const found = input.databricks.tokens.find((t) => t.workspace === workspace && t.comment === comment);
    if (!found) {
      throw new KeyVaultSeedError(`No seeded Databricks token "${comment}" in ${workspace}: seed Databricks before Key Vault and pass its tokens.`);
    }
    return found;
  };
  // The secret holds the PAT until it expires; a never-expiring PAT gives a secret without exp.
  const patExp = (t: SeededPat): number | undefined => (t.expiryTime > 0 ? t.expiryTime : undefined);

  const etl = pat('ws-prod', 'adf-etl');
  const reporting = pat('ws-prod', 'reporting');
  const bob = pat('ws-prod', 'bob-jdbc');
  const devCi = pat('ws-dev', 'dev-ci');
  // Optional: a seed of hand-picked tokens (tests) may leave the auto-rotation pair out.
  const seeded = (comment: string) => input.databricks.tokens.find((t) => t.workspace === 'ws-analytics' && t.comment === comment);
  const analytics = [seeded('analytics-nightly'), seeded('analytics-adhoc')].filter((t): t is SeededPat => t !== undefined);
  const entra = input.entra.etlSecret;

  const plan: Array<{ vault: string; name: string; value: string; exp?: number; tags?: Record<string, string>; created: number; contentType?: string }> = [
    { vault: 'kv-prod', name: 'adb-prod-etl-token', value: etl.value, exp: patExp(etl), tags: patTags(etl), created: days(-20) },
    { vault: 'kv-prod', name: 'adb-prod-reporting-token', value: reporting.value, exp: days(60), tags: patTags(reporting), created: days(-30) },
    { vault: 'kv-prod', name: 'adb-prod-bob-pipeline', value: bob.value, exp: days(14), created: days(-40) },
    {
      vault: 'kv-prod', name: 'etl-ingest-client-secret', value: entra.value,
      exp: toEpochMs(entra.endDateTime, 'entra.etlSecret.endDateTime'), created: days(-10),
      tags: { [KV_TAGS.credentialKind]: 'entra-password', [KV_TAGS.applicationId]: entra.appId, [KV_TAGS.credentialId]: entra.keyId },
    },
    { vault: 'kv-prod', name: 'sql-admin-password', value: randomValue(), exp: days(1), created: days(-29) },
    { vault: 'kv-prod', name: 'storage-account-key', value: randomValue(), exp: days(-3), created: days(-33) },
    { vault: 'kv-dev', name: 'adb-dev-ci-token', value: devCi.value, exp: patExp(devCi), tags: patTags(devCi), created: days(-6) },
    ...analytics.map((t) => ({ vault: 'kv-prod', name: `adb-${t.comment}-token`, value: t.value, exp: patExp(t), tags: patTags(t), created: days(-78) })),
    { vault: 'kv-dev', name: 'api-key-no-expiry', value: randomValue(), created: days(-45) },
    { vault: 'kv-dev', name: 'old-shared-secret', value: randomValue(), exp: days(120), created: days(-200) },
    { vault: 'kv-dev', name: 'partner-webhook-key', value: randomValue(), exp: days(30), created: days(-60) },
  ];

  const secrets: SeededSecret[] = plan.map((p) => {
    const vault = handle.vault(p.vault);
    const v: SecretVersionView = vault.seedSecret(p.name, {
      value: p.value, exp: p.exp, tags: p.tags, contentType: p.contentType, created: p.created, updated: p.created,
    });
    return { vault: p.vault, name: p.name, version: v.version, id: `${vault.url}/secrets/${p.name}/${v.version}`, exp: p.exp };
  });
  return { vaults: handle.urls(), secrets };
}
