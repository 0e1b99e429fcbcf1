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

export function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
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

/** Attributes linking reads of a PAT or Entra credential (the rest stays in the rows). */
const LINK_ATTRIBUTES = ['comment', 'displayName', 'appId', 'applicationId'] as const;
const NOTHING: never[] = [];

/** What linking and policy read of a held credential: identity, name, place and expiry; never its full record. */
function compactHeld(c: Credential): Credential {
  const attributes: Credential['attributes'] = {};
  for (const key of LINK_ATTRIBUTES) if (c.attributes[key] !== undefined) attributes[key] = c.attributes[key]!;
  return {
    id: c.id, kind: c.kind, nativeId: c.nativeId, name: c.name, where: c.where, expiresAt: c.expiresAt,
    ...(c.owner?.applicationId ? { owner: { name: c.owner.name, kind: c.owner.kind, applicationId: c.owner.applicationId } } : {}),
    heldIn: NOTHING, consumers: NOTHING, attributes,
  };
}

/** A secret that may hold something: its tags, name and expiry (most secrets hold nothing and are not kept). */
function compactSecret(c: Credential, tagKeys: ReadonlySet<string>): Credential {
  const attributes: Credential['attributes'] = {};
  for (const [key, value] of Object.entries(c.attributes)) if (tagKeys.has(key)) attributes[key] = value;
  return {
    id: c.id, kind: c.kind, nativeId: c.nativeId, name: c.name, where: c.where, expiresAt: c.expiresAt,
    ...(c.holds ? { holds: c.holds } : {}), heldIn: NOTHING, consumers: c.consumers.length ? c.consumers : NOTHING, attributes,
  };
}

const KV_TAG_KEYS: ReadonlySet<string> = new Set(Object.values(KV_TAGS).flatMap((t) => [`tag:${t}`, `tags.${t}`, t]));

/** The links correlation found, as small maps: what `apply` adds to each credential as it streams past. */
export interface CorrelationPlan {
  /** A credential with its links (holds, heldIn, consumers): a new object, or the input itself when nothing links to it; the input is never modified. */
  apply(credential: Credential): Credential;
  /** A PAT or Entra credential's small facts (what policy reads of a held credential). */
  held(id: string): Credential | undefined;
  links: HoldLink[];
  /** Consumers whose secret `apply` never saw (complete once every credential went through `apply`). */
  dangling(): Correlation['danglingConsumers'];
}

/**
 * Correlation in two passes, for estates too big to hold: `add` each inventory (it keeps compact facts only), then
 * `finish` once and `apply` each credential. `correlate` is the same over inventories held in memory.
 */
export class CorrelationBuilder {
  /** Per source (its index in the scan), so a source that fails after some pages can be taken back out. */
  private readonly candidates = new Map<number, Credential[]>();
  private readonly secretsBySource = new Map<number, Credential[]>();
  private secrets: Credential[] = [];
  private readonly refs: Array<Consumer & { secret: SecretRef }> = [];
  private readonly hosts: Array<{ url: string; name: string }> = [];
  private readonly mappings = new Map<string, MappingConfig>();

  constructor(private readonly options: CorrelateOptions = {}) {
    // "vault/secret" (lower case) → its mapping; the first one wins, as in the config file's order.
    for (const m of options.mappings ?? []) {
      const key = m.secret.toLowerCase();
      if (!this.mappings.has(key)) this.mappings.set(key, m);
    }
  }

  /**
   * Takes what linking needs from one inventory's credentials (call again for more pages of the same inventory).
   * `source` numbers the inventory: linking prefers earlier sources, and `drop` takes one back out.
   * `secretsOnly`: keep the secrets that may hold something, and leave PATs and Entra credentials to `offer` (a
   * second read of only the scopes those secrets name, so the estate's credentials are not all held in memory).
   */
  add(credentials: readonly Credential[], source = 0, secretsOnly = false): void {
    for (const c of credentials) {
      if (c.kind === 'databricks-pat' || c.kind === 'entra-password' || c.kind === 'entra-certificate') {
        if (!secretsOnly) getOrCreate(this.candidates, source, () => []).push(compactHeld(c));
      } else if (c.kind === 'keyvault-secret' && this.mayHold(c)) getOrCreate(this.secretsBySource, source, () => []).push(compactSecret(c, KV_TAG_KEYS));
    }
  }

  /**
   * After `add(…, secretsOnly)` for every source: what the secrets name. `reads(estate, scope)` says whether a source's
   * credentials must be offered again; `offer` keeps the ones a secret can link to (every one with a named key, so
   * "first" and "latest-expiring" matches are the same as over all of them).
   */
  wanted(): { reads(estate: string, scope: string): boolean; offer(credentials: readonly Credential[], source: number): void } {
    const { wants, reads } = this.named();
    return {
      reads,
      offer: (credentials, source) => {
        for (const c of credentials) {
          if ((c.kind === 'databricks-pat' || c.kind === 'entra-password' || c.kind === 'entra-certificate') && wants(c)) getOrCreate(this.candidates, source, () => []).push(compactHeld(c));
        }
      },
    };
  }

