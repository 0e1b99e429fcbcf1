/**
 * Who holds CAN_USE on a workspace's tokens, as plain data: the grants of the permissions API, who they cover, and who
 * loses CAN_USE when the grants change — directly (their own grant goes: Databricks deletes their tokens) or through a
 * group (their tokens stop working until access returns). Pure functions; the planner feeds them fresh reads.
 */
import type { PrincipalType, TokenPermissions } from '../../providers/databricks/types.js';

export interface Grant {
  type: PrincipalType;
  /** Group name, userName, or a service principal's application id. */
  principal: string;
}

export interface WorkspacePerson {
  /** SCIM id (decimal string): what a token's owner_id names. */
  id: string;
  kind: 'user' | 'service-principal';
  /** userName, or the SP's application id. */
  principal: string;
  /** What people call it: userName, or the SP's display name. */
  name: string;
  groups: string[];
}

export const grantKey = (g: Grant): string => `${g.type}:${g.principal.toLowerCase()}`;

/** The direct CAN_USE grants of the ACL (admins' CAN_MANAGE is not grantable and never changes). */
export function canUseGrants(permissions: TokenPermissions): Grant[] {
  return sortGrants(permissions.entries
    .filter((e) => !(e.type === 'group' && e.principal === 'admins'))
    .filter((e) => e.levels.some((l) => l.level === 'CAN_USE' && !l.inherited))
    .map((e) => ({ type: e.type, principal: e.principal })));
}

export function sortGrants(grants: Grant[]): Grant[] {
  const seen = new Map<string, Grant>();
  for (const g of grants) seen.set(grantKey(g), g);
  return [...seen.values()].sort((a, b) => grantKey(a).localeCompare(grantKey(b)));
}

/** "group:users; service-principal:<app id>; user:bob@contoso.com" — sorted, so equal ACLs read the same. */
export function aclText(grants: Grant[]): string {
  return sortGrants(grants).map((g) => `${g.type}:${g.principal}`).join('; ');
}

export function parseAclText(text: string): Grant[] {
  return text.split('; ').filter(Boolean).map((part) => {
    const i = part.indexOf(':');
    const type = part.slice(0, i) as PrincipalType;
    if (!['group', 'user', 'service-principal'].includes(type)) throw new Error(`"${part}" is not a grant (group:, user: or service-principal:)`);
    return { type, principal: part.slice(i + 1) };
  });
}

export function sameGrants(a: Grant[], b: Grant[]): boolean {
  return aclText(a).toLowerCase() === aclText(b).toLowerCase();
}

/** What the permissions API must do to go from `current` to `target`: PATCH the adds, PUT only when something goes. */
export function aclChange(current: Grant[], target: Grant[]): { adds: Grant[]; removes: Grant[] } {
  const has = (list: Grant[], g: Grant) => list.some((x) => grantKey(x) === grantKey(g));
  return { adds: sortGrants(target.filter((g) => !has(current, g))), removes: sortGrants(current.filter((g) => !has(target, g))) };
}

function covers(g: Grant, p: WorkspacePerson): boolean {
  if (g.type === 'group') return g.principal === 'users' || p.groups.includes(g.principal);
  if (g.type === 'user') return p.kind === 'user' && p.principal.toLowerCase() === g.principal.toLowerCase();
  return p.kind === 'service-principal' && p.principal.toLowerCase() === g.principal.toLowerCase();
}

export function canUse(p: WorkspacePerson, grants: Grant[]): boolean {
  return p.groups.includes('admins') || grants.some((g) => covers(g, p));
}

export interface Loser {
  person: WorkspacePerson;
  /** direct: their own grant goes (Databricks deletes their tokens); group: they had it only through a group. */
  how: 'direct' | 'group';
  /** The grants that gave them CAN_USE before. */
  via: Grant[];
}

/** Everyone who can use tokens under `current` and cannot under `target`. */
export function losersOf(people: WorkspacePerson[], current: Grant[], target: Grant[]): Loser[] {
  return people
    .filter((p) => canUse(p, current) && !canUse(p, target))
    .map((p) => {
      const via = current.filter((g) => covers(g, p));
      return { person: p, how: via.some((g) => g.type !== 'group') ? 'direct' as const : 'group' as const, via };
    })
    .sort((a, b) => a.person.name.localeCompare(b.person.name));
}

export function grantWords(g: Grant, people: WorkspacePerson[] = []): string {
  if (g.type === 'group') return `group ${g.principal}`;
  if (g.type === 'user') return `user ${g.principal}`;
  const sp = people.find((p) => p.kind === 'service-principal' && p.principal.toLowerCase() === g.principal.toLowerCase());
  return `service principal ${sp && sp.name !== sp.principal ? `${sp.name} (${g.principal})` : g.principal}`;
}
