import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { IssuedTokenPrincipal, TokenValidator } from '../auth.js';
import type { EmulatorHandler, EmulatorRequest, EmulatorResponse } from '../emulator.js';
import {
  applicationJson, applySelect, directoryObjectJson, graphError, GraphRequestError, nextLinkFor, parseFilter, parsePaging,
  parseSelect, passwordJson, servicePrincipalJson, userJson,
} from './graph-shapes.js';
import { SIGN_IN_REPORTS, signInReport, type SignInReport } from './signin-reports.js';
import type { CredentialTarget, DirectoryApplication, DirectoryServicePrincipal, EntraDirectory } from './state.js';
import { GRAPH_RESOURCE } from './tokens.js';

/** Microsoft Graph v1.0: applications, servicePrincipals, their credentials and owners, group membership. */

export interface GraphContext {
  directory: EntraDirectory;
  validator: TokenValidator;
  clock: Clock;
  baseUrl(): string;
  /** Server-driven page size cap (real Graph: 100 by default, 999 max). */
  maxPageSize(): number;
}

const READ_APPS = ['Application.Read.All', 'Application.ReadWrite.All', 'Directory.Read.All'];
const READ_GROUPS = ['GroupMember.Read.All', 'Directory.Read.All', 'Group.Read.All'];
const READ_USERS = ['User.Read.All', 'User.ReadBasic.All', 'Directory.Read.All'];
const DENIED = 'Insufficient privileges to complete the operation.';

interface Caller {
  principal: IssuedTokenPrincipal;
  permissions: Set<string>;
  spObjectId: string | undefined;
}

type Kind = CredentialTarget['kind'];
const COLLECTION: Record<string, Kind> = { applications: 'application', servicePrincipals: 'servicePrincipal' };

function authenticate(ctx: GraphContext, req: EmulatorRequest): Caller {
  const header = req.headers.authorization ?? '';
  const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
  const challenge = { 'www-authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"' };
  if (!token) throw new GraphRequestError(401, 'InvalidAuthenticationToken', 'Access token is empty.', challenge);
  const check = ctx.validator.validate(token, GRAPH_RESOURCE);
  if (!check.ok) throw new GraphRequestError(401, 'InvalidAuthenticationToken', `Access token validation failure: ${check.reason}.`, challenge);
  const principal = check.principal;
  return {
    principal,
    permissions: new Set(ctx.directory.permissionsOf(principal.appId)),
    spObjectId: ctx.directory.servicePrincipalByAppId(principal.appId)?.id,
  };
}

function hasAny(caller: Caller, perms: string[]): boolean {
  return perms.some((p) => caller.permissions.has(p));
}

function owns(ctx: GraphContext, caller: Caller, kind: Kind, holder: DirectoryApplication | DirectoryServicePrincipal): boolean {
  if (!caller.spObjectId) return false;
  if (holder.owners.includes(caller.spObjectId)) return true;
  // An SP is also manageable through ownership of its application.
  if (kind === 'servicePrincipal') return ctx.directory.applicationByAppId(holder.appId)?.owners.includes(caller.spObjectId) ?? false;
  return false;
}

function canRead(ctx: GraphContext, caller: Caller, kind: Kind, holder: DirectoryApplication | DirectoryServicePrincipal): boolean {
  if (hasAny(caller, READ_APPS)) return true;
  return caller.permissions.has('Application.ReadWrite.OwnedBy') && owns(ctx, caller, kind, holder);
}

function canWrite(ctx: GraphContext, caller: Caller, kind: Kind, holder: DirectoryApplication | DirectoryServicePrincipal): boolean {
  if (caller.permissions.has('Application.ReadWrite.All')) return true;
  return caller.permissions.has('Application.ReadWrite.OwnedBy') && owns(ctx, caller, kind, holder);
}

function holders(ctx: GraphContext, kind: Kind): Array<DirectoryApplication | DirectoryServicePrincipal> {
  return kind === 'application' ? [...ctx.directory.applications.values()] : [...ctx.directory.servicePrincipals.values()];
}

function toJson(ctx: GraphContext, kind: Kind, holder: DirectoryApplication | DirectoryServicePrincipal): Record<string, unknown> {
  return kind === 'application'
    ? applicationJson(holder, ctx.directory.tenantName)
    : servicePrincipalJson(holder as DirectoryServicePrincipal, ctx.directory.tenantId);
}

