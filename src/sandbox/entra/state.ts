import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';

/** In-memory directory of the emulated Entra tenant: apps, service principals, users, groups, app permissions. */

export interface StoredPassword {
  keyId: string;
  displayName: string | null;
  /** Epoch ms. */
  startDateTime: number;
  endDateTime: number;
  hint: string;
  /** SHA-256 of the secret text: the emulator never keeps a value it has handed out. */
  secretHash: string;
  /** Clock time the password was added; the token endpoint refuses it until the propagation delay has passed. */
  addedAt: number;
}

export interface StoredKey {
  keyId: string;
  displayName: string | null;
  startDateTime: number;
  endDateTime: number;
  type: 'AsymmetricX509Cert' | 'Symmetric';
  usage: 'Verify' | 'Sign';
  /** Base64 thumbprint. */
  customKeyIdentifier: string;
}

interface CredentialHolder {
  id: string;
  appId: string;
  displayName: string;
  createdDateTime: number;
  passwordCredentials: StoredPassword[];
  keyCredentials: StoredKey[];
  /** Object ids of owners (users or service principals). */
  owners: string[];
}

export type DirectoryApplication = CredentialHolder;

export interface DirectoryServicePrincipal extends CredentialHolder {
  accountEnabled: boolean;
  appDisplayName: string;
}

export interface DirectoryUser {
  id: string;
  displayName: string;
  userPrincipalName: string;
  accountEnabled: boolean;
  /** Defaults to the UPN; a guest's UPN (`x_y.com#EXT#@…`) differs from the mail other systems know them by. */
  mail?: string;
}

export interface DirectoryGroup {
  id: string;
  displayName: string;
  members: string[];
}

/** A managed identity's service principal: no credentials of its own; Azure hands its tokens to the resource. */
export interface DirectoryManagedIdentity {
  id: string;
  appId: string;
  displayName: string;
}

export type CredentialTarget = { kind: 'application' | 'servicePrincipal'; id: string };

/** Graph application permissions the emulator understands. */
export const GRAPH_PERMISSIONS = [
  'Application.Read.All',
  'Application.ReadWrite.OwnedBy',
  'Application.ReadWrite.All',
  'Directory.Read.All',
  'GroupMember.Read.All',
  'User.Read.All',
  'User.ReadBasic.All',
  /** Usage reports (beta reports/appCredentialSignInActivities, servicePrincipalSignInActivities). */
  'AuditLog.Read.All',
] as const;
export type GraphPermission = (typeof GRAPH_PERMISSIONS)[number];

