/**
 * Canary secrets for the "no secret value anywhere" invariant: every secret value the sandbox clouds hold or minted
 * during a test (read straight from the emulators' state, never through Keywarden), and a search for them — whole or
 * partly — in any text or raw bytes Keywarden produced.
 */
import type { SandboxClouds } from '../../src/sandbox/estate.js';

export interface Canary {
  /** Where the value came from, for the failure message (never the value itself). */
  label: string;
  value: string;
  /** Fragments that must not appear either: the first and last 12 characters (6 for Entra secrets beyond the 3-char hint). */
  fragments: string[];
}

export interface Leak {
  canary: string;
  fragment: 'whole value' | 'prefix' | 'suffix';
  place: string;
}

/** Records every client secret the Entra emulator mints over Graph (addPassword) from now on. */
export function recordMintedEntraSecrets(clouds: SandboxClouds): string[] {
  const minted: string[] = [];
  const directory = clouds.handles.entra.directory;
  const original = directory.addPassword.bind(directory);
  directory.addPassword = ((...args: Parameters<typeof original>) => {
    const out = original(...args);
    minted.push(out.secretText);
    return out;
  }) as typeof directory.addPassword;
  return minted;
}

function canary(label: string, value: string, prefixLength = 12): Canary {
  return { label, value, fragments: [value.slice(0, prefixLength), value.slice(-12)] };
}

/**
 * Every secret value in the clouds now: all Databricks token values (seeded, rotated, JIT, orphans, revoked ones too),
 * every Key Vault version's value (except JIT pool-id secrets, which hold an id the thread shows by design), the seeded
 * Entra secrets, and the Entra secrets minted since `recordMintedEntraSecrets`.
 */
export function collectCanaries(clouds: SandboxClouds, mintedEntra: readonly string[] = []): Canary[] {
  const out = new Map<string, Canary>();
  const add = (c: Canary) => { if (c.value.length >= 12 && !out.has(c.value)) out.set(c.value, c); };
  for (const ws of clouds.handles.databricks.workspaces) {
    for (const t of ws.model.tokens.values()) add(canary(`Databricks ${ws.name} token …${t.tokenId.slice(-4)} "${t.comment}"${t.revoked ? ' (revoked)' : ''}`, t.value));
  }
  for (const [name, vault] of clouds.handles.keyVault.vaults) {
    for (const secret of vault.secretNames()) {
      if (/^jit-.*-pool$/.test(secret)) continue;
      for (const v of vault.versions(secret)) {
        const value = vault.readStoredValue(secret, v.version);
        if (value) add(canary(`Key Vault ${name}/${secret} version ${v.version.slice(0, 8)}`, value));
      }
    }
  }
  const entra = (label: string, value: string) => add(canary(label, value, 6));
  entra('Entra keywarden-bot client secret (seed)', clouds.seeds.entra.keywarden.clientSecret);
  entra('Entra etl-ingest client secret (seed)', clouds.seeds.entra.etlSecret.value);
  mintedEntra.forEach((v, i) => entra(`Entra client secret minted over Graph #${i + 1}`, v));
  return [...out.values()];
}

/** Every canary (whole or fragment) found in the haystacks: texts, or raw bytes (searched as UTF-8). */
export function findLeaks(canaries: readonly Canary[], haystacks: Record<string, string | Buffer>): Leak[] {
  const leaks: Leak[] = [];
  for (const [place, hay] of Object.entries(haystacks)) {
    for (const c of canaries) {
      const checks: Array<[Leak['fragment'], string]> = [['whole value', c.value], ['prefix', c.fragments[0]!], ['suffix', c.fragments[1]!]];
      for (const [fragment, needle] of checks) {
        if (hay.indexOf(needle) >= 0) {
          leaks.push({ canary: c.label, fragment, place });
          break;
        }
      }
    }
  }
  return leaks;
}