/** `{id}` or `(appId='{appId}')` alternate key. */
function findHolder(ctx: GraphContext, kind: Kind, key: string): DirectoryApplication | DirectoryServicePrincipal {
  const alt = /^\(appId='([^']+)'\)$/.exec(key);
  const holder = alt
    ? (kind === 'application' ? ctx.directory.applicationByAppId(alt[1]!) : ctx.directory.servicePrincipalByAppId(alt[1]!))
    : ctx.directory.holder({ kind, id: key });
  if (!holder) {
    throw new GraphRequestError(404, 'Request_ResourceNotFound', `Resource '${alt ? alt[1] : key}' does not exist or one of its queried reference-property objects are not present.`);
  }
  return holder;
}

function page<T = Record<string, unknown>>(
  ctx: GraphContext, req: EmulatorRequest, context: string, items: T[], render: (item: T) => Record<string, unknown> = (item) => item as Record<string, unknown>,
  serverMax = ctx.maxPageSize(),
): EmulatorResponse {
  const { top, offset } = parsePaging(req.url, serverMax);
  const slice = items.slice(offset, offset + top).map(render);
  const body: Record<string, unknown> = { '@odata.context': `${ctx.baseUrl()}/v1.0/$metadata#${context}` };
  if (offset + top < items.length) body['@odata.nextLink'] = nextLinkFor(req.url, ctx.baseUrl(), offset + top);
  body.value = slice;
  return { status: 200, body };
}

function listHolders(ctx: GraphContext, req: EmulatorRequest, caller: Caller, collection: string, kind: Kind): EmulatorResponse {
  if (!hasAny(caller, [...READ_APPS, 'Application.ReadWrite.OwnedBy'])) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
  const typeName = kind === 'application' ? 'application' : 'servicePrincipal';
  const select = parseSelect(req.url);
  const filter = parseFilter(req.url, ['appId', 'displayName', 'id'], kind === 'application' ? 'Application' : 'ServicePrincipal');
  const expand = parseExpand(req.url, typeName);
  const visible = holders(ctx, kind).filter((h) => canRead(ctx, caller, kind, h));
  const shape = (o: Record<string, unknown>) => applySelect(o, select, typeName);
  const context = select ? `${collection}(${select.join(',')}${expand ? `,${expand}()` : ''})` : collection;
  // Graph: an expanded directory relationship gives at most 20 objects and no link to the rest, and pages hold 100.
  const withOwners = (h: DirectoryApplication | DirectoryServicePrincipal, o: Record<string, unknown>) => (expand
    ? { ...o, owners: h.owners.slice(0, EXPANDED_MAX).map((id) => ownerJson(ctx, caller, id)) }
    : o);
  const max = expand ? Math.min(EXPAND_PAGE_MAX, ctx.maxPageSize()) : ctx.maxPageSize();
  // Unfiltered, only the page asked for is rendered (a 20,000-app tenant rendered every app for each of its pages).
  if (!filter) return page(ctx, req, context, visible, (h) => withOwners(h, shape(toJson(ctx, kind, h))), max);
  return page(ctx, req, context, visible.filter((h) => filter(toJson(ctx, kind, h))), (h) => withOwners(h, shape(toJson(ctx, kind, h))), max);
}

const EXPANDED_MAX = 20;
const EXPAND_PAGE_MAX = 100;

/** `$expand=owners` (the one relationship the emulator expands on apps and SPs); nested options are not emulated. */
function parseExpand(url: URL, typeName: string): 'owners' | undefined {
  const raw = url.searchParams.get('$expand');
  if (raw === null || raw.trim() === '') return undefined;
  if (raw.trim() === 'owners') return 'owners';
  throw new GraphRequestError(400, 'Request_BadRequest', `Could not find a navigation property named '${raw.trim()}' on type 'microsoft.graph.${typeName}' (the emulator expands only owners, without nested options).`);
}

/** An owner as Graph lists it; only type and id for users when the caller may not read users. */
function ownerJson(ctx: GraphContext, caller: Caller, id: string): Record<string, unknown> {
  const obj = ctx.directory.directoryObject(id);
  if (!obj) return { '@odata.type': '#microsoft.graph.directoryObject', id };
  if (obj.type === 'user' && !hasAny(caller, READ_USERS)) return { '@odata.type': '#microsoft.graph.user', id };
  return directoryObjectJson(obj, ctx.directory.tenantId);
}