/** Secret text shaped like Entra's: 3 chars, "8Q~", 34 chars (40 in all). */
export function newClientSecretText(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~_.-';
  const bytes = randomBytes(37);
  const chars = [...bytes].map((b) => alphabet[b % alphabet.length]!);
  return `${chars.slice(0, 3).join('')}8Q~${chars.slice(3).join('')}`;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export class EntraDirectory {
  readonly applications = new Map<string, DirectoryApplication>();
  readonly servicePrincipals = new Map<string, DirectoryServicePrincipal>();
  // By appId: every Graph call looks up its caller's SP, and a 20,000-app tenant made each lookup a scan.
  private readonly appsByAppId = new Map<string, DirectoryApplication>();
  private readonly spsByAppId = new Map<string, DirectoryServicePrincipal>();
  readonly users = new Map<string, DirectoryUser>();
  readonly groups = new Map<string, DirectoryGroup>();
  /** Granted Graph application permissions per caller appId. */
  readonly permissions = new Map<string, Set<string>>();
  /** Managed identities (e.g. a Data Factory's system-assigned identity), by object (principal) id. */
  readonly managedIdentities = new Map<string, DirectoryManagedIdentity>();
  /** APIs registered in the tenant (application ID URI or client id, normalized) → the `aud` Entra writes. */
  readonly apis = new Map<string, string>();
  /** Last sign-in per credential keyId (clock ms): what the beta usage reports read. Token requests with a secret add to it. */
  readonly signIns = new Map<string, number>();

  constructor(
    readonly tenantId: string,
    readonly tenantName: string,
    private readonly clock: Clock,
  ) {}

  addApplication(input: { displayName: string; appId?: string; objectId?: string; spObjectId?: string; createdAt?: number }): { app: DirectoryApplication; sp: DirectoryServicePrincipal } {
    const created = input.createdAt ?? this.clock.now();
    const app: DirectoryApplication = {
      id: input.objectId ?? randomUUID(), appId: input.appId ?? randomUUID(), displayName: input.displayName,
      createdDateTime: created, passwordCredentials: [], keyCredentials: [], owners: [],
    };
    if (this.applicationByAppId(app.appId)) throw new Error(`appId ${app.appId} already exists`);
    this.applications.set(app.id, app);
    this.appsByAppId.set(app.appId, app);
    const sp: DirectoryServicePrincipal = {
      id: input.spObjectId ?? randomUUID(), appId: app.appId, displayName: app.displayName, appDisplayName: app.displayName,
      createdDateTime: created, passwordCredentials: [], keyCredentials: [], owners: [], accountEnabled: true,
    };
    this.servicePrincipals.set(sp.id, sp);
    this.spsByAppId.set(sp.appId, sp);
    return { app, sp };
  }

  addManagedIdentity(input: { displayName: string; objectId?: string; appId?: string }): DirectoryManagedIdentity {
    const mi = { id: input.objectId ?? randomUUID(), appId: input.appId ?? randomUUID(), displayName: input.displayName };
    this.managedIdentities.set(mi.id, mi);
    return mi;
  }

  /** Registers an API (an app with an application ID URI) whose tokens the tenant issues, e.g. "api://keywarden". */
  registerApi(identifierUri: string): void {
    this.apis.set(identifierUri.trim().replace(/\/\.default$/i, '').replace(/\/+$/, '').toLowerCase(), identifierUri.replace(/\/\.default$/i, ''));
  }

  /** The `aud` for a registered API's scope or resource, or undefined. */
  apiAudience(scopeOrResource: string): string | undefined {
    return this.apis.get(scopeOrResource.trim().replace(/\/\.default$/i, '').replace(/\/+$/, '').toLowerCase());
  }

  addUser(user: DirectoryUser): DirectoryUser {
    this.users.set(user.id, { ...user });
    return user;
  }

  addGroup(group: { id: string; displayName: string; members?: string[] }): DirectoryGroup {
    const g = { id: group.id, displayName: group.displayName, members: [...(group.members ?? [])] };
    this.groups.set(g.id, g);
    return g;
  }

  addGroupMember(groupId: string, memberId: string): void {
    const g = this.groups.get(groupId);
    if (!g) throw new Error(`no group ${groupId}`);
    if (!g.members.includes(memberId)) g.members.push(memberId);
  }

  removeGroupMember(groupId: string, memberId: string): void {
    const g = this.groups.get(groupId);
    if (g) g.members = g.members.filter((m) => m !== memberId);
  }

  holder(target: CredentialTarget): DirectoryApplication | DirectoryServicePrincipal | undefined {
    return target.kind === 'application' ? this.applications.get(target.id) : this.servicePrincipals.get(target.id);
  }

  applicationByAppId(appId: string): DirectoryApplication | undefined {
    const hit = this.appsByAppId.get(appId);
    // The index is a shortcut; a holder set or changed another way is still found.
    if (hit && hit.appId === appId && this.applications.get(hit.id) === hit) return hit;
    return [...this.applications.values()].find((a) => a.appId === appId);
  }

  servicePrincipalByAppId(appId: string): DirectoryServicePrincipal | undefined {
    const hit = this.spsByAppId.get(appId);
    if (hit && hit.appId === appId && this.servicePrincipals.get(hit.id) === hit) return hit;
    return [...this.servicePrincipals.values()].find((s) => s.appId === appId);
  }

  /** Adds a password; returns the secret text (the only time it exists outside the caller). */
  addPassword(target: CredentialTarget, input: { displayName?: string | null; startDateTime?: number; endDateTime?: number; keyId?: string; secretText?: string; addedAt?: number }): { password: StoredPassword; secretText: string } {
    const holder = this.mustHolder(target);
    const now = this.clock.now();
    const start = input.startDateTime ?? now;
    const secretText = input.secretText ?? newClientSecretText();
    const password: StoredPassword = {
      keyId: input.keyId ?? randomUUID(),
      displayName: input.displayName ?? null,
      startDateTime: start,
      endDateTime: input.endDateTime ?? start + 2 * 365 * 86_400_000,
      hint: secretText.slice(0, 3),
      secretHash: hashSecret(secretText),
      addedAt: input.addedAt ?? now,
    };
    holder.passwordCredentials.push(password);
    return { password, secretText };
  }

  /** Returns false when no password has that keyId. */
  removePassword(target: CredentialTarget, keyId: string): boolean {
    const holder = this.mustHolder(target);
    const before = holder.passwordCredentials.length;
    holder.passwordCredentials = holder.passwordCredentials.filter((p) => p.keyId !== keyId);
    return holder.passwordCredentials.length !== before;
  }

  addKeyCredential(target: CredentialTarget, input: Partial<StoredKey> & { endDateTime: number }): StoredKey {
    const holder = this.mustHolder(target);
    const key: StoredKey = {
      keyId: input.keyId ?? randomUUID(),
      displayName: input.displayName ?? null,
      startDateTime: input.startDateTime ?? this.clock.now(),
      endDateTime: input.endDateTime,
      type: input.type ?? 'AsymmetricX509Cert',
      usage: input.usage ?? 'Verify',
      customKeyIdentifier: input.customKeyIdentifier ?? randomBytes(20).toString('base64'),
    };
    holder.keyCredentials.push(key);
    return key;
  }

  addOwner(target: CredentialTarget, ownerObjectId: string): void {
    const holder = this.mustHolder(target);
    if (!holder.owners.includes(ownerObjectId)) holder.owners.push(ownerObjectId);
  }

  /** Records a sign-in with a credential (its keyId) at `at` (clock ms), as Entra's usage report would show it. */
  recordSignIn(keyId: string, at: number = this.clock.now()): void {
    this.signIns.set(keyId, Math.max(at, this.signIns.get(keyId) ?? Number.NEGATIVE_INFINITY));
  }

  grant(appId: string, ...permissions: string[]): void {
    const set = this.permissions.get(appId) ?? new Set<string>();
    for (const p of permissions) set.add(p);
    this.permissions.set(appId, set);
  }

  /** Withdraws a Graph application permission (admin consent revoked); takes effect on the next request. */
  withdraw(appId: string, ...permissions: string[]): void {
    const set = this.permissions.get(appId);
    if (set) for (const p of permissions) set.delete(p);
  }

  permissionsOf(appId: string): string[] {
    return [...(this.permissions.get(appId) ?? [])];
  }

  /** Directory object (user or SP) by id, for owners/members listings. */
  directoryObject(id: string): { type: 'user'; user: DirectoryUser } | { type: 'servicePrincipal'; sp: DirectoryServicePrincipal } | undefined {
    const user = this.users.get(id);
    if (user) return { type: 'user', user };
    const sp = this.servicePrincipals.get(id);
    if (sp) return { type: 'servicePrincipal', sp };
    return undefined;
  }

  private mustHolder(target: CredentialTarget): DirectoryApplication | DirectoryServicePrincipal {
    const holder = this.holder(target);
    if (!holder) throw new Error(`no ${target.kind} with object id ${target.id}`);
    return holder;
  }
}
