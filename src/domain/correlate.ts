import type { KeywardenConfig } from '../config/schema.js';
import { credentialId, KV_TAGS } from './credential.js';
import type { Consumer, Credential, CredentialKind, EstateInventory, SecretRef } from './credential.js';

/**
 * Correlation: which Key Vault secret holds which PAT or Entra secret, and which Data Factory linked services
 * use it. Pure: the inventories in, new credential objects out (the inputs are not modified).
 */

export type MappingConfig = KeywardenConfig['keyVault']['mappings'][number];

/** One "secret holds credential" link, with both expiries so policy can flag a disagreement. */
export interface HoldLink {
  secretId: string;
  /** The held credential's id; `found` says whether the scan saw it. */
  credentialId: string;
  found: boolean;
  via: 'tags' | 'mapping' | 'provider';
  secretExpiresAt: number | null;
  credentialExpiresAt: number | null;
}

export interface Correlation {
  credentials: Credential[];
  links: HoldLink[];
  /** Data Factory references to secrets that no scanned vault has (deleted secret, or a vault not configured). */
  danglingConsumers: Array<Consumer & { secret: SecretRef }>;
}

export interface CorrelateOptions {
  /** config.keyVault.mappings: links for secrets that carry no Keywarden tags yet. */
  mappings?: readonly MappingConfig[];
  /** config.keyVault.vaults: lets a consumer that names a vault by URL find it. */
  vaults?: ReadonlyArray<{ name: string; url: string }>;
}

