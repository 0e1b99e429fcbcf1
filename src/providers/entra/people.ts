import type { DirectoryObject, User } from '@microsoft/microsoft-graph-types';
import type { CredentialOwner, PeopleDirectory } from '../../domain/credential.js';
import type { GraphClient } from './graph.js';

/** Owners as Graph lists them → CredentialOwner; user names from other estates → Entra object ids. */

/** Graph's `in` operator takes at most 15 values. */
const IN_LIMIT = 15;

const quoted = (v: string): string => `'${v.replace(/'/g, "''")}'`;

type Owner = DirectoryObject & { '@odata.type'?: string; displayName?: string | null; userPrincipalName?: string | null; appId?: string | null; accountEnabled?: boolean | null };

/** A user owner carries the object id Teams mentions and messages; an SP owner is named but never mentioned. */
export function ownerFromDirectoryObject(o: Owner): CredentialOwner | undefined {
  if (!o || typeof o !== 'object' || typeof o.id !== 'string' || !o.id) return undefined;
  const type = String(o['@odata.type'] ?? '').replace(/^#microsoft\.graph\./, '');
  const active = typeof o.accountEnabled === 'boolean' ? { active: o.accountEnabled } : {};
  if (type === 'user') {
    // Without User.ReadBasic.All Graph returns only the type and id of a user owner.
    const name = o.displayName || o.userPrincipalName || `user ${o.id}`;
    return { id: o.id, name, kind: 'user', entraObjectId: o.id, ...active };
  }
  if (type === 'servicePrincipal') {
    return { id: o.id, name: o.displayName || o.appId || o.id, kind: 'service-principal', ...(o.appId ? { applicationId: o.appId } : {}), ...active };
  }
  return { id: o.id, name: `${type || 'directory object'} ${o.id}`, kind: 'unknown' };
}

/** Looks people up by UPN, then (guests) by mail, 15 names a request. */
export function createEntraPeopleDirectory(graph: GraphClient): PeopleDirectory {
  return {
    async lookup(userNames, options = {}) {
      const found = new Map<string, { entraObjectId: string; displayName?: string }>();
      const wanted = [...new Set(userNames.map((n) => n.trim().toLowerCase()).filter(Boolean))];
      for (const field of ['userPrincipalName', 'mail'] as const) {
        const missing = wanted.filter((n) => !found.has(n));
        for (let i = 0; i < missing.length; i += IN_LIMIT) {
          const batch = missing.slice(i, i + IN_LIMIT);
          const users: User[] = await graph.listUsers({ filter: `${field} in (${batch.map(quoted).join(',')})`, signal: options.signal });
          for (const u of users) {
            const key = String(u[field] ?? '').toLowerCase();
            if (u.id && batch.includes(key) && !found.has(key)) found.set(key, { entraObjectId: u.id, ...(u.displayName ? { displayName: u.displayName } : {}) });
          }
        }
      }
      return found;
    },
  };
}
