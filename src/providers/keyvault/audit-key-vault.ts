import type { TokenCredential } from '@azure/core-auth';
import type { KeywardenConfig } from '../../config/schema.js';
import { redactText } from '../../logging/redact.js';
import type { AuditAnchor } from '../../store/audit-chain.js';
import type { AuditAnchorSink } from '../../store/audit-anchor.js';
import { createAzureCredential } from '../azure-credential.js';
import { KeyVaultSecrets } from './client.js';
import { KeyVaultError } from './errors.js';

/**
 * The audit log's Key Vault side: the HMAC key (audit.keySecret) and the anchors (audit.anchorSecret), one
 * secret version per anchor with the chain head in its tags, so listing versions reads them without values.
 */

export const DEFAULT_ANCHOR_SECRET = 'keywarden-audit-anchor';
/** The anchor's value carries nothing (the tags do); a constant, so redaction registers it once. */
const ANCHOR_VALUE = 'keywarden audit anchor: see the tags seq, hash and at';
const MIN_KEY_LENGTH = 32;

/** The key could not be read or is unusable: the user's to fix (one line from the CLI, exit 2). */
export class AuditKeyError extends Error {
  override readonly name = 'AuditKeyError';
  constructor(message: string, readonly code: 'AUDIT_KEY_UNREADABLE' | 'AUDIT_KEY_TOO_SHORT' | 'AUDIT_VAULT_UNKNOWN') {
    super(redactText(message));
  }
}

interface SecretRef { vault: { name: string; url: string }; name: string; where: string }

function resolveRef(config: KeywardenConfig, ref: { vault: string; name: string }, key: string): SecretRef {
  const configured = config.keyVault.vaults.find((v) => v.name === ref.vault);
  if (configured) return { vault: configured, name: ref.name, where: `${configured.name}/${ref.name}` };
  if (/^https:\/\//i.test(ref.vault)) {
    const url = ref.vault.replace(/\/+$/, '');
    return { vault: { name: new URL(url).host, url }, name: ref.name, where: `${url}/secrets/${ref.name}` };
  }
  throw new AuditKeyError(`${key}.vault: "${ref.vault}" is neither a keyVault.vaults name nor a vault URL — add the vault to keyVault.vaults or give its https:// URL`, 'AUDIT_VAULT_UNKNOWN');
}

export interface AuditKeyVault {
  /** "vault/secret" of the key, when audit.keySecret is set. */
  keyWhere?: string;
  readKey(): Promise<Buffer>;
  /** The anchor sink, when anchors are configured (audit.anchorSecret, or audit.keySecret's vault by default). */
  anchors?: AuditAnchorSink;
}

/** Undefined when the config keys nothing and anchors nothing. Throws AuditKeyError for an unknown vault. */
export function connectAuditKeyVault(config: KeywardenConfig, options: { credential?: TokenCredential } = {}): AuditKeyVault | undefined {
  const { keySecret, anchorSecret } = config.audit;
  if (!keySecret && !anchorSecret) return undefined;
  let credential = options.credential;
  const clients = new Map<string, KeyVaultSecrets>();
  const clientFor = (ref: SecretRef) => {
    credential ??= createAzureCredential(config.azure);
    let client = clients.get(ref.vault.url);
    if (!client) {
      client = new KeyVaultSecrets({ vault: ref.vault, credential, disableChallengeResourceVerification: config.keyVault.disableChallengeResourceVerification, retryOptions: { maxRetries: 2 } });
      clients.set(ref.vault.url, client);
    }
    return client;
  };
  const keyRef = keySecret ? resolveRef(config, keySecret, 'audit.keySecret') : undefined;
  const anchorRef = anchorSecret ? resolveRef(config, anchorSecret, 'audit.anchorSecret')
    : keySecret ? resolveRef(config, { vault: keySecret.vault, name: DEFAULT_ANCHOR_SECRET }, 'audit.keySecret') : undefined;

  return {
    ...(keyRef ? { keyWhere: keyRef.where } : {}),
    async readKey() {
      if (!keyRef) throw new AuditKeyError('audit.keySecret is not set', 'AUDIT_KEY_UNREADABLE');
      let value: string;
      try {
        value = (await clientFor(keyRef).readSecretValue(keyRef.name)).value; // registered for redaction by the client
      } catch (err) {
        const reason = err instanceof KeyVaultError ? err.message : (err as Error).message;
        throw new AuditKeyError(`cannot read the audit key ${keyRef.where}: ${reason} — grant Keywarden's identity secrets Get on that vault, or fix audit.keySecret`, 'AUDIT_KEY_UNREADABLE');
      }
      if (value.length < MIN_KEY_LENGTH) {
        throw new AuditKeyError(`the audit key ${keyRef.where} is shorter than ${MIN_KEY_LENGTH} characters — store at least 32 random bytes (e.g. openssl rand -base64 48)`, 'AUDIT_KEY_TOO_SHORT');
      }
      return Buffer.from(value, 'utf8');
    },
    ...(anchorRef ? { anchors: anchorSink(anchorRef, () => clientFor(anchorRef)) } : {}),
  };
}

function anchorSink(ref: SecretRef, client: () => KeyVaultSecrets): AuditAnchorSink {
  return {
    where: ref.where,
    async write(anchor) {
      await client().setSecret(ref.name, ANCHOR_VALUE, {
        contentType: 'text/plain',
        tags: { seq: String(anchor.seq), hash: anchor.hash, at: new Date(anchor.at).toISOString() },
      });
    },
    async list() {
      let versions;
      try {
        versions = await client().listVersions(ref.name);
      } catch (err) {
        if (err instanceof KeyVaultError && err.statusCode === 404) return []; // no anchor written yet
        throw err;
      }
      const anchors: AuditAnchor[] = [];
      for (const v of versions) {
        const seq = Number(v.tags.seq);
        const hash = v.tags.hash;
        if (!Number.isInteger(seq) || seq < 1 || !hash || !/^[0-9a-f]{64}$/.test(hash)) continue; // not one of ours
        const at = Date.parse(v.tags.at ?? '');
        anchors.push({ seq, hash, at: Number.isFinite(at) ? at : (v.createdAt ?? Number.NaN), ...(v.version ? { source: v.version } : {}) });
      }
      return anchors;
    },
  };
}
