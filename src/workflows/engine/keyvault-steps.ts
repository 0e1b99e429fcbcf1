/**
 * The Key Vault half of every workflow: write a new version tagged with the job id (found again by that tag after a
 * crash), and point the secret back at the previous value (rollback / compensation) without ever disabling the only
 * copy of a working credential.
 */
import { KV_TAGS, MANAGED_BY_VALUE } from '../../domain/credential.js';
import type { KeyVaultSecrets, SecretInfo } from '../../providers/keyvault/client.js';
import type { JobFacts } from '../../domain/job.js';

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

/** The newest version not written by this rotation: what was current before it (the value a rollback restores). */
export function versionBefore(versions: SecretInfo[], rotationId: string): SecretInfo | undefined {
  return [...versions].reverse().find((v) => v.tags[KV_TAGS.rotationId] !== rotationId);
}

/** Whether consumers reading "latest" get this rotation's new credential: the version checked, and its value when read. */
export type PublishedCheck =
  | { ok: true; version: string | undefined; value: string | undefined }
  | { ok: false; reason: string };

/**
 * Checks what Key Vault's current version actually holds: it must be enabled, carry this rotation's id, name the new
 * credential, and (when the new value is known) hold that very value. A stalled runner's late write lands as a newer
 * version of the same rotation naming another (revoked) credential: this is where it is caught.
 * The value is read only when asked for or compared, and never leaves this function except to the caller's check.
 */
export async function checkPublished(kv: KeyVaultSecrets, name: string, input: {
  rotationId: string;
  credentialId: string;
  /** The new credential's value, when this process still holds it. */
  expectedValue?: string;
  /** Return the current version's value (the test step uses it against the provider). */
  readValue?: boolean;
  signal?: AbortSignal;
}): Promise<PublishedCheck> {
  const current = currentOf(await listVersionsOrEmpty(kv, name, input.signal));
  if (!current) return { ok: false, reason: `${name} has no version at all` };
  const which = `the current version ${shortVersion(current.version)}`;
  if (!current.enabled) return { ok: false, reason: `${which} is disabled` };
  const rotation = current.tags[KV_TAGS.rotationId];
  if (rotation !== input.rotationId) return { ok: false, reason: `${which} was not written by this rotation (${rotation ? `rotation ${rotation}` : 'no rotation-id tag'})` };
  const held = current.tags[KV_TAGS.credentialId];
  if (held !== input.credentialId) return { ok: false, reason: `${which} holds credential ${tail(held ?? null)}, not the new ${tail(input.credentialId)} (a late write by a runner that lost the job)` };
  if (input.expectedValue === undefined && !input.readValue) return { ok: true, version: current.version, value: undefined };
  let value: string;
  try {
    value = (await kv.readSecretValue(name, current.version, { signal: input.signal })).value;
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Disabled or removed between the listing and the read: not what consumers get either.
    if (code === 'SecretDisabled' || code === 'SecretNotFound') return { ok: false, reason: `${which} can no longer be read (${code})` };
    throw err;
  }
  if (input.expectedValue !== undefined && value !== input.expectedValue) return { ok: false, reason: `${which} holds a value other than the new credential's` };
  return { ok: true, version: current.version, value };
}

/** The value of the newest enabled version this rotation wrote for the new credential (to publish it again). */
export async function valueWrittenFor(kv: KeyVaultSecrets, name: string, input: { rotationId: string; credentialId: string; signal?: AbortSignal }): Promise<string | undefined> {
  const versions = await listVersionsOrEmpty(kv, name, input.signal);
  const own = [...versions].reverse().find((v) => v.enabled && v.tags[KV_TAGS.rotationId] === input.rotationId && v.tags[KV_TAGS.credentialId] === input.credentialId);
  if (!own?.version) return undefined;
  return (await kv.readSecretValue(name, own.version, { signal: input.signal })).value;
}

/**
 * A current version of this rotation that names another credential: a late write by a runner that lost the job,
 * landed after verification. Described, or undefined (a newer version by someone else is theirs, not ours to undo).
 */
export async function lateRotationWrite(kv: KeyVaultSecrets, name: string, input: { rotationId: string; credentialId: string; signal?: AbortSignal }): Promise<string | undefined> {
  const current = currentOf(await listVersionsOrEmpty(kv, name, input.signal));
  if (!current || current.tags[KV_TAGS.rotationId] !== input.rotationId) return undefined;
  const held = current.tags[KV_TAGS.credentialId];
  if (held === input.credentialId) return undefined;
  return `Key Vault's current version ${shortVersion(current.version)} holds credential ${tail(held ?? null)}, not the new ${tail(input.credentialId)} (a late write by a runner that lost the job)`;
}

/** Disables older versions this rotation wrote (a late write's revoked credential); never the one just written. */
export async function disableStaleRotationVersions(kv: KeyVaultSecrets, name: string, input: { rotationId: string; keep: string | undefined; versions: SecretInfo[]; signal?: AbortSignal }): Promise<number> {
  let disabled = 0;
  for (const v of input.versions) {
    if (v.tags[KV_TAGS.rotationId] !== input.rotationId || !v.enabled || !v.version || v.version === input.keep) continue;
    await kv.updateSecretProperties(name, v.version, { enabled: false, signal: input.signal });
    disabled += 1;
  }
  return disabled;
}

/**
 * Makes the previous value current again: written as a new version (so "latest" readers get it at once) tagged
 * restored-by=<jobId>, then the rotation's version is disabled. Idempotent by that tag.
 */
export async function restorePreviousVersion(kv: KeyVaultSecrets, name: string, input: {
  jobId: string;
  /** The version the rotation wrote (to disable). */
  rotationVersion?: string;
  /** The rotation's job id: every version tagged with it counts as the rotation's (a late write included). */
  rotationId?: string;
  /** The version that was current before the rotation (its value is restored). */
  previousVersion?: string;
  signal?: AbortSignal;
}): Promise<JobFacts> {
  const facts: JobFacts = {};
  const versions = await listVersionsOrEmpty(kv, name, input.signal);
  const current = currentOf(versions);
  const restored = [...versions].reverse().find((v) => v.tags[RESTORED_BY_TAG] === input.jobId);
  const isRotations = (v: SecretInfo) => (input.rotationVersion !== undefined && v.version === input.rotationVersion)
    || (input.rotationId !== undefined && v.tags[KV_TAGS.rotationId] === input.rotationId && v.tags[RESTORED_BY_TAG] === undefined);
  const rotationIsCurrent = current !== undefined && isRotations(current);
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
  // Disable the rotation's versions only once something else is current: never disable the only working copy.
  const currentNow = facts.restoredVersion !== undefined || !rotationIsCurrent;
  if (!currentNow) return facts;
  let others = 0;
  for (const v of versions) {
    if (!isRotations(v) || !v.enabled || !v.version) continue;
    await kv.updateSecretProperties(name, v.version, { enabled: false, signal: input.signal });
    if (v.version === input.rotationVersion) facts.disabledVersion = v.version;
    else others += 1;
  }
  if (others) facts.staleVersionsDisabled = others;
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
