import type { AttributeValue, Credential, EstateInventory } from '../../domain/credential.js';
import { collectPages, createPagedPool, type StreamInventory } from '../pages.js';
import { credentialId, KV_TAGS } from '../../domain/credential.js';
import type { KeyVaultSecrets, SecretInfo } from './client.js';
import { KeyVaultError } from './errors.js';
import { VersionsSeenCache, type VersionsSeen } from './versions-seen.js';
import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';

/** A vault's secrets as Credentials, from properties only: a scan never reads a secret value. */

export interface KeyVaultInventorySource {
  estate: 'keyvault';
  scope: string;
  host: string;
  scan(options?: { signal?: AbortSignal }): Promise<EstateInventory>;
  /** The same, one page of the secret list (25 secrets, the service's page) at a time. */
  stream: StreamInventory;
  /** Without version listings: one call at a time and one small page in hand. */
  light: boolean;
}

export interface KeyVaultInventoryOptions {
  vault: { name: string; url: string };
  secrets: KeyVaultSecrets;
  /** Version listings in flight per vault (default 4; the scan passes the vault gate's window, from the published limit). */
  concurrency?: number;
  clock?: Clock;
  /**
   * How long what a secret's version listing said is reused while the secret list shows its `updated` unchanged
   * (default 24 h): a new version always changes it; an older version disabled or expired in place does not.
   */
  versionsReuseMs?: number;
  /**
   * Also list every secret's versions (one more call per secret, reused as above): the current version's id, the
   * version count and the disabled versions become attributes. Off by default: the secret list already carries the
   * current version's dates, state and tags, which is all policy and the cards use, and a vault's 4,000 calls per
   * 10 s are shared with the applications that read its secrets.
   */
  versionHistory?: boolean;
}

const DAY_MS = 86_400_000;

/**
 * A flat copy of its own: names and versions parsed out of an id URL are slices that keep the whole URL alive in the
 * cache (and `' ' + s` then slice keeps two strings). Vault names and versions are ASCII, so the round trip is exact.
 */
const own = (text: string): string => Buffer.from(text, 'utf8').toString('utf8');
/** Secrets per page handed to the scan: one page of the service's listing. */
const PAGE = 25;

/** The credential a secret holds according to Keywarden's tags (credential ids use the app's appId as scope). */
export function holdsFromTags(tags: Record<string, string>): string | undefined {
  const kind = tags[KV_TAGS.credentialKind];
  const nativeId = tags[KV_TAGS.credentialId];
  if (!nativeId) return undefined;
  if (kind === 'databricks-pat') {
    const workspace = tags[KV_TAGS.workspace];
    return workspace ? credentialId('databricks-pat', workspace, nativeId) : undefined;
  }
  if (kind === 'entra-password' || kind === 'entra-certificate') {
    const appId = tags[KV_TAGS.applicationId];
    return appId ? credentialId(kind, appId, nativeId) : undefined;
  }
  return undefined;
}


export function createKeyVaultInventory(options: KeyVaultInventoryOptions): KeyVaultInventorySource {
  const { vault, secrets } = options;
  const host = vault.url.replace(/\/+$/, '');

  const clock = options.clock ?? systemClock;
  const reuseMs = options.versionsReuseMs ?? DAY_MS;
  // What each secret's last version listing said (packed: a few numbers and the version's bytes per secret).
  const seen = new VersionsSeenCache();

  const toCredential = (current: SecretInfo, versions: Pick<VersionsSeen, 'current' | 'count' | 'disabled'> | undefined): Credential => {
    const attributes: Record<string, AttributeValue> = {
      version: versions?.current ?? null,
      contentType: current.contentType ?? null,
      updatedAt: current.updatedAt ?? null,
      notBefore: current.notBefore,
      managed: current.managed,
    };
    if (versions) {
      attributes.versionCount = versions.count;
      attributes.disabledVersions = versions.disabled;
    }
    // A disabled current version breaks every consumer that reads "latest": keep it visible, but as state, not expiry.
    if (!current.enabled) attributes.currentVersionDisabled = true;
    for (const [k, v] of Object.entries(current.tags)) attributes[`tag:${k}`] = v;
    return {
      id: credentialId('keyvault-secret', vault.name, current.name),
      kind: 'keyvault-secret',
      nativeId: current.name,
      name: current.name,
      where: { estate: 'keyvault', scope: vault.name, host, label: vault.name },
      createdAt: current.createdAt,
      expiresAt: current.expiresAt,
      enabled: current.enabled,
      heldIn: [],
      holds: holdsFromTags(current.tags),
      consumers: [],
      attributes,
    };
  };

  /** Reuses the last version listing while `updated` (and `created`) in the secret list are what they were. */
  const versionsOf = async (s: SecretInfo, signal: AbortSignal | undefined): Promise<VersionsSeen | undefined> => {
    const now = clock.now();
    const last = seen.get(s.name);
    if (last && s.updatedAt !== undefined && last.updatedAt === s.updatedAt && last.createdAt === s.createdAt && now - last.seenAt < reuseMs) return last;
    let versions: SecretInfo[];
    try {
      versions = await secrets.listVersions(s.name, { signal });
    } catch (err) {
      // Deleted between the two listings: report what the first listing said.
      if (!(err instanceof KeyVaultError && err.code === 'SecretNotFound')) throw err;
      seen.delete(s.name);
      return undefined;
    }
    const current = versions[versions.length - 1]?.version;
    const summary: VersionsSeen = {
      updatedAt: s.updatedAt ?? Number.NaN, createdAt: s.createdAt, seenAt: now,
      current, count: versions.length, disabled: versions.filter((v) => !v.enabled).length,
    };
    if (s.updatedAt !== undefined) seen.set(own(s.name), summary);
    return summary;
  };

  const stream: StreamInventory = async ({ signal }, onPage) => {
    // Version listings start while later pages of the secret list are still coming; the list waits when they lag.
    const pool = createPagedPool<Credential>(options.concurrency ?? 4, PAGE, onPage);
    const names = new Set<string>();
    await secrets.eachSecretProperties(async (s) => {
      // Certificate-backed secrets belong to their certificate; they are rotated (and watched) as certificates.
      if (s.managed) return;
      names.add(s.name);
      await pool.add(async () => toCredential(s, options.versionHistory ? await versionsOf(s, signal) : undefined));
    }, { signal });
    await pool.done();
    // Forget secrets that are gone, so the cache stays the size of the vault.
    seen.keepOnly(names);
    return { estate: 'keyvault', scope: vault.name, host, facts: {} };
  };

  return {
    estate: 'keyvault',
    scope: vault.name,
    host,
    light: !options.versionHistory,
    stream,
    scan: ({ signal } = {}) => collectPages(stream, { signal }),
  };
}
