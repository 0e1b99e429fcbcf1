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

/**
 * This scan's credentials of one kind in one scope, by name and by native id: read a page at a time (`slice` between
 * pages) once per scope, not once per vanished credential. `clear` between groups keeps memory to a few scopes.
 */
export class ScopeLookup {
  private readonly scopes = new Map<string, { byName: Map<string, Credential[]>; byNativeId: Map<string, Credential> }>();

  constructor(private readonly view: ScanView, private readonly slice: () => Promise<void>) {}

  async of(kind: CredentialKind, scope: string): Promise<{ byName: Map<string, Credential[]>; byNativeId: Map<string, Credential> }> {
    const key = `${kind}|${scope}`;
    let index = this.scopes.get(key);
    if (index) return index;
    index = { byName: new Map(), byNativeId: new Map() };
    for (const page of this.view.pages({ where: { kind, scope }, pageSize: 200 })) {
      for (const { credential: c } of page) {
        const named = index.byName.get(c.name);
        if (named) named.push(c);
        else index.byName.set(c.name, [c]);
        const nativeId = c.nativeId.toLowerCase();
        if (!index.byNativeId.has(nativeId)) index.byNativeId.set(nativeId, c);
      }
      await this.slice();
    }
    this.scopes.set(key, index);
    return index;
  }

  clear(): void {
    this.scopes.clear();
  }
}

/** The credential is gone from a scope that scanned cleanly: replaced (rotated) or removed. */
export async function resolvedByDisappearance(before: Credential, scan: ScanResult, now: number, scopes: ScopeLookup): Promise<AlertResolution> {
  const view = scanViewOf(scan);
  const describe = (c: Credential): string => `${KIND_LABELS[c.kind]} ${c.name} (expires ${formatExpiry(c.expiresAt, now)})`;
  const secretAt = async (ref: { vault: string; name: string }): Promise<Credential | undefined> => view.get(credentialId('keyvault-secret', ref.vault, ref.name))?.credential
    ?? (await scopes.of('keyvault-secret', ref.vault)).byNativeId.get(ref.name.toLowerCase());

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
  const twin = (await scopes.of(before.kind, before.where.scope)).byName.get(before.name)?.find((c) => c.id !== before.id
    && (c.expiresAt ?? Number.POSITIVE_INFINITY) > (before.expiresAt ?? Number.NEGATIVE_INFINITY));
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
