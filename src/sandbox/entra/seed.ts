import type { Clock } from '../../clock.js';
import { DAY_MS } from '../../clock.js';
import type { EntraEmulator } from './index.js';
import type { CredentialTarget } from './state.js';

/** Seeds the Contoso tenant of docs/sandbox-estate.md: six apps, the approver group, keywarden-bot's permissions. */

export const APPROVER_GROUP_ID = 'aaaaaaaa-0000-4000-8000-0000000000a0';
export const PLAYGROUND_USERS = {
  alex: { id: '00000000-0000-0000-0000-0000000000a1', displayName: 'Alex Wilber', userPrincipalName: 'AlexW@contoso.com' },
  megan: { id: '00000000-0000-0000-0000-0000000000a2', displayName: 'Megan Bowen', userPrincipalName: 'MeganB@contoso.com' },
  lee: { id: '00000000-0000-0000-0000-0000000000a3', displayName: 'Lee Gu', userPrincipalName: 'LeeG@contoso.com' },
} as const;
/** The people behind the Databricks SCIM users (same userName = UPN), so PAT and app owners resolve to object ids. */
export const ESTATE_USERS = {
  alice: { id: '00000000-0000-0000-0000-0000000000b1', displayName: 'Alice Admin', userPrincipalName: 'alice.admin@contoso.com', accountEnabled: true },
  bob: { id: '00000000-0000-0000-0000-0000000000b2', displayName: 'Bob Dev', userPrincipalName: 'bob.dev@contoso.com', accountEnabled: true },
  carol: { id: '00000000-0000-0000-0000-0000000000b3', displayName: 'Carol Former', userPrincipalName: 'carol.former@contoso.com', accountEnabled: false },
} as const;
/**
 * User.ReadBasic.All: resolve owners' user names to object ids (@mentions, owner notices).
 * AuditLog.Read.All: last sign-in per secret/certificate (beta usage report), so revoking one in use needs an override.
 */
export const KEYWARDEN_GRAPH_PERMISSIONS = ['Application.Read.All', 'Application.ReadWrite.OwnedBy', 'GroupMember.Read.All', 'User.ReadBasic.All', 'AuditLog.Read.All'];

const appId = (n: number) => `11111111-1111-4111-8111-${String(n).padStart(12, '0')}`;
const appObjectId = (n: number) => `a0a0a0a0-0000-4000-8000-${String(n).padStart(12, '0')}`;
const spObjectId = (n: number) => `5e5e5e5e-0000-4000-8000-${String(n).padStart(12, '0')}`;
const keyId = (app: number, k: number) => `c0c0c0c0-${String(app).padStart(4, '0')}-4000-8000-${String(k).padStart(12, '0')}`;

export interface SeededEntraApp {
  appId: string;
  objectId: string;
  spObjectId: string;
}

export interface SeededEntra {
  tenantId: string;
  apps: Record<string, SeededEntraApp>;
  /** keywarden-bot's own client credentials: what the sandbox product authenticates with. */
  keywarden: { clientId: string; clientSecret: string };
  /** The etl-ingest secret that Key Vault holds (kv-prod/etl-ingest-client-secret). */
  etlSecret: { keyId: string; value: string; endDateTime: string; expiresAt: number; appId: string };
  approverGroupId: string;
  users: typeof PLAYGROUND_USERS;
  estateUsers: typeof ESTATE_USERS;
}

/** Per app: passwords / certificates as [displayName, start offset days, end offset days, level]. */
type Cred = { display: string; startDays: number; endDays: number; level?: 'application' | 'servicePrincipal'; cert?: boolean; lastSignInDays?: number };
const APPS: Array<{ n: number; name: string; creds: Cred[] }> = [
  { n: 1, name: 'etl-ingest', creds: [{ display: 'etl-ingest-2026', startDays: -76, endDays: 14, lastSignInDays: -20 }] },
  { n: 2, name: 'reporting-svc', creds: [
    { display: 'reporting-svc-secret', startDays: -60, endDays: 30, lastSignInDays: -25 },
    { display: 'reporting-svc-sp-secret', startDays: -30, endDays: 60, level: 'servicePrincipal' },
  ] },
  { n: 3, name: 'keywarden-bot', creds: [{ display: 'keywarden-bot-secret', startDays: -30, endDays: 90, lastSignInDays: 0 }] },
  { n: 4, name: 'legacy-crm', creds: [{ display: 'legacy-crm-secret', startDays: -85, endDays: -5, lastSignInDays: -40 }] },
  { n: 5, name: 'partner-sftp', creds: [{ display: 'CN=partner-sftp.contoso.com', startDays: -83, endDays: 7, cert: true, lastSignInDays: -10 }] },
  { n: 6, name: 'hr-sync', creds: [
    { display: 'hr-sync-secret', startDays: -89, endDays: 1, lastSignInDays: -2 },
    { display: 'hr-sync-long-lived', startDays: -10, endDays: 720 },
  ] },
];

