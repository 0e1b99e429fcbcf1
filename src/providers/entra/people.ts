import type { DirectoryObject, User } from '@microsoft/microsoft-graph-types';
import type { CredentialOwner, PeopleDirectory } from '../../domain/credential.js';
import type { GraphClient } from './graph.js';
import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import { mapBounded } from '../bounded.js';

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

export interface PeopleDirectoryOptions {
  /** How long an answer (found or not) is reused after it came (default 0: shared only while the question is in flight). */
  cacheMs?: number;
  /** Batches of 15 names asked at once (default 4). */
  concurrency?: number;
  clock?: Clock;
}

type Person = { entraObjectId: string; displayName?: string };

/** Looks people up by UPN, then (guests) by mail, 15 names a request; workspaces asking about the same people at the same time share one question. */
export function createEntraPeopleDirectory(graph: GraphClient, options: PeopleDirectoryOptions = {}): PeopleDirectory {
  const clock = options.clock ?? systemClock;
  const cacheMs = options.cacheMs ?? 0;
  const known = new Map<string, { person: Person | undefined; at: number }>();
  const asking = new Map<string, Promise<Person | undefined>>();

  const ask = async (wanted: string[], signal?: AbortSignal): Promise<Map<string, Person>> => {
    const found = new Map<string, Person>();
    for (const field of ['userPrincipalName', 'mail'] as const) {
      const missing = wanted.filter((n) => !found.has(n));
      const batches: string[][] = [];
      for (let i = 0; i < missing.length; i += IN_LIMIT) batches.push(missing.slice(i, i + IN_LIMIT));
      await mapBounded(batches, options.concurrency ?? 4, async (batch) => {
        const users: User[] = await graph.listUsers({ filter: `${field} in (${batch.map(quoted).join(',')})`, signal });
        for (const u of users) {
          const key = String(u[field] ?? '').toLowerCase();
          if (u.id && batch.includes(key) && !found.has(key)) found.set(key, { entraObjectId: u.id, ...(u.displayName ? { displayName: u.displayName } : {}) });
        }
      });
    }
    return found;
  };

  return {
    async lookup(userNames, lookupOptions = {}) {
      const wanted = [...new Set(userNames.map((n) => n.trim().toLowerCase()).filter(Boolean))];
      const now = clock.now();
      const found = new Map<string, Person>();
      const waits: Array<Promise<void>> = [];
      const toAsk: string[] = [];
      for (const name of wanted) {
        const hit = known.get(name);
        if (hit && now - hit.at < cacheMs) {
          if (hit.person) found.set(name, hit.person);
        } else if (asking.has(name)) {
          waits.push(asking.get(name)!.then((p) => { if (p) found.set(name, p); }));
        } else toAsk.push(name);
      }
      if (toAsk.length > 0) {
        const answer = ask(toAsk, lookupOptions.signal);
        for (const name of toAsk) asking.set(name, answer.then((m) => m.get(name), () => undefined));
        try {
          const got = await answer;
          for (const name of toAsk) {
            if (cacheMs > 0) known.set(name, { person: got.get(name), at: clock.now() });
            const p = got.get(name);
            if (p) found.set(name, p);
          }
        } finally {
          for (const name of toAsk) asking.delete(name);
        }
      }
      await Promise.all(waits);
      return found;
    },
  };
}
