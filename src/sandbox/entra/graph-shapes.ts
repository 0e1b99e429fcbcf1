import { randomUUID } from 'node:crypto';
import type { EmulatorResponse } from '../emulator.js';
import type { DirectoryApplication, DirectoryServicePrincipal, DirectoryUser, StoredKey, StoredPassword } from './state.js';

/** JSON shapes, query options and error bodies of Microsoft Graph v1.0, as the emulator writes them. */

/** Graph writes credential times as ISO 8601 UTC, without milliseconds when they are zero. */
export function graphTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

export function passwordJson(p: StoredPassword, secretText: string | null = null): Record<string, unknown> {
  return {
    customKeyIdentifier: null, displayName: p.displayName, endDateTime: graphTime(p.endDateTime), hint: p.hint,
    keyId: p.keyId, secretText, startDateTime: graphTime(p.startDateTime),
  };
}

export function keyJson(k: StoredKey): Record<string, unknown> {
  return {
    customKeyIdentifier: k.customKeyIdentifier, displayName: k.displayName, endDateTime: graphTime(k.endDateTime), key: null,
    keyId: k.keyId, startDateTime: graphTime(k.startDateTime), type: k.type, usage: k.usage,
  };
}

export function applicationJson(app: DirectoryApplication, tenantDomain: string): Record<string, unknown> {
  return {
    id: app.id, deletedDateTime: null, appId: app.appId, applicationTemplateId: null, createdDateTime: graphTime(app.createdDateTime),
    description: null, displayName: app.displayName, identifierUris: [], notes: null, publisherDomain: tenantDomain,
    signInAudience: 'AzureADMyOrg', tags: [],
    keyCredentials: app.keyCredentials.map(keyJson), passwordCredentials: app.passwordCredentials.map((p) => passwordJson(p)),
  };
}

export function servicePrincipalJson(sp: DirectoryServicePrincipal, tenantId: string): Record<string, unknown> {
  return {
    id: sp.id, deletedDateTime: null, accountEnabled: sp.accountEnabled, appDisplayName: sp.appDisplayName, appDescription: null,
    appId: sp.appId, appOwnerOrganizationId: tenantId, description: null, displayName: sp.displayName,
    servicePrincipalNames: [sp.appId], servicePrincipalType: 'Application', signInAudience: 'AzureADMyOrg', tags: [],
    keyCredentials: sp.keyCredentials.map(keyJson), passwordCredentials: sp.passwordCredentials.map((p) => passwordJson(p)),
  };
}

export function userJson(u: DirectoryUser): Record<string, unknown> {
  return {
    '@odata.type': '#microsoft.graph.user', id: u.id, displayName: u.displayName, userPrincipalName: u.userPrincipalName,
    mail: u.mail ?? u.userPrincipalName, accountEnabled: u.accountEnabled,
  };
}

export function directoryObjectJson(obj: { type: 'user'; user: DirectoryUser } | { type: 'servicePrincipal'; sp: DirectoryServicePrincipal }, tenantId: string): Record<string, unknown> {
  if (obj.type === 'user') return userJson(obj.user);
  return { '@odata.type': '#microsoft.graph.servicePrincipal', ...servicePrincipalJson(obj.sp, tenantId) };
}

export class GraphRequestError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** `{"error":{"code","message","innerError":{date, request-id, client-request-id}}}` with matching headers. */
export function graphError(status: number, code: string, message: string, nowMs: number, clientRequestId?: string, headers: Record<string, string> = {}): EmulatorResponse {
  const requestId = randomUUID();
  const clientId = clientRequestId ?? requestId;
  return {
    status,
    headers: { 'request-id': requestId, 'client-request-id': clientId, ...headers },
    body: { error: { code, message, innerError: { date: graphTime(Math.floor(nowMs / 1000) * 1000), 'request-id': requestId, 'client-request-id': clientId } } },
  };
}

/** Graph's error body for injected faults (429 throttling, 5xx). */
export function graphFaultBody(status: number): unknown {
  const code = status === 429 ? 'TooManyRequests' : status === 503 ? 'serviceNotAvailable' : status >= 500 ? 'generalException' : 'BadRequest';
  const message = status === 429
    ? 'Too many requests. The request was throttled; retry after the number of seconds in Retry-After.'
    : `The service answered ${status}.`;
  const requestId = randomUUID();
  return { error: { code, message, innerError: { date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), 'request-id': requestId, 'client-request-id': requestId } } };
}