/** GET /users with `$filter` on userPrincipalName / mail / id (eq, in, startswith) and `$select`, paged. */
function listUsers(ctx: GraphContext, req: EmulatorRequest, caller: Caller): EmulatorResponse {
  if (!hasAny(caller, READ_USERS)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
  const select = parseSelect(req.url);
  const filter = parseFilter(req.url, ['userPrincipalName', 'mail', 'id', 'displayName'], 'User');
  const users = [...ctx.directory.users.values()]
    .map((u) => userJson(u))
    .filter((o) => !filter || filter(o))
    .map((o) => {
      const { '@odata.type': _type, ...rest } = o;
      return applySelect(rest, select, 'user');
    });
  return page(ctx, req, select ? `users(${select.join(',')})` : 'users', users);
}

function addPassword(ctx: GraphContext, req: EmulatorRequest, caller: Caller, kind: Kind, holder: DirectoryApplication | DirectoryServicePrincipal): EmulatorResponse {
  if (!canWrite(ctx, caller, kind, holder)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
  const body = req.json<{ passwordCredential?: { displayName?: unknown; startDateTime?: unknown; endDateTime?: unknown } } | null>();
  const input = body?.passwordCredential ?? {};
  const parseTime = (name: string, v: unknown): number | undefined => {
    if (v === undefined || v === null) return undefined;
    const ms = typeof v === 'string' ? Date.parse(v) : NaN;
    if (!Number.isFinite(ms)) throw new GraphRequestError(400, 'Request_BadRequest', `Invalid value specified for property '${name}' of resource 'PasswordCredential'.`);
    return ms;
  };
  const start = parseTime('startDateTime', input.startDateTime);
  const end = parseTime('endDateTime', input.endDateTime);
  if (end !== undefined && end <= (start ?? ctx.clock.now())) {
    throw new GraphRequestError(400, 'Request_BadRequest', 'Invalid value specified for property \'endDateTime\': the end date must be after the start date.');
  }
  if (input.displayName !== undefined && input.displayName !== null && typeof input.displayName !== 'string') {
    throw new GraphRequestError(400, 'Request_BadRequest', "Invalid value specified for property 'displayName' of resource 'PasswordCredential'.");
  }
  const { password, secretText } = ctx.directory.addPassword({ kind, id: holder.id }, {
    displayName: (input.displayName as string | undefined) ?? null, startDateTime: start, endDateTime: end,
  });
  return { status: 200, body: { '@odata.context': `${ctx.baseUrl()}/v1.0/$metadata#microsoft.graph.passwordCredential`, ...passwordJson(password, secretText) } };
}

function removePassword(ctx: GraphContext, req: EmulatorRequest, caller: Caller, kind: Kind, holder: DirectoryApplication | DirectoryServicePrincipal): EmulatorResponse {
  if (!canWrite(ctx, caller, kind, holder)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
  const keyId = req.json<{ keyId?: unknown } | null>()?.keyId;
  if (typeof keyId !== 'string' || !/^[0-9a-f-]{36}$/i.test(keyId)) {
    throw new GraphRequestError(400, 'Request_BadRequest', "The request body needs a 'keyId' (the GUID of the password credential to remove).");
  }
  if (!ctx.directory.removePassword({ kind, id: holder.id }, keyId)) {
    throw new GraphRequestError(404, 'Request_ResourceNotFound', `No password credential found with keyId '${keyId}'.`);
  }
  return { status: 204 };
}

function memberGroups(ctx: GraphContext, req: EmulatorRequest, caller: Caller, userId: string, action: string): EmulatorResponse {
  if (!hasAny(caller, READ_GROUPS)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
  if (!ctx.directory.users.has(userId) && !ctx.directory.servicePrincipals.has(userId)) {
    throw new GraphRequestError(404, 'Request_ResourceNotFound', `Resource '${userId}' does not exist or one of its queried reference-property objects are not present.`);
  }
  const memberOf = [...ctx.directory.groups.values()].filter((g) => g.members.includes(userId)).map((g) => g.id);
  if (action === 'getMemberGroups') return { status: 200, body: { '@odata.context': `${ctx.baseUrl()}/v1.0/$metadata#Collection(Edm.String)`, value: memberOf } };
  const groupIds = req.json<{ groupIds?: unknown } | null>()?.groupIds;
  if (!Array.isArray(groupIds) || groupIds.some((g) => typeof g !== 'string') || groupIds.length > 20) {
    throw new GraphRequestError(400, 'Request_BadRequest', "The request body needs 'groupIds': an array of up to 20 group object ids.");
  }
  return { status: 200, body: { '@odata.context': `${ctx.baseUrl()}/v1.0/$metadata#Collection(Edm.String)`, value: (groupIds as string[]).filter((g) => memberOf.includes(g)) } };
}

function route(ctx: GraphContext, req: EmulatorRequest): EmulatorResponse {
  // Beta usage reports (sign-in activity per credential / per app): their own room, see signin-reports.ts.
  const report = /^\/beta\/reports\/(\w+)\/?$/.exec(req.path)?.[1];
  if (report && (SIGN_IN_REPORTS as readonly string[]).includes(report)) return signInReport(ctx, req, authenticate(ctx, req).permissions, report as SignInReport);
  const m = /^\/v1\.0\/(.+)$/.exec(req.path);
  if (!m) throw new GraphRequestError(400, 'BadRequest', `Invalid version: use /v1.0 (got ${req.path}).`);
  const caller = authenticate(ctx, req);
  const segments = m[1]!.replace(/\/+$/, '').split('/');
  const [collection, key, action, extra] = segments as [string, string | undefined, string | undefined, string | undefined];
  const altKey = /^(applications|servicePrincipals)(\(appId='[^']+'\))$/.exec(collection);
  const kind = COLLECTION[altKey ? altKey[1]! : collection];
  if (kind && extra === undefined) {
    const holderKey = altKey ? altKey[2]! : key;
    const coll = altKey ? altKey[1]! : collection;
    const act = altKey ? key : action;
    if (holderKey === undefined) {
      if (req.method !== 'GET') throw new GraphRequestError(405, 'Request_BadRequest', `${req.method} is not supported on /${coll} by the emulator.`);
      return listHolders(ctx, req, caller, coll, kind);
    }
    const holder = findHolder(ctx, kind, holderKey);
    if (act === undefined && req.method === 'GET') {
      if (!canRead(ctx, caller, kind, holder)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
      const select = parseSelect(req.url);
      const obj = applySelect(toJson(ctx, kind, holder), select, kind);
      return { status: 200, body: { '@odata.context': `${ctx.baseUrl()}/v1.0/$metadata#${coll}/$entity`, ...obj } };
    }
    if (act === 'addPassword' && req.method === 'POST') return addPassword(ctx, req, caller, kind, holder);
    if (act === 'removePassword' && req.method === 'POST') return removePassword(ctx, req, caller, kind, holder);
    if ((act === 'owners' || act === 'ownedObjects') && req.method === 'GET') {
      if (!canRead(ctx, caller, kind, holder)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
      const ids = act === 'owners'
        ? holder.owners
        : holders(ctx, 'application').filter((a) => a.owners.includes(holder.id)).map((a) => a.id);
      const objects = ids.map((id) => {
        const app = act === 'ownedObjects' ? ctx.directory.applications.get(id) : undefined;
        if (app) return { '@odata.type': '#microsoft.graph.application', ...applicationJson(app, ctx.directory.tenantName) };
        return ownerJson(ctx, caller, id);
      });
      return page(ctx, req, 'directoryObjects', objects);
    }
  }
  if (collection === 'groups' && key && action === 'members' && req.method === 'GET' && extra === undefined) {
    if (!hasAny(caller, READ_GROUPS)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
    const group = ctx.directory.groups.get(key);
    if (!group) throw new GraphRequestError(404, 'Request_ResourceNotFound', `Resource '${key}' does not exist or one of its queried reference-property objects are not present.`);
    const members = group.members.map((id) => ctx.directory.directoryObject(id)).filter((o) => o !== undefined).map((o) => directoryObjectJson(o, ctx.directory.tenantId));
    return page(ctx, req, 'directoryObjects', members);
  }
  if ((collection === 'users' || collection === 'directoryObjects') && key && (action === 'checkMemberGroups' || action === 'getMemberGroups') && req.method === 'POST') {
    return memberGroups(ctx, req, caller, key, action);
  }
  if (collection === 'users' && key === undefined && req.method === 'GET') return listUsers(ctx, req, caller);
  if (collection === 'users' && key && action === undefined && req.method === 'GET') {
    if (!hasAny(caller, READ_USERS)) throw new GraphRequestError(403, 'Authorization_RequestDenied', DENIED);
    const user = ctx.directory.users.get(key) ?? [...ctx.directory.users.values()].find((u) => u.userPrincipalName.toLowerCase() === key.toLowerCase());
    if (!user) throw new GraphRequestError(404, 'Request_ResourceNotFound', `Resource '${key}' does not exist or one of its queried reference-property objects are not present.`);
    return { status: 200, body: { '@odata.context': `${ctx.baseUrl()}/v1.0/$metadata#users/$entity`, ...userJson(user) } };
  }
  throw new GraphRequestError(400, 'BadRequest', `Resource not found for the segment '${segments[segments.length - 1]}'.`);
}

export function createGraphHandler(ctx: GraphContext): EmulatorHandler {
  return (req) => {
    const clientRequestId = typeof req.headers['client-request-id'] === 'string' ? req.headers['client-request-id'] : undefined;
    try {
      const res = route(ctx, req);
      return { ...res, headers: { 'request-id': clientRequestId ?? randomUUID(), ...(clientRequestId ? { 'client-request-id': clientRequestId } : {}), ...(res.headers ?? {}) } };
    } catch (err) {
      if (err instanceof GraphRequestError) return graphError(err.status, err.code, err.message, ctx.clock.now(), clientRequestId, err.headers);
      throw err;
    }
  };
}
