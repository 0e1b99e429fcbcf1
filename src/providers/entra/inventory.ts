import type { Application, DirectoryObject, KeyCredential, PasswordCredential, ServicePrincipal } from '@microsoft/microsoft-graph-types';
import { credentialId, type Credential, type CredentialKind, type CredentialOwner, type EstateInventory } from '../../domain/credential.js';
import type { GraphClient } from './graph.js';
import { ownerFromDirectoryObject } from './people.js';
import { mapBounded } from '../bounded.js';
import { readCredentialSignIns, withSignIns, type CredentialSignIns } from './signin-activity.js';
import { collectPages, type StreamInventory } from '../pages.js';

/** Entra app registrations and service principals → one Credential per client secret or certificate. */

export interface EntraInventorySource {
  estate: 'entra';
  /** The configured tenant label (e.g. "contoso"). */
  scope: string;
  host: string;
  scan(options: { signal?: AbortSignal }): Promise<EstateInventory>;
  /** The same, one Graph page (999 apps or service principals, with their owners) at a time. */
  stream: StreamInventory;
}

type Holder = { objectType: 'application' | 'servicePrincipal'; objectId: string; appId: string; displayName: string; appObjectId?: string };
type Held = { holder: Holder; credentials: Credential[]; expandedOwners?: unknown };

/** Graph gives at most this many owners of an expanded holder, with no link to the rest. */
const EXPANDED_OWNERS_MAX = 20;

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
    where: { estate: 'entra', scope: holder.appId, host, label: `${holder.objectType === 'servicePrincipal' ? 'service principal' : 'app'} ${holder.displayName}` },
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


/** The people (or SPs) who answer for a holder's credentials, instead of the app itself; the app stays when Graph says none. */
function withOwners(credentials: Credential[], owners: CredentialOwner[] | Error): Credential[] {
  if (owners instanceof Error) {
    return credentials.map((c) => ({ ...c, attributes: { ...c.attributes, ownersError: owners.message } }));
  }
  const primary = owners.find((o) => o.kind === 'user' && o.active !== false) ?? owners.find((o) => o.kind === 'user') ?? owners[0];
  return credentials.map((c) => ({ ...c, ...(primary ? { owner: primary } : {}), owners }));
}

export function createEntraInventory(options: { tenantLabel: string; graph: GraphClient; concurrency?: number }): EntraInventorySource {
  const { tenantLabel, graph } = options;
  const host = graph.baseUrl;

  const stream: StreamInventory = async ({ signal }, onPage) => {
    // Last use per secret/certificate (beta report), read once there is something to report on; without
    // AuditLog.Read.All each credential says what to grant.
    let signIns: Promise<CredentialSignIns> | undefined;
    /** One page of holders → their credentials with owners and last use (undefined: nothing on the page to own). */
    const withOwnersOf = async (held: Held[]): Promise<Credential[] | undefined> => {
      // Owners only where there is something to own: as the listing expanded them, else one paged owners call per app
      // or SP (a few at a time) — an SP page, or an app with 20 expanded owners (there may be more).
      const owned = held.filter((h) => h.credentials.length > 0);
      if (owned.length === 0) return undefined;
      if (!signIns) {
        signIns = readCredentialSignIns(graph, { signal });
        signIns.catch(() => undefined); // awaited below; a failed owners page must not leave it unhandled
      }
      const withPeople = await mapBounded(owned, options.concurrency ?? 4, async ({ holder, credentials, expandedOwners }) => {
        let owners: CredentialOwner[] | Error;
        try {
          const complete = Array.isArray(expandedOwners) && expandedOwners.length < EXPANDED_OWNERS_MAX;
          const listed = complete ? expandedOwners as DirectoryObject[] : await graph.listOwners(holder.objectId, { signal, target: holder.objectType });
          owners = listed.map(ownerFromDirectoryObject).filter((o): o is CredentialOwner => o !== undefined);
        } catch (err) {
          if (signal?.aborted) throw err;
          // The credentials still count; the card shows the app until Graph lets us read its owners.
          owners = err instanceof Error ? err : new Error(String(err));
        }
        return withOwners(credentials, owners);
      });
      return withSignIns(withPeople.flat(), await signIns);
    };
    // A page's owners are read while the next page is fetched and its owners start (Graph's window stays full across
    // page boundaries); pages are still handed over in order, and at most two are in hand.
    let handing: Promise<void> = Promise.resolve();
    const handOver = (held: Held[]): Promise<void> => {
      const owned = withOwnersOf(held);
      owned.catch(() => undefined); // awaited in the chain below
      const previous = handing;
      handing = previous.then(async () => {
        const credentials = await owned;
        if (credentials) await onPage(credentials);
      });
      handing.catch(() => undefined); // awaited by the next page or at the end
      return previous;
    };

    // Both levels: SP-level secrets authenticate too and do not show in the portal's app blade. Apps first: an SP
    // names its app's object id, so that map (two ids per app) is complete before the SPs come.
    const appObjectIdByAppId = new Map<string, string>();
    // Apps come with their owners (most apps hold a credential: one owners call per app was most of a scan's Graph
    // calls); SPs do not (most hold none, and expanding cuts Graph's pages from 999 to 100 items).
    await graph.eachApplicationsPage(async (apps) => {
      const held: Held[] = [];
      for (const app of apps) {
        if (typeof app.appId === 'string' && typeof app.id === 'string') appObjectIdByAppId.set(app.appId, app.id);
        if (typeof app.id !== 'string' || typeof app.appId !== 'string' || !app.id || !app.appId) continue;
        const holder: Holder = { objectType: 'application', objectId: app.id, appObjectId: app.id, appId: app.appId, displayName: app.displayName ?? app.appId };
        held.push({ holder, credentials: credentialsOf(host, holder, app), expandedOwners: app.owners });
      }
      await handOver(held);
    }, { signal, expand: 'owners' });
    await graph.eachServicePrincipalsPage(async (sps) => {
      const held: Held[] = [];
      for (const sp of sps) {
        if (typeof sp.id !== 'string' || typeof sp.appId !== 'string' || !sp.id || !sp.appId) continue;
        const holder: Holder = {
          objectType: 'servicePrincipal', objectId: sp.id, appObjectId: appObjectIdByAppId.get(sp.appId) || undefined,
          appId: sp.appId, displayName: sp.displayName ?? sp.appId,
        };
        held.push({ holder, credentials: credentialsOf(host, holder, sp) });
      }
      await handOver(held);
    }, { signal });
    await handing;
    return { estate: 'entra', scope: tenantLabel, host, facts: {} };
  };

  return { estate: 'entra', scope: tenantLabel, host, stream, scan: ({ signal } = {}) => collectPages(stream, { signal }) };
}
