/**
 * The Key Vault half of every workflow: write a new version tagged with the job id (found again by that tag after a
 * crash), and point the secret back at the previous value (rollback / compensation) without ever disabling the only
 * copy of a working credential.
 */
import { KV_TAGS, MANAGED_BY_VALUE } from '../domain/credential.js';
import type { KeyVaultSecrets, SecretInfo } from '../providers/keyvault/client.js';
import type { JobFacts } from './types.js';

export const RESTORED_BY_TAG = 'restored-by';

/** The newest version carrying tag=value, if any (versions come oldest first). */
export async function findVersionTagged(kv: KeyVaultSecrets, name: string, tag: string, value: string, signal?: AbortSignal): Promise<SecretInfo | undefined> {
  const versions = await listVersionsOrEmpty(kv, name, signal);
  return [...versions].reverse().find((v) => v.tags[tag] === value);
}

/** Versions, or none when the secret does not exist yet (a JIT secret). */
export async function listVersionsOrEmpty(kv: KeyVaultSecrets, name: string, signal?: AbortSignal): Promise<SecretInfo[]> {
  try {
    return await kv.listVersions(name, { signal });
  } catch (err) {
    if ((err as { code?: string }).code === 'SecretNotFound') return [];
    throw err;
  }
}

/** The latest enabled version: what consumers reading "latest" get. */
export function currentOf(versions: SecretInfo[]): SecretInfo | undefined {
  return versions[versions.length - 1];
}

/** Keywarden's tags for a credential it wrote, on top of whatever tags the secret already had. */
export function rotationTags(base: Record<string, string>, input: { kind: string; credentialId: string; rotationId: string; workspace?: string; appId?: string }): Record<string, string> {
  const tags: Record<string, string> = { ...base };
  delete tags[RESTORED_BY_TAG];
  tags[KV_TAGS.managedBy] = MANAGED_BY_VALUE;
  tags[KV_TAGS.credentialKind] = input.kind;
  tags[KV_TAGS.credentialId] = input.credentialId;
  tags[KV_TAGS.rotationId] = input.rotationId;
  if (input.workspace) tags[KV_TAGS.workspace] = input.workspace;
  if (input.appId) tags[KV_TAGS.applicationId] = input.appId;
  return tags;
}

/**
 * Makes the previous value current again: written as a new version (so "latest" readers get it at once) tagged
 * restored-by=<jobId>, then the rotation's version is disabled. Idempotent by that tag.
 */
export async function restorePreviousVersion(kv: KeyVaultSecrets, name: string, input: {
  jobId: string;
  /** The version the rotation wrote (to disable). */
  rotationVersion?: string;
  /** The version that was current before the rotation (its value is restored). */
  previousVersion?: string;
  signal?: AbortSignal;
}): Promise<JobFacts> {
  const facts: JobFacts = {};
  const versions = await listVersionsOrEmpty(kv, name, input.signal);
  const current = currentOf(versions);
  const restored = [...versions].reverse().find((v) => v.tags[RESTORED_BY_TAG] === input.jobId);
  const rotationIsCurrent = input.rotationVersion !== undefined && current?.version === input.rotationVersion;
  if (!restored && rotationIsCurrent && input.previousVersion) {
    const previous = await kv.readSecretValue(name, input.previousVersion, { signal: input.signal });
    const written = await kv.setSecret(name, previous.value, {
      signal: input.signal,
      tags: { ...previous.properties.tags, [RESTORED_BY_TAG]: input.jobId },
      expiresOn: previous.properties.expiresAt ?? undefined,
      contentType: previous.properties.contentType,
    });
    facts.restoredVersion = written.version ?? null;
  } else if (restored) {
    facts.restoredVersion = restored.version ?? null;
  }
  const rotation = input.rotationVersion ? versions.find((v) => v.version === input.rotationVersion) : undefined;
  // Disable the rotation's version only once something else is current: never disable the only working copy.
  const currentNow = facts.restoredVersion !== undefined || !rotationIsCurrent;
  if (rotation && rotation.enabled && currentNow) {
    await kv.updateSecretProperties(name, rotation.version!, { enabled: false, signal: input.signal });
    facts.disabledVersion = rotation.version ?? null;
  }
  return facts;
}

/** Last 4 characters of an id, as people quote it: "…abcd". */
export function tail(id: string | number | boolean | null | undefined): string {
  return typeof id === 'string' && id.length > 0 ? `…${id.slice(-4)}` : '…';
}

/** Short form of a Key Vault version id for messages. */
export function shortVersion(version: string | number | boolean | null | undefined): string {
  return typeof version === 'string' ? version.slice(0, 8) : 'unknown';
}
