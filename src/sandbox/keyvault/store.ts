import { randomBytes } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { DAY_MS } from '../../clock.js';

/** In-memory secrets of one emulated vault: versions, soft delete, recover, purge. No HTTP here. */

export const RECOVERABLE_DAYS = 90;
export const RECOVERY_LEVEL = 'Recoverable+Purgeable';
const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
/** The service's documented value limit (25 KB). */
const MAX_VALUE_BYTES = 25 * 1024;

export interface StoredVersion {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  /** Epoch ms (the wire shows unix seconds). */
  exp?: number;
  nbf?: number;
  created: number;
  updated: number;
}

export interface StoredSecret {
  name: string;
  /** Oldest first; the last one is the current version. */
  versions: StoredVersion[];
  /** Certificate-backed secret (read-only through the secrets API). */
  managed: boolean;
  /** Key id of the backing certificate's key, for managed secrets. */
  kid?: string;
}

export interface DeletedSecretRecord {
  secret: StoredSecret;
  deletedDate: number;
  scheduledPurgeDate: number;
}

/** A failure with the service's error code shape; routes turn it into `{"error":{code,message,innererror}}`. */
export class VaultFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly innerCode?: string) {
    super(message);
  }
}

export interface NewVersion {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled?: boolean;
  exp?: number;
  nbf?: number;
  /** Seeding only: a creation time in the past. */
  created?: number;
  updated?: number;
}

export interface PropertyUpdate {
  contentType?: string;
  tags?: Record<string, string>;
  enabled?: boolean;
  exp?: number;
  nbf?: number;
}

export function newVersionId(): string {
  return randomBytes(16).toString('hex');
}

export function secretNotFound(name: string, version?: string): VaultFailure {
  const what = version ? `${name}/${version}` : name;
  return new VaultFailure(404, 'SecretNotFound',
    `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`);
}

export class VaultStore {
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly deleted = new Map<string, DeletedSecretRecord>();

  constructor(readonly vaultName: string, private readonly clock: Clock) {}

  /** PUT /secrets/{name}: a new current version. */
  set(name: string, input: NewVersion, options: { managed?: boolean; kid?: string } = {}): StoredVersion {
    this.expirePurges();
    if (!NAME_PATTERN.test(name)) {
      throw new VaultFailure(400, 'BadParameter', `The request URI contains an invalid name: ${name}. Secret names may contain only 0-9, a-z, A-Z and -, up to 127 characters.`);
    }
    if (typeof input.value !== 'string') throw new VaultFailure(400, 'BadParameter', 'Property value is required.');
    if (Buffer.byteLength(input.value) > MAX_VALUE_BYTES) {
      throw new VaultFailure(400, 'BadParameter', 'Secret value is too large: the maximum is 25 KB.');
    }
    if (this.deleted.has(name)) {
      throw new VaultFailure(409, 'Conflict',
        `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable');
    }
    const existing = this.secrets.get(name);
    if (existing?.managed && !options.managed) {
      throw new VaultFailure(403, 'Forbidden',
        `Secret ${name} is backing a certificate and cannot be set through the secrets API; use the certificates API.`, 'ForbiddenByPolicy');
    }
    const now = this.clock.now();
    const created = input.created ?? now;
    const stored: StoredVersion = {
      version: newVersionId(), value: input.value, contentType: input.contentType, tags: input.tags,
      enabled: input.enabled ?? true, exp: input.exp, nbf: input.nbf, created, updated: input.updated ?? created,
    };
    const secret = existing ?? { name, versions: [], managed: Boolean(options.managed), kid: options.kid };
    secret.versions.push(stored);
    this.secrets.set(name, secret);
    return stored;
  }

  /** The secret (live, not deleted) or a 404. */
  secret(name: string): StoredSecret {
    const s = this.secrets.get(name);
    if (!s) throw secretNotFound(name);
    return s;
  }

  /** A version by id; an empty/undefined version means the current one. */
  version(name: string, version?: string): StoredVersion {
    const s = this.secret(name);
    const v = version ? s.versions.find((x) => x.version === version) : s.versions[s.versions.length - 1];
    if (!v) throw secretNotFound(name, version);
    return v;
  }

  /** GET of a value: disabled versions are refused, as the service does. */
  readValue(name: string, version?: string): StoredVersion {
    const v = this.version(name, version);
    if (!v.enabled) {
      throw new VaultFailure(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    }
    return v;
  }

  /** PATCH /secrets/{name}/{version}: unspecified fields are kept; tags replace the whole set. */
  update(name: string, version: string | undefined, patch: PropertyUpdate): StoredVersion {
    const s = this.secret(name);
    if (s.managed) {
      throw new VaultFailure(403, 'Forbidden', `Secret ${name} is backing a certificate; update it through the certificates API.`, 'ForbiddenByPolicy');
    }
    const v = this.version(name, version);
    if (patch.contentType !== undefined) v.contentType = patch.contentType;
    if (patch.tags !== undefined) v.tags = patch.tags;
    if (patch.enabled !== undefined) v.enabled = patch.enabled;
    if (patch.exp !== undefined) v.exp = patch.exp;
    if (patch.nbf !== undefined) v.nbf = patch.nbf;
    v.updated = this.clock.now();
    return v;
  }

  list(): StoredSecret[] {
    return [...this.secrets.values()];
  }

  /** DELETE /secrets/{name}: all versions move to the deleted state. */
  delete(name: string): DeletedSecretRecord {
    const s = this.secret(name);
    this.secrets.delete(name);
    const now = this.clock.now();
    const record = { secret: s, deletedDate: now, scheduledPurgeDate: now + RECOVERABLE_DAYS * DAY_MS };
    this.deleted.set(name, record);
    return record;
  }

  deletedSecret(name: string): DeletedSecretRecord {
    this.expirePurges();
    const d = this.deleted.get(name);
    if (!d) throw new VaultFailure(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);
    return d;
  }

  listDeleted(): DeletedSecretRecord[] {
    this.expirePurges();
    return [...this.deleted.values()];
  }

  recover(name: string): StoredSecret {
    const d = this.deletedSecret(name);
    this.deleted.delete(name);
    this.secrets.set(name, d.secret);
    return d.secret;
  }

  purge(name: string): void {
    this.deletedSecret(name);
    this.deleted.delete(name);
  }

  /** The service purges soft-deleted secrets once scheduledPurgeDate has passed. */
  private expirePurges(): void {
    const now = this.clock.now();
    for (const [name, d] of this.deleted) if (d.scheduledPurgeDate <= now) this.deleted.delete(name);
  }
}