/** Reads a Key Vault tag from a secret's attributes (`tag:<name>`, `tags.<name>` or plain `<name>`). */
export function secretTag(secret: Credential, tag: string): string | undefined {
  for (const key of [`tag:${tag}`, `tags.${tag}`, tag]) {
    const v = secret.attributes[key];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return undefined;
}

/** "https://kv-prod.vault.azure.net/" and "kv-prod" both become a comparable key. */
function vaultKey(vault: string, urlToName: Map<string, string>): string {
  const trimmed = vault.trim().replace(/\/+$/, '').toLowerCase();
  return urlToName.get(trimmed) ?? trimmed;
}

function secretKey(vault: string, name: string): string {
  return `${vault}/${name.toLowerCase()}`;
}

function consumerKey(c: Consumer): string {
  return `${c.factory}/${c.name}`;
}

function addConsumer(list: Consumer[], consumer: Consumer): void {
  const existing = list.find((c) => consumerKey(c) === consumerKey(consumer));
  if (!existing) {
    list.push({ ...consumer, pipelines: consumer.pipelines ? [...consumer.pipelines] : undefined });
    return;
  }
  // Two references from the same linked service (e.g. two properties): merge pipelines, keep the riskiest flags.
  const pipelines = new Set([...(existing.pipelines ?? []), ...(consumer.pipelines ?? [])]);
  if (pipelines.size) existing.pipelines = [...pipelines].sort();
  if (consumer.pinnedVersion) existing.pinnedVersion = true;
  if (consumer.dynamic) existing.dynamic = true;
}

/**
 * Lookups built once per correlation, so linking N secrets costs O(N) instead of a scan of every credential per secret.
 * Each bucket keeps credentials in input order, so "the first match" is the same one a linear scan would find.
 */
class CredentialIndex {
  readonly byId = new Map<string, Credential>();
  /** workspace → token id → the first PAT with that id. */
  private readonly patsByTokenId = new Map<string, Map<string, Credential>>();
  /** workspace → comment (or name) → the latest-expiring PAT with it (no expiry counts as latest; ties: first seen). */
  private readonly patsByComment = new Map<string, Map<string, Credential>>();
  /** Lower-case key id → Entra credentials with it. */
  private readonly entraByKeyId = new Map<string, Credential[]>();
  /** Display name, or any "/ <suffix>" of the name → Entra credentials it matches. */
  private readonly entraByDisplayName = new Map<string, Credential[]>();

  constructor(credentials: Credential[]) {
    for (const c of credentials) this.byId.set(c.id, c);
    // From byId, not the array: a duplicate id is seen once, with its last value, as the linear scans saw it.
    for (const c of this.byId.values()) {
      if (c.kind === 'databricks-pat') this.addPat(c);
      else if (c.kind === 'entra-password' || c.kind === 'entra-certificate') this.addEntra(c);
    }
  }

  private addPat(c: Credential): void {
    const ws = c.where.scope;
    const ids = getOrCreate(this.patsByTokenId, ws, () => new Map<string, Credential>());
    if (!ids.has(c.nativeId)) ids.set(c.nativeId, c);
    const comment = c.attributes.comment ?? c.name;
    if (typeof comment !== 'string') return; // a non-string comment never equals a configured one
    const named = getOrCreate(this.patsByComment, ws, () => new Map<string, Credential>());
    const best = named.get(comment);
    if (!best || (c.expiresAt ?? Infinity) > (best.expiresAt ?? Infinity)) named.set(comment, c);
  }

  private addEntra(c: Credential): void {
    getOrCreate(this.entraByKeyId, c.nativeId.toLowerCase(), () => []).push(c);
    const names = new Set<string>();
    if (typeof c.attributes.displayName === 'string') names.add(c.attributes.displayName);
    // name.endsWith(`/ ${displayName}`) holds exactly for the text after each "/ " in the name.
    for (let at = c.name.indexOf('/ '); at !== -1; at = c.name.indexOf('/ ', at + 1)) names.add(c.name.slice(at + 2));
    for (const name of names) getOrCreate(this.entraByDisplayName, name, () => []).push(c);
  }

  /** A PAT by workspace and token id or comment; with several matching comments, the latest-expiring one. */
  findPat(workspace: string, tokenId?: string, comment?: string): Credential | undefined {
    if (tokenId) return this.patsByTokenId.get(workspace)?.get(tokenId);
    if (!comment) return undefined;
    return this.patsByComment.get(workspace)?.get(comment);
  }

  /** An Entra password or certificate by key id, optionally checked against the application (client) id. */
  findEntra(keyId: string | undefined, appId: string | undefined, kind?: CredentialKind, displayName?: string): Credential | undefined {
    const candidates = keyId
      ? this.entraByKeyId.get(keyId.toLowerCase())
      : displayName !== undefined ? this.entraByDisplayName.get(displayName) : undefined;
    return candidates?.find((c) => {
      if (kind && c.kind !== kind) return false;
      const app = c.attributes.appId ?? c.attributes.applicationId ?? c.owner?.applicationId;
      return !(appId && app !== undefined && String(app).toLowerCase() !== appId.toLowerCase());
    });
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** What a secret holds according to the tags Keywarden writes at rotation. */
function holdsFromTags(secret: Credential, index: CredentialIndex): { id: string; found?: Credential } | undefined {
  const kind = secretTag(secret, KV_TAGS.credentialKind);
  const nativeId = secretTag(secret, KV_TAGS.credentialId);
  if (kind === 'databricks-pat') {
    const ws = secretTag(secret, KV_TAGS.workspace);
    if (!ws || !nativeId) return undefined;
    const found = index.findPat(ws, nativeId);
    return { id: found?.id ?? credentialId('databricks-pat', ws, nativeId), found };
  }
  if (kind === 'entra-password' || kind === 'entra-certificate') {
    const appId = secretTag(secret, KV_TAGS.applicationId);
    if (!nativeId) return undefined;
    const found = index.findEntra(nativeId, appId, kind);
    return { id: found?.id ?? credentialId(kind, appId ?? 'unknown-app', nativeId), found };
  }
  return undefined;
}

/** What a secret holds according to config.keyVault.mappings. */
function holdsFromMapping(secret: Credential, mappings: ReadonlyMap<string, MappingConfig>, index: CredentialIndex): { id: string; found?: Credential } | undefined {
  const m = mappings.get(`${secret.where.scope}/${secret.name}`.toLowerCase());
  if (!m) return undefined;
  const { kind, scope, nativeId, comment } = m.holds;
  const found = kind === 'databricks-pat'
    ? index.findPat(scope, nativeId, comment)
    : index.findEntra(nativeId, scope, 'entra-password', comment);
  if (found) return { id: found.id, found };
  // Configured but not seen: still record what it should hold, so the gap shows up.
  return { id: credentialId(kind, scope, nativeId ?? `comment:${comment ?? '?'}`) };
}

/**
 * Links secrets to what they hold (tags first, then configured mappings, then what the provider already set),
 * attaches Data Factory consumers to secrets and propagates them to the held credentials.
 */
export function correlate(inventories: readonly EstateInventory[], options: CorrelateOptions = {}): Correlation {
  const credentials: Credential[] = inventories.flatMap((inv) =>
    inv.credentials.map((c) => ({ ...c, heldIn: [...c.heldIn], consumers: c.consumers.map((x) => ({ ...x })), attributes: { ...c.attributes } })));
  const index = new CredentialIndex(credentials);
  // "vault/secret" (lower case) → its mapping; the first one wins, as in the config file's order.
  const mappings = new Map<string, MappingConfig>();
  for (const m of options.mappings ?? []) {
    const key = m.secret.toLowerCase();
    if (!mappings.has(key)) mappings.set(key, m);
  }
  const links: HoldLink[] = [];

  for (const secret of credentials) {
    if (secret.kind !== 'keyvault-secret') continue;
    let via: HoldLink['via'] = 'tags';
    let held = holdsFromTags(secret, index);
    if (!held) {
      via = 'mapping';
      held = holdsFromMapping(secret, mappings, index);
    }
    if (!held && secret.holds) {
      via = 'provider';
      held = { id: secret.holds, found: index.byId.get(secret.holds) };
    }
    if (!held) continue;
    secret.holds = held.id;
    links.push({
      secretId: secret.id, credentialId: held.id, found: Boolean(held.found), via,
      secretExpiresAt: secret.expiresAt, credentialExpiresAt: held.found?.expiresAt ?? null,
    });
    if (held.found && !held.found.heldIn.some((r) => r.vault === secret.where.scope && r.name === secret.name)) {
      held.found.heldIn.push({ vault: secret.where.scope, name: secret.name });
    }
  }

  // Consumers: Data Factory names a vault by linked-service base URL or by name; resolve both.
  const urlToName = new Map<string, string>();
  const addVault = (url: string, name: string) => {
    urlToName.set(url.replace(/\/+$/, '').toLowerCase(), name.toLowerCase());
    // Data Factory names an unconfigured vault by its URL host.
    try {
      urlToName.set(new URL(url).host.toLowerCase(), name.toLowerCase());
    } catch {
      /* not a URL: the name alone */
    }
  };
  for (const v of options.vaults ?? []) addVault(v.url, v.name);
  for (const inv of inventories) if (inv.estate === 'keyvault' && inv.host) addVault(inv.host, inv.scope);
  const secrets = new Map<string, Credential>();
  for (const c of credentials) {
    if (c.kind === 'keyvault-secret') secrets.set(secretKey(c.where.scope.toLowerCase(), c.name), c);
  }
  const danglingConsumers: Correlation['danglingConsumers'] = [];
  for (const inv of inventories) {
    for (const ref of inv.consumers ?? []) {
      const { secret: target, ...consumer } = ref;
      const secret = secrets.get(secretKey(vaultKey(target.vault, urlToName), target.name));
      if (!secret) {
        danglingConsumers.push(ref);
        continue;
      }
      addConsumer(secret.consumers, consumer);
    }
  }
  // The credential a secret holds is at risk for the same consumers.
  for (const secret of secrets.values()) {
    const held = secret.holds ? index.byId.get(secret.holds) : undefined;
    if (held) for (const consumer of secret.consumers) addConsumer(held.consumers, consumer);
  }
  return { credentials, links, danglingConsumers };
}