  /**
   * Once every vault and factory has answered (failed ones too): true for a credential no link can touch, so it can be
   * judged before the other sources answer. Errs towards false: a secret that may hold something or that any factory
   * names (by secret name, whatever the vault), and a PAT or Entra credential any secret names, wait for the plan.
   */
  linkFree(factoryRefs: ReadonlyArray<{ secret: SecretRef }>): (c: Credential) => boolean {
    const { wants, ids } = this.named();
    const referenced = new Set(factoryRefs.map((r) => r.secret.name.toLowerCase()));
    return (c) => {
      if (c.kind === 'keyvault-secret') return !ids.has(c.id) && !referenced.has(c.name.toLowerCase()) && !this.mayHold(c);
      if (c.kind === 'databricks-pat' || c.kind === 'entra-password' || c.kind === 'entra-certificate') return !wants(c);
      return false;
    };
  }

  /** What the secrets added so far name: by id, token, comment, key id or display name. */
  private named(): { wants(c: Credential): boolean; reads(estate: string, scope: string): boolean; ids: ReadonlySet<string> } {
    const tokens = new Set<string>();
    const comments = new Set<string>();
    const workspaces = new Set<string>();
    const keyIds = new Set<string>();
    const names = new Set<string>();
    const ids = new Set<string>();
    let entra = false;
    const pat = (ws: string, nativeId?: string, comment?: string) => {
      workspaces.add(ws);
      if (nativeId) tokens.add(`${ws}\n${nativeId}`);
      else if (comment) comments.add(`${ws}\n${comment}`);
    };
    for (const list of this.secretsBySource.values()) {
      for (const secret of list) {
        const kind = secretTag(secret, KV_TAGS.credentialKind);
        const nativeId = secretTag(secret, KV_TAGS.credentialId);
        const ws = secretTag(secret, KV_TAGS.workspace);
        if (kind === 'databricks-pat' && ws && nativeId) pat(ws, nativeId);
        if ((kind === 'entra-password' || kind === 'entra-certificate') && nativeId) keyIds.add(nativeId.toLowerCase());
        const m = this.mappings.get(`${secret.where.scope}/${secret.name}`.toLowerCase());
        if (m?.holds.kind === 'databricks-pat') pat(m.holds.scope, m.holds.nativeId, m.holds.comment);
        else if (m && m.holds.nativeId) keyIds.add(m.holds.nativeId.toLowerCase());
        else if (m && m.holds.comment) names.add(m.holds.comment);
        if (secret.holds) {
          ids.add(secret.holds);
          const [heldKind, heldScope] = secret.holds.split(':');
          if (heldKind === 'databricks-pat' && heldScope) workspaces.add(heldScope);
          else entra = true;
        }
      }
    }
    entra ||= keyIds.size > 0 || names.size > 0;
    const any = workspaces.size > 0 || entra;
    const wants = (c: Credential): boolean => {
      if (ids.has(c.id)) return true;
      if (c.kind === 'databricks-pat') {
        const comment = c.attributes.comment ?? c.name;
        return tokens.has(`${c.where.scope}\n${c.nativeId}`) || (typeof comment === 'string' && comments.has(`${c.where.scope}\n${comment}`));
      }
      if (keyIds.has(c.nativeId.toLowerCase())) return true;
      if (names.size === 0) return false;
      if (typeof c.attributes.displayName === 'string' && names.has(c.attributes.displayName)) return true;
      for (let at = c.name.indexOf('/ '); at !== -1; at = c.name.indexOf('/ ', at + 1)) if (names.has(c.name.slice(at + 2))) return true;
      return false;
    };
    return {
      wants, ids,
      reads: (estate, scope) => (estate === 'databricks' ? workspaces.has(scope) : estate === 'entra' ? entra : estate !== 'keyvault' && estate !== 'datafactory' && any),
    };
  }

  /** Forgets what `add` took from one source (it failed part-way: unknown, so it links nothing). */
  drop(source: number): void {
    this.candidates.delete(source);
    this.secretsBySource.delete(source);
  }

  /** The inventory-level facts (vault host, Data Factory references): once per inventory. */
  addScope(inventory: Pick<EstateInventory, 'estate' | 'scope' | 'host' | 'consumers'>): void {
    if (inventory.estate === 'keyvault' && inventory.host) this.hosts.push({ url: inventory.host, name: inventory.scope });
    for (const ref of inventory.consumers ?? []) this.refs.push(ref);
  }

  private mayHold(c: Credential): boolean {
    return Boolean(c.holds) || c.consumers.length > 0 || Object.keys(c.attributes).some((k) => KV_TAG_KEYS.has(k))
      || this.mappings.has(`${c.where.scope}/${c.name}`.toLowerCase());
  }