export function seedEntra(handle: EntraEmulator, options: { clock?: Clock } = {}): SeededEntra {
  const clock = options.clock ?? handle.clock;
  const now = clock.now();
  const dir = handle.directory;
  const apps: Record<string, SeededEntraApp> = {};
  const secrets = new Map<string, { keyId: string; value: string; end: number }>();

  for (const spec of APPS) {
    const { app, sp } = dir.addApplication({
      displayName: spec.name, appId: appId(spec.n), objectId: appObjectId(spec.n), spObjectId: spObjectId(spec.n), createdAt: now - 400 * DAY_MS,
    });
    apps[spec.name] = { appId: app.appId, objectId: app.id, spObjectId: sp.id };
    spec.creds.forEach((c, i) => {
      const target: CredentialTarget = c.level === 'servicePrincipal' ? { kind: 'servicePrincipal', id: sp.id } : { kind: 'application', id: app.id };
      const common = { keyId: keyId(spec.n, i + 1), displayName: c.display, startDateTime: now + c.startDays * DAY_MS, endDateTime: now + c.endDays * DAY_MS };
      // Sign-in activity (beta usage report): most secrets are in use; reporting-svc's SP secret and hr-sync-long-lived never were.
      if (c.lastSignInDays !== undefined) dir.recordSignIn(common.keyId, now + c.lastSignInDays * DAY_MS);
      if (c.cert) {
        dir.addKeyCredential(target, { ...common, type: 'AsymmetricX509Cert', usage: 'Verify' });
        return;
      }
      // Seeded passwords replicated long ago: no propagation delay.
      const { password, secretText } = dir.addPassword(target, { ...common, addedAt: Number.NEGATIVE_INFINITY });
      secrets.set(`${spec.name}/${c.display}`, { keyId: password.keyId, value: secretText, end: password.endDateTime });
    });
  }

  for (const u of Object.values(PLAYGROUND_USERS)) dir.addUser({ ...u, accountEnabled: true });
  for (const u of Object.values(ESTATE_USERS)) dir.addUser({ ...u });
  dir.addGroup({ id: APPROVER_GROUP_ID, displayName: 'Keywarden Approvers', members: [PLAYGROUND_USERS.alex.id, PLAYGROUND_USERS.megan.id] });

  const bot = apps['keywarden-bot']!;
  dir.grant(bot.appId, ...KEYWARDEN_GRAPH_PERMISSIONS);
  // keywarden-bot's SP owns etl-ingest: the one app it may rotate under Application.ReadWrite.OwnedBy.
  dir.addOwner({ kind: 'application', id: apps['etl-ingest']!.objectId }, bot.spObjectId);
  dir.addOwner({ kind: 'application', id: apps['keywarden-bot']!.objectId }, PLAYGROUND_USERS.alex.id);
  // The people who answer for the apps (cards show them, not the app): etl-ingest has a human owner besides the bot,
  // reporting-svc's SP-level secret is owned on the SP; partner-sftp has no owner at all.
  dir.addOwner({ kind: 'application', id: apps['etl-ingest']!.objectId }, ESTATE_USERS.alice.id);
  dir.addOwner({ kind: 'application', id: apps['reporting-svc']!.objectId }, ESTATE_USERS.bob.id);
  dir.addOwner({ kind: 'servicePrincipal', id: apps['reporting-svc']!.spObjectId }, ESTATE_USERS.bob.id);
  dir.addOwner({ kind: 'application', id: apps['legacy-crm']!.objectId }, PLAYGROUND_USERS.megan.id);
  dir.addOwner({ kind: 'application', id: apps['hr-sync']!.objectId }, PLAYGROUND_USERS.lee.id);

  const botSecret = secrets.get('keywarden-bot/keywarden-bot-secret')!;
  const etl = secrets.get('etl-ingest/etl-ingest-2026')!;
  return {
    tenantId: handle.tenantId,
    apps,
    keywarden: { clientId: bot.appId, clientSecret: botSecret.value },
    etlSecret: { keyId: etl.keyId, value: etl.value, endDateTime: new Date(etl.end).toISOString(), expiresAt: etl.end, appId: apps['etl-ingest']!.appId },
    approverGroupId: APPROVER_GROUP_ID,
    users: PLAYGROUND_USERS,
    estateUsers: ESTATE_USERS,
  };
}
