import type { EmulatorResponse } from '../emulator.js';
import type { WorkspacePrincipal } from './model.js';
import { authError, ok, scimError, scimMe, scimResource } from './responses.js';
import type { RouteContext } from './routes-tokens.js';

/** Workspace SCIM v2: Users and ServicePrincipals (list with 1-based startIndex paging, get) and Me. */

const SCIM_BASE = '/api/2.0/preview/scim/v2/';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const DEFAULT_COUNT = 10_000;

type Filter = (p: WorkspacePrincipal) => boolean;

/** Supports the single-clause filters Keywarden and the SDKs send: `attr eq|co|sw "value"`. */
function parseFilter(text: string | null): Filter | string {
  if (!text) return () => true;
  const m = /^\s*(\w+)\s+(eq|co|sw)\s+(?:"((?:[^"\\]|\\.)*)"|(true|false))\s*$/i.exec(text);
  if (!m) return `Unsupported filter: ${text}. Use attribute eq|co|sw "value".`;
  const attr = m[1]!;
  const op = m[2]!.toLowerCase();
  const wanted = (m[3] ?? m[4] ?? '').toLowerCase();
  const value = (p: WorkspacePrincipal): string | undefined => {
    switch (attr) {
      case 'userName': return p.kind === 'user' ? p.userName : undefined;
      case 'displayName': return p.displayName;
      case 'applicationId': return p.applicationId;
      case 'id': return p.id.toString();
      case 'active': return String(p.active);
      default: return undefined;
    }
  };
  return (p) => {
    const v = value(p)?.toLowerCase();
    if (v === undefined) return false;
    return op === 'eq' ? v === wanted : op === 'co' ? v.includes(wanted) : v.startsWith(wanted);
  };
}

function project(resource: Record<string, unknown>, attributes: string | null): Record<string, unknown> {
  if (!attributes) return resource;
  const keep = new Set(['id', ...attributes.split(',').map((a) => a.trim()).filter(Boolean)]);
  return Object.fromEntries(Object.entries(resource).filter(([k]) => keep.has(k)));
}

function intParam(raw: string | null, fallback: number): number | undefined {
  if (raw === null || raw === '') return fallback;
  return /^-?\d+$/.test(raw) ? Number(raw) : undefined;
}

export function routeScim(ctx: RouteContext): EmulatorResponse | undefined {
  const { ws, req, caller, path } = ctx;
  if (!path.startsWith(SCIM_BASE)) return undefined;
  const rest = path.slice(SCIM_BASE.length);
  if (req.method !== 'GET') return undefined;

  if (rest === 'Me') {
    const me = caller.principal;
    if (!me.entitlements.some((e) => e === 'workspace-access' || e === 'databricks-sql-access')) {
      return authError(403, 'This API is disabled for users without the databricks-sql-access or workspace-access entitlements. Contact your administrator for more information.');
    }
    return ok(scimMe(me));
  }

  const [collection, id, extra] = rest.split('/');
  if (extra !== undefined || (collection !== 'Users' && collection !== 'ServicePrincipals')) return undefined;
  const kind = collection === 'Users' ? 'user' : 'service-principal';
  const all = [...ws.principals.values()].filter((p) => p.kind === kind);
  const q = req.url.searchParams;

  if (id !== undefined) {
    const found = all.find((p) => p.id.toString() === id);
    if (!found) return scimError(404, kind === 'user' ? 'User not found.' : 'Service principal not found.');
    return ok(project(scimResource(found), q.get('attributes')));
  }

  const filter = parseFilter(q.get('filter'));
  if (typeof filter === 'string') return scimError(400, filter, 'invalidFilter');
  const startIndex = intParam(q.get('startIndex'), 1);
  const count = intParam(q.get('count'), DEFAULT_COUNT);
  if (startIndex === undefined || count === undefined) return scimError(400, 'startIndex and count must be integers.', 'invalidValue');
  const matched = all.filter(filter);
  const from = Math.max(1, startIndex); // SCIM: a startIndex below 1 is read as 1
  const page = matched.slice(from - 1, from - 1 + Math.max(0, count));
  return ok({
    schemas: [LIST_SCHEMA],
    totalResults: matched.length,
    startIndex: from,
    itemsPerPage: page.length,
    Resources: page.map((p) => project(scimResource(p), q.get('attributes'))),
  });
}
