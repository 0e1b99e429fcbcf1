/**
 * Keywarden's own credentials: the bot's app password, its Azure client secret or certificate, and the PAT it reads
 * from Key Vault per workspace. They are found from config (never from a secret value) and marked on the credential,
 * so cards can say so, Revoke is refused, and a rotation switches Keywarden itself before the old one goes.
 */
import type { KeywardenConfig } from '../config/schema.js';
import type { Credential } from './credential.js';

/** The attribute a scan sets on a credential Keywarden runs on; its value is the reason, in words. */
export const RUNS_KEYWARDEN = 'keywardenRunsOn';

export interface SelfIdentity {
  /** Entra application ids Keywarden signs in as (bot app id, azure.credential.clientId). */
  appIds: Map<string, string>;
  /** "vault/secret" → the workspaces whose PAT Keywarden reads from it. */
  patSecrets: Map<string, string[]>;
}

export function selfIdentityOf(config: Partial<Pick<KeywardenConfig, 'bot' | 'azure' | 'databricks'>>): SelfIdentity {
  const appIds = new Map<string, string>();
  const cred = config.azure?.credential;
  if (cred?.clientId && (cred.type === 'client-secret' || cred.type === 'client-certificate')) {
    appIds.set(cred.clientId, cred.type === 'client-secret' ? 'its Azure client secret (azure.credential)' : 'its Azure client certificate (azure.credential)');
  }
  if (config.bot?.appId) {
    const bot = 'the bot\'s app password (bot.appId)';
    appIds.set(config.bot.appId, appIds.has(config.bot.appId) ? `${appIds.get(config.bot.appId)} and ${bot}` : bot);
  }
  const patSecrets = new Map<string, string[]>();
  for (const ws of config.databricks?.workspaces ?? []) {
    if (ws.auth.type !== 'pat' || !ws.auth.keyVaultSecret) continue;
    patSecrets.set(ws.auth.keyVaultSecret, [...(patSecrets.get(ws.auth.keyVaultSecret) ?? []), ws.name]);
  }
  return { appIds, patSecrets };
}

/** Why Keywarden runs on this credential, or undefined. */
export function selfReason(credential: Credential, self: SelfIdentity): string | undefined {
  if (credential.kind === 'entra-password' || credential.kind === 'entra-certificate') {
    const appId = typeof credential.attributes.appId === 'string' ? credential.attributes.appId : credential.where.scope;
    const what = self.appIds.get(appId);
    return what ? `${what}: app ${appId}` : undefined;
  }
  if (credential.kind === 'databricks-pat') {
    for (const ref of credential.heldIn) {
      const workspaces = self.patSecrets.get(`${ref.vault}/${ref.name}`);
      if (workspaces?.includes(credential.where.scope)) return `the PAT it uses for ${credential.where.scope}, read from Key Vault ${ref.vault}/${ref.name}`;
    }
  }
  return undefined;
}

/** Marks Keywarden's own credentials (in place of a copy: the scan owns these objects). */
export function markSelfCredentials(credentials: Credential[], self: SelfIdentity): Credential[] {
  if (self.appIds.size === 0 && self.patSecrets.size === 0) return credentials;
  return credentials.map((c) => {
    const reason = selfReason(c, self);
    return reason ? { ...c, attributes: { ...c.attributes, [RUNS_KEYWARDEN]: reason } } : c;
  });
}

/** The reason stored on a scanned credential, or undefined when Keywarden does not run on it. */
export function keywardenRunsOn(credential: Pick<Credential, 'attributes'>): string | undefined {
  const v = credential.attributes[RUNS_KEYWARDEN];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** The line a card shows for one of Keywarden's own credentials. */
export function selfCredentialText(credential: Pick<Credential, 'attributes'>): string {
  const why = keywardenRunsOn(credential);
  return why ? `Keywarden runs on this credential (${why}). Rotate it — Keywarden switches to the new one before the old one is revoked; revoking it would cut Keywarden off.` : '';
}