  finish(): CorrelationPlan {
    const bySource = <T>(map: Map<number, T[]>): T[] => [...map.keys()].sort((a, b) => a - b).flatMap((k) => map.get(k)!);
    this.secrets = bySource(this.secretsBySource);
    const index = new CredentialIndex([...bySource(this.candidates), ...this.secrets]);
    this.candidates.clear();
    this.secretsBySource.clear();
    const links: HoldLink[] = [];
    const holds = new Map<string, string>();
    const heldIn = new Map<string, SecretRef[]>();
    const heldBySecret = new Map<string, string>();
    for (const secret of this.secrets) {
      let via: HoldLink['via'] = 'tags';
      let held = holdsFromTags(secret, index);
      if (!held) {
        via = 'mapping';
        held = holdsFromMapping(secret, this.mappings, index);
      }
      if (!held && secret.holds) {
        via = 'provider';
        held = { id: secret.holds, found: index.byId.get(secret.holds) };
      }
      if (!held) continue;
      holds.set(secret.id, held.id);
      links.push({
        secretId: secret.id, credentialId: held.id, found: Boolean(held.found), via,
        secretExpiresAt: secret.expiresAt, credentialExpiresAt: held.found?.expiresAt ?? null,
      });
      if (!held.found) continue;
      heldBySecret.set(secret.id, held.found.id);
      const refs = getOrCreate(heldIn, held.found.id, () => []);
      if (!refs.some((r) => r.vault === secret.where.scope && r.name === secret.name)) refs.push({ vault: secret.where.scope, name: secret.name });
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
    for (const v of this.options.vaults ?? []) addVault(v.url, v.name);
    for (const h of this.hosts) addVault(h.url, h.name);
    const consumersByKey = new Map<string, Array<Consumer & { secret: SecretRef }>>();
    for (const ref of this.refs) getOrCreate(consumersByKey, secretKey(vaultKey(ref.secret.vault, urlToName), ref.secret.name), () => []).push(ref);
    // The credential a secret holds is at risk for the same consumers (the secret's own, then Data Factory's).
    const heldConsumers = new Map<string, Consumer[]>();
    for (const secret of this.secrets) {
      const heldId = heldBySecret.get(secret.id);
      if (!heldId) continue;
      const list = getOrCreate(heldConsumers, heldId, () => []);
      for (const consumer of secret.consumers) addConsumer(list, consumer);
      for (const { secret: _target, ...consumer } of consumersByKey.get(secretKey(secret.where.scope.toLowerCase(), secret.name)) ?? []) addConsumer(list, consumer);
    }
    const matched = new Set<string>();
    // Policy asks only about what a secret holds: keep those, and let the index (every PAT and Entra credential) go.
    const heldById = new Map<string, Credential>();
    for (const id of holds.values()) {
      const c = index.byId.get(id);
      if (c) heldById.set(id, c);
    }

    return {
      links,
      held: (id) => heldById.get(id),
      apply(c) {
        // Nothing links to it: the credential itself (the scan then reuses the JSON it was staged as).
        const key = c.kind === 'keyvault-secret' ? secretKey(c.where.scope.toLowerCase(), c.name) : undefined;
        if ((key === undefined || (!holds.has(c.id) && !consumersByKey.has(key))) && !heldIn.has(c.id) && !heldConsumers.has(c.id)) return c;
        const out: Credential = { ...c, heldIn: [...c.heldIn], consumers: c.consumers.map((x) => ({ ...x })), attributes: { ...c.attributes } };
        if (c.kind === 'keyvault-secret') {
          const held = holds.get(c.id);
          if (held) out.holds = held;
          const refs = consumersByKey.get(key!);
          if (refs) {
            matched.add(key!);
            for (const { secret: _target, ...consumer } of refs) addConsumer(out.consumers, consumer);
          }
        }
        for (const ref of heldIn.get(c.id) ?? []) {
          if (!out.heldIn.some((r) => r.vault === ref.vault && r.name === ref.name)) out.heldIn.push({ ...ref });
        }
        for (const consumer of heldConsumers.get(c.id) ?? []) addConsumer(out.consumers, consumer);
        return out;
      },
      dangling: () => [...consumersByKey].filter(([key]) => !matched.has(key)).flatMap(([, refs]) => refs),
    };
  }
}

/**
 * Links secrets to what they hold (tags first, then configured mappings, then what the provider already set),
 * attaches Data Factory consumers to secrets and propagates them to the held credentials.
 */
export function correlate(inventories: readonly EstateInventory[], options: CorrelateOptions = {}): Correlation {
  const builder = new CorrelationBuilder(options);
  for (const inv of inventories) {
    builder.addScope(inv);
    builder.add(inv.credentials);
  }
  const plan = builder.finish();
  const credentials = inventories.flatMap((inv) => inv.credentials.map((c) => plan.apply(c)));
  return { credentials, links: plan.links, danglingConsumers: plan.dangling() };
}