/** Applies `$select` (comma-separated property names), 400 for unknown properties like Graph. */
export function applySelect(obj: Record<string, unknown>, select: string[] | undefined, typeName: string): Record<string, unknown> {
  if (!select) return obj;
  const out: Record<string, unknown> = {};
  for (const name of select) {
    if (!(name in obj)) throw new GraphRequestError(400, 'Request_BadRequest', `Could not find a property named '${name}' on type 'microsoft.graph.${typeName}'.`);
    out[name] = obj[name];
  }
  return out;
}

export function parseSelect(url: URL): string[] | undefined {
  const raw = url.searchParams.get('$select');
  if (raw === null) return undefined;
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  return names.length > 0 ? names : undefined;
}

export type Filter = (obj: Record<string, unknown>) => boolean;

/**
 * The `$filter` forms the emulator supports: `<prop> eq '<v>'`, `startswith(<prop>,'<v>')` and `<prop> in ('<a>','<b>',…)`
 * (at most 15 values, like Graph), joined by `and`.
 */
export function parseFilter(url: URL, filterable: string[], typeName: string): Filter | undefined {
  const raw = url.searchParams.get('$filter');
  if (raw === null || raw.trim() === '') return undefined;
  const clauses = raw.split(/\s+and\s+/i);
  const tests: Filter[] = clauses.map((clause) => {
    const eq = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/.exec(clause);
    const sw = /^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$/i.exec(clause);
    const inList = /^\s*(\w+)\s+in\s+\(\s*('(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*)\s*\)\s*$/i.exec(clause);
    const m = eq ?? sw ?? inList;
    if (!m) throw new GraphRequestError(400, 'BadRequest', `Invalid filter clause: '${clause.trim()}'. Supported forms: prop eq 'value', startswith(prop,'value'), prop in ('a','b').`);
    const prop = m[1]!;
    if (!filterable.includes(prop)) {
      throw new GraphRequestError(400, 'Request_UnsupportedQuery', `Unsupported or invalid query filter clause specified for property '${prop}' of resource '${typeName}'.`);
    }
    if (inList) {
      const values = [...m[2]!.matchAll(/'((?:[^']|'')*)'/g)].map((v) => v[1]!.replace(/''/g, "'").toLowerCase());
      if (values.length > 15) throw new GraphRequestError(400, 'Request_UnsupportedQuery', `Too many values in the 'in' operator for '${prop}': at most 15 are allowed.`);
      return (o) => values.includes(String(o[prop] ?? '').toLowerCase());
    }
    const value = m[2]!.replace(/''/g, "'");
    return eq
      ? (o) => String(o[prop] ?? '').toLowerCase() === value.toLowerCase()
      : (o) => String(o[prop] ?? '').toLowerCase().startsWith(value.toLowerCase());
  });
  return (o) => tests.every((t) => t(o));
}

/** `$top` (1–999) and the opaque `$skiptoken` of a nextLink; the server may cap the page lower. */
export function parsePaging(url: URL, serverMax: number): { top: number; offset: number } {
  const rawTop = url.searchParams.get('$top');
  let top = 100;
  if (rawTop !== null) {
    top = Number(rawTop);
    if (!Number.isInteger(top) || top < 1 || top > 999) {
      throw new GraphRequestError(400, 'Request_BadRequest', `Invalid page size specified: '${rawTop}'. Must be between 1 and 999 inclusive.`);
    }
  }
  const token = url.searchParams.get('$skiptoken');
  let offset = 0;
  if (token !== null) {
    const decoded = Number(Buffer.from(token, 'base64url').toString('utf8').replace(/^offset:/, ''));
    if (!Number.isInteger(decoded) || decoded < 0) throw new GraphRequestError(400, 'Request_BadRequest', "The specified page token value has expired or is invalid: '$skiptoken'.");
    offset = decoded;
  }
  return { top: Math.min(top, serverMax), offset };
}

export function nextLinkFor(url: URL, publicBase: string, offset: number): string {
  const next = new URL(`${publicBase}${url.pathname}`);
  for (const [k, v] of url.searchParams) if (k !== '$skiptoken') next.searchParams.set(k, v);
  next.searchParams.set('$skiptoken', Buffer.from(`offset:${offset}`).toString('base64url'));
  return next.toString();
}
