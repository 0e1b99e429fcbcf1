import { HOUR_MS } from '../clock.js';
import { credentialId, type Credential, type CredentialKind } from '../domain/credential.js';
import { formatExpiry } from '../domain/expiry.js';
import { scanViewOf, type ScanResult, type ScanView } from '../domain/scan.js';
import { KIND_LABELS } from './cards.js';
import type { AlertResolution } from './types.js';

/**
 * Notices when a credential was dealt with, by Keywarden or by hand: its expiry moved later, it was disabled,
 * it disappeared, or the Key Vault secret that held it now holds a new credential.
 */

/** Tolerance before "expiry moved later" counts: clouds round and re-serialize timestamps. */
const EXTENSION_TOLERANCE_MS = HOUR_MS;

/** The same credential id, changed in place: extended, rotated to a new version, or disabled. */
export function resolvedInPlace(before: Credential, after: Credential, now: number): AlertResolution | undefined {
  if (before.enabled !== false && after.enabled === false) {
    return { kind: 'disabled', text: `${KIND_LABELS[after.kind]} was disabled`, at: now };
  }
  if (before.expiresAt === null) return undefined;
  if (after.expiresAt !== null && after.expiresAt <= before.expiresAt + EXTENSION_TOLERANCE_MS) return undefined;
  const newVersion = (before.attributes.version !== undefined && before.attributes.version !== after.attributes.version)
    || (before.createdAt !== undefined && after.createdAt !== undefined && before.createdAt !== after.createdAt);
  const expiry = formatExpiry(after.expiresAt, now);
  return newVersion
    ? { kind: 'rotated', text: `rotated: the new version expires ${expiry}`, at: now }
    : { kind: 'extended', text: `extended: now expires ${expiry}`, at: now };
}

function sameSecret(a: { vault: string; name: string }, b: { vault: string; name: string }): boolean {
  return a.vault.toLowerCase() === b.vault.toLowerCase() && a.name.toLowerCase() === b.name.toLowerCase();
}

/** The first credential of a kind in a scope (this scan's) that matches, read a page at a time with `slice` between. */
async function findInScope(view: ScanView, kind: CredentialKind, scope: string, match: (c: Credential) => boolean, slice: () => Promise<void>): Promise<Credential | undefined> {
  for (const page of view.pages({ where: { kind, scope }, pageSize: 200 })) {
    const found = page.find((r) => match(r.credential));
    if (found) return found.credential;
    await slice();
  }
  return undefined;
}

/**
 * The credential is gone from a scope that scanned cleanly: replaced (rotated) or removed. Looks through the scope a
 * page at a time (a vault holds thousands of secrets), with `slice` between pages.
 */
export async function resolvedByDisappearance(before: Credential, scan: ScanResult, now: number, slice: () => Promise<void>): Promise<AlertResolution> {
  const view = scanViewOf(scan);
  const describe = (c: Credential): string => `${KIND_LABELS[c.kind]} ${c.name} (expires ${formatExpiry(c.expiresAt, now)})`;
  const secretAt = async (ref: { vault: string; name: string }): Promise<Credential | undefined> => view.get(credentialId('keyvault-secret', ref.vault, ref.name))?.credential
    ?? findInScope(view, 'keyvault-secret', ref.vault, (c) => c.nativeId.toLowerCase() === ref.name.toLowerCase(), slice);

  // The Key Vault secret that held it now holds another credential: rotated outside Keywarden.
  for (const ref of before.heldIn) {
    const secret = await secretAt(ref);
    if (secret?.holds && secret.holds !== before.id) {
      const heir = view.get(secret.holds)?.credential;
      return { kind: 'rotated', at: now, text: `rotated: Key Vault secret ${ref.vault}/${ref.name} now holds ${heir ? describe(heir) : 'a new credential'}` };
    }
  }
  // A new credential is held in the same secret (correlation linked it).
  for (const ref of before.heldIn) {
    const secret = await secretAt(ref);
    const heir = secret?.holds ? view.get(secret.holds)?.credential : undefined;
    if (heir && heir.id !== before.id && heir.kind === before.kind && heir.heldIn.some((h) => sameSecret(h, ref))) {
      return { kind: 'rotated', at: now, text: `rotated: Key Vault secret ${ref.vault}/${ref.name} now holds ${describe(heir)}` };
    }
  }
  // A newer credential with the same name in the same place: replaced by hand.
  const twin = await findInScope(view, before.kind, before.where.scope, (c) => c.id !== before.id && c.name === before.name
    && (c.expiresAt ?? Number.POSITIVE_INFINITY) > (before.expiresAt ?? Number.NEGATIVE_INFINITY), slice);
  if (twin) return { kind: 'rotated', at: now, text: `replaced by a new ${describe(twin)}` };
  return { kind: 'removed', at: now, text: `no longer exists in ${before.where.label} (revoked or deleted)` };
}

/**
 * True when the scan may not have seen the credential's scope: absence proves nothing then. An error names a
 * scope that is not always the credential's (Entra errors name the tenant, credentials the app), so an error in
 * the estate also counts when nothing at all was seen from the credential's scope.
 */
export function scopeUnseen(credential: Credential, scan: ScanResult): boolean {
  const { estate, scope } = credential.where;
  const errors = scan.errors.filter((e) => e.estate === estate);
  if (errors.length === 0) return false;
  if (errors.some((e) => e.scope === scope)) return true;
  return !scanViewOf(scan).sawScope(estate, scope);
}
