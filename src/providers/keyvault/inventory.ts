import type { AttributeValue, Credential, EstateInventory } from '../../domain/credential.js';
import { credentialId, KV_TAGS } from '../../domain/credential.js';
import type { KeyVaultSecrets, SecretInfo } from './client.js';
import { KeyVaultError } from './errors.js';
import { mapBounded } from '../bounded.js';

/** A vault's secrets as Credentials, from properties only: a scan never reads a secret value. */

export interface KeyVaultInventorySource {
  estate: 'keyvault';
  scope: string;
  host: string;
  scan(options?: { signal?: AbortSignal }): Promise<EstateInventory>;
}

export interface KeyVaultInventoryOptions {
  vault: { name: string; url: string };
  secrets: KeyVaultSecrets;
  /** Parallel version listings per vault (the service allows thousands of reads per 10 s; be polite anyway). */
  concurrency?: number;
}

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

  const toCredential = (current: SecretInfo, versions: SecretInfo[] | undefined): Credential => {
    const attributes: Record<string, AttributeValue> = {
      version: versions?.[versions.length - 1]?.version ?? null,
      contentType: current.contentType ?? null,
      updatedAt: current.updatedAt ?? null,
      notBefore: current.notBefore,
      managed: current.managed,
    };
    if (versions) {
      attributes.versionCount = versions.length;
      attributes.disabledVersions = versions.filter((v) => !v.enabled).length;
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

  return {
    estate: 'keyvault',
    scope: vault.name,
    host,
    async scan({ signal } = {}) {
      const listed = await secrets.listSecretProperties({ signal });
      // Certificate-backed secrets belong to their certificate; they are rotated (and watched) as certificates.
      const own = listed.filter((s) => !s.managed);
      const credentials = await mapBounded(own, options.concurrency ?? 4, async (s) => {
        let versions: SecretInfo[] | undefined;
        try {
          versions = await secrets.listVersions(s.name, { signal });
        } catch (err) {
          // Deleted between the two listings: report what the first listing said.
          if (!(err instanceof KeyVaultError && err.code === 'SecretNotFound')) throw err;
        }
        return toCredential(s, versions);
      });
      return { estate: 'keyvault', scope: vault.name, host, credentials, facts: {} };
    },
  };
}
