import type { Application, KeyCredential, PasswordCredential, ServicePrincipal } from '@microsoft/microsoft-graph-types';
import { credentialId, type Credential, type CredentialKind, type EstateInventory } from '../../domain/credential.js';
import type { GraphClient } from './graph.js';

/** Entra app registrations and service principals → one Credential per client secret or certificate. */

export interface EntraInventorySource {
  estate: 'entra';
  /** The configured tenant label (e.g. "contoso"). */
  scope: string;
  host: string;
  scan(options: { signal?: AbortSignal }): Promise<EstateInventory>;
}

type Holder = { objectType: 'application' | 'servicePrincipal'; objectId: string; appId: string; displayName: string; appObjectId?: string };

function time(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

function toCredential(host: string, holder: Holder, kind: CredentialKind, c: PasswordCredential | KeyCredential): Credential | undefined {
  if (!c.keyId) return undefined;
  const label = c.displayName ?? (kind === 'entra-password' ? `secret ${(c as PasswordCredential).hint ?? c.keyId.slice(0, 8)}…` : `certificate ${c.keyId.slice(0, 8)}`);
  return {
    id: credentialId(kind, holder.appId, c.keyId),
    kind,
    nativeId: c.keyId,
    name: `${holder.displayName} / ${label}`,
    where: { estate: 'entra', scope: holder.appId, host, label: `app ${holder.displayName}` },
    owner: { id: holder.appObjectId, name: holder.displayName, kind: 'application', applicationId: holder.appId },
    createdAt: time(c.startDateTime),
    expiresAt: time(c.endDateTime) ?? null,
    heldIn: [],
    consumers: [],
    attributes: {
      appId: holder.appId,
      appObjectId: holder.appObjectId ?? null,
      objectType: holder.objectType,
      objectId: holder.objectId,
      displayName: holder.displayName,
      credentialDisplayName: c.displayName ?? null,
      hint: kind === 'entra-password' ? (c as PasswordCredential).hint ?? null : null,
      ...(kind === 'entra-certificate' ? { certificateType: (c as KeyCredential).type ?? null, thumbprint: (c as KeyCredential).customKeyIdentifier as string | null ?? null } : {}),
    },
  };
}

/** Graph's credential lists, minus anything that is not an object with a string keyId (a garbled answer). */
function listed<T extends { keyId?: string | null }>(value: T[] | null | undefined): T[] {
  return Array.isArray(value) ? value.filter((c) => Boolean(c) && typeof c === 'object' && typeof c.keyId === 'string') : [];
}

function credentialsOf(host: string, holder: Holder, item: Application | ServicePrincipal): Credential[] {
  return [
    ...listed(item.passwordCredentials).map((p) => toCredential(host, holder, 'entra-password', p)),
    ...listed(item.keyCredentials).map((k) => toCredential(host, holder, 'entra-certificate', k)),
  ].filter((c): c is Credential => c !== undefined);
}

export function createEntraInventory(options: { tenantLabel: string; graph: GraphClient }): EntraInventorySource {
  const { tenantLabel, graph } = options;
  return {
    estate: 'entra',
    scope: tenantLabel,
    host: graph.baseUrl,
    async scan({ signal } = {}) {
      // Both levels: SP-level secrets authenticate too and do not show in the portal's app blade.
      const [apps, sps] = await Promise.all([graph.listApplications({ signal }), graph.listServicePrincipals({ signal })]);
      const appObjectIdByAppId = new Map(apps.map((a) => [a.appId ?? '', a.id ?? '']));
      const credentials: Credential[] = [];
      for (const app of apps) {
        if (typeof app.id !== 'string' || typeof app.appId !== 'string' || !app.id || !app.appId) continue;
        credentials.push(...credentialsOf(graph.baseUrl, { objectType: 'application', objectId: app.id, appObjectId: app.id, appId: app.appId, displayName: app.displayName ?? app.appId }, app));
      }
      for (const sp of sps) {
        if (typeof sp.id !== 'string' || typeof sp.appId !== 'string' || !sp.id || !sp.appId) continue;
        credentials.push(...credentialsOf(graph.baseUrl, {
          objectType: 'servicePrincipal', objectId: sp.id, appObjectId: appObjectIdByAppId.get(sp.appId) || undefined,
          appId: sp.appId, displayName: sp.displayName ?? sp.appId,
        }, sp));
      }
      return { estate: 'entra', scope: tenantLabel, host: graph.baseUrl, credentials, facts: {} };
    },
  };
}
