import type { EmulatorRequest, EmulatorResponse } from '../emulator.js';
import type { Caller } from './authn.js';
import type { TokenGrant, WorkspaceModel } from './model.js';
import { KNOWN_CONF_KEYS, parseScopes, WorkspaceRuleError } from './model.js';
import { apiError, noContent, ok, publicTokenInfo, tokenInfo } from './responses.js';

/** Token API, Token Management API, token permissions and workspace-conf. */

export interface RouteContext {
  ws: WorkspaceModel;
  req: EmulatorRequest;
  caller: Caller;
  /** Path with the /api/2.0/preview alias folded onto /api/2.0. */
  path: string;
}

type Body = Record<string, unknown>;

/** Parses a JSON object body, answering Databricks' MALFORMED_REQUEST when it is not one. */
export function readBody(req: EmulatorRequest): { body: Body; error?: undefined } | { error: EmulatorResponse } {
  if (!req.bodyText.trim()) return { body: {} };
  try {
    const v: unknown = JSON.parse(req.bodyText);
    if (v && typeof v === 'object' && !Array.isArray(v)) return { body: v as Body };
  } catch { /* answered below */ }
  return { error: apiError(400, 'MALFORMED_REQUEST', 'Invalid JSON given in the body of the request - expected a JSON object.') };
}

const ADMIN_ONLY = () => apiError(403, 'PERMISSION_DENIED', 'Only Admins can access token management APIs.');
const NO_CAN_USE = () => apiError(403, 'PERMISSION_DENIED', 'User is not authorized to use personal access tokens (needs CAN_USE on authorization/tokens).');
const tokenMissing = (id: string) => apiError(404, 'RESOURCE_DOES_NOT_EXIST', `Token with id ${id} does not exist.`);

function ruleError(err: unknown): EmulatorResponse {
  if (err instanceof WorkspaceRuleError) return apiError(err.status, err.code, err.message);
  throw err;
}

export function routeTokens(ctx: RouteContext): EmulatorResponse | undefined {
  const { ws, req, caller, path } = ctx;
  const me = caller.principal;
  const m = req.method;

  // ---- Token API: the caller's own tokens ----
  if (path === '/api/2.0/token/create' && m === 'POST') {
    if (!ws.canUseTokens(me)) return NO_CAN_USE();
    const parsed = readBody(req);
    if (parsed.error) return parsed.error;
    const body = parsed.body;
    try {
      const expiryTime = ws.checkNewToken(me, body.lifetime_seconds);
      const t = ws.mintToken({ owner: me, createdBy: me, comment: String(body.comment ?? ''), expiryTime, scopes: parseScopes(body.scopes) });
      return ok({ token_value: t.value, token_info: publicTokenInfo(t) });
    } catch (err) {
      return ruleError(err);
    }
  }
  if (path === '/api/2.0/token/list' && m === 'GET') {
    if (!ws.canUseTokens(me)) return NO_CAN_USE();
    const mine = ws.liveTokens().filter((t) => t.ownerId === me.id && ws.isUsable(t));
    return ok(mine.length ? { token_infos: mine.map(publicTokenInfo) } : {});
  }
  if (path === '/api/2.0/token/delete' && m === 'POST') {
    if (!ws.canUseTokens(me)) return NO_CAN_USE();
    const parsed = readBody(req);
    if (parsed.error) return parsed.error;
    const body = parsed.body;
    if (typeof body.token_id !== 'string') return apiError(400, 'INVALID_PARAMETER_VALUE', 'Missing required field: token_id');
    const t = ws.tokens.get(body.token_id);
    if (!t || t.revoked || t.ownerId !== me.id) return tokenMissing(body.token_id);
    ws.revokeToken(t, `deleted by owner ${me.userName}`);
    return ok({});
  }

  // ---- Token Management API: admins only ----
  if (path === '/api/2.0/token-management/tokens' && m === 'GET') {
    if (!ws.isAdmin(me)) return ADMIN_ONLY();
    let list = ws.liveTokens();
    const byId = req.url.searchParams.get('created_by_id');
    if (byId !== null) {
      if (!/^\d+$/.test(byId)) return apiError(400, 'INVALID_PARAMETER_VALUE', `created_by_id must be a number, got "${byId}".`);
      list = list.filter((t) => t.createdById === BigInt(byId));
    }
    const byName = req.url.searchParams.get('created_by_username');
    if (byName !== null) list = list.filter((t) => t.createdByUsername === byName);
    return ok(list.length ? { token_infos: list.map((t) => tokenInfo(ws, t)) } : {});
  }
  const one = /^\/api\/2\.0\/token-management\/tokens\/([^/]+)$/.exec(path);
  if (one && (m === 'GET' || m === 'DELETE')) {
    if (!ws.isAdmin(me)) return ADMIN_ONLY();
    const t = ws.tokens.get(one[1]!);
    if (!t || t.revoked) return tokenMissing(one[1]!);
    if (m === 'GET') return ok({ token_info: tokenInfo(ws, t) });
    ws.revokeToken(t, `deleted by admin ${me.userName}`);
    return ok({});
  }
  if (path === '/api/2.0/token-management/on-behalf-of/tokens' && m === 'POST') {
    if (!ws.isAdmin(me)) return ADMIN_ONLY();
    const parsed = readBody(req);
    if (parsed.error) return parsed.error;
    const body = parsed.body;
    if (typeof body.application_id !== 'string' || !body.application_id) {
      return apiError(400, 'INVALID_PARAMETER_VALUE', 'Missing required field: application_id (the service principal\'s application id, not its SCIM id).');
    }
    const sp = ws.findServicePrincipal(body.application_id);
    if (!sp) return apiError(404, 'RESOURCE_DOES_NOT_EXIST', `Service principal with application id ${body.application_id} does not exist.`);
    if (!ws.canUseTokens(sp)) return apiError(403, 'PERMISSION_DENIED', 'On-behalf-of token creation for service principals is not enabled for this workspace');
    try {
      const expiryTime = ws.checkNewToken(sp, body.lifetime_seconds);
      const t = ws.mintToken({ owner: sp, createdBy: me, comment: String(body.comment ?? ''), expiryTime, scopes: parseScopes(body.scopes) });
      return ok({ token_value: t.value, token_info: tokenInfo(ws, t) });
    } catch (err) {
      return ruleError(err);
    }
  }

  // ---- token permissions ----
  if (path === '/api/2.0/permissions/authorization/tokens/permissionLevels' && m === 'GET') {
    return ok({ permission_levels: [
      { permission_level: 'CAN_USE', description: 'Can use personal access tokens' },
      { permission_level: 'CAN_MANAGE', description: 'Can manage all personal access tokens' },
    ] });
  }
  if (path === '/api/2.0/permissions/authorization/tokens') {
    if (m === 'GET' || m === 'PUT' || m === 'PATCH') {
      if (m !== 'GET' && !ws.isAdmin(me)) return apiError(403, 'PERMISSION_DENIED', 'Only admins can change token permissions.');
      if (!ws.tokensObjectExists) return apiError(404, 'RESOURCE_DOES_NOT_EXIST', 'tokens tokens does not exist');
      if (m !== 'GET') {
        const parsed = readBody(req);
        if (parsed.error) return parsed.error;
        const grants = parseAcl(ws, parsed.body);
        if (!Array.isArray(grants)) return grants;
        if (m === 'PUT') ws.replaceGrants(grants);
        else ws.addGrants(grants);
      }
      return ok(permissionsJson(ws));
    }
  }

  // ---- workspace-conf ----
  if (path === '/api/2.0/workspace-conf' && m === 'GET') {
    const keys = (req.url.searchParams.get('keys') ?? '').split(',').map((k) => k.trim()).filter(Boolean);
    if (keys.length === 0) return apiError(400, 'INVALID_PARAMETER_VALUE', 'Missing required query parameter: keys (e.g. ?keys=maxTokenLifetimeDays).');
    const unknown = keys.filter((k) => !KNOWN_CONF_KEYS.includes(k));
    if (unknown.length) return apiError(400, 'INVALID_PARAMETER_VALUE', `Invalid keys: ${JSON.stringify(unknown)}`);
    return ok(Object.fromEntries(keys.map((k) => [k, ws.conf.get(k) ?? null])));
  }
  if (path === '/api/2.0/workspace-conf' && m === 'PATCH') {
    if (!ws.isAdmin(me)) return apiError(403, 'PERMISSION_DENIED', 'Only admins can change the workspace configuration.');
    const parsed = readBody(req);
    if (parsed.error) return parsed.error;
    const body = parsed.body;
    const problem = confProblem(body);
    if (problem) return apiError(400, 'INVALID_PARAMETER_VALUE', problem);
    for (const [k, v] of Object.entries(body)) ws.conf.set(k, v as string);
    return noContent();
  }
  return undefined;
}

/** Values must be JSON strings (G7); "" and non-numeric limits are refused with the real wording. */
function confProblem(body: Body): string | undefined {
  const bad: Body = {};
  for (const [k, v] of Object.entries(body)) {
    if (!KNOWN_CONF_KEYS.includes(k)) return `Invalid keys: ${JSON.stringify([k])}`;
    const valid = typeof v === 'string' && v !== '' &&
      (k !== 'maxTokenLifetimeDays' || /^\d+$/.test(v)) &&
      (!k.startsWith('enable') || v === 'true' || v === 'false');
    if (!valid) bad[k] = v;
  }
  return Object.keys(bad).length ? `Some values are not allowed: ${JSON.stringify(bad)}` : undefined;
}

function parseAcl(ws: WorkspaceModel, body: Body): TokenGrant[] | EmulatorResponse {
  const acl = body.access_control_list;
  if (!Array.isArray(acl)) return apiError(400, 'INVALID_PARAMETER_VALUE', 'Missing required field: access_control_list');
  const grants: TokenGrant[] = [];
  for (const entry of acl as Array<Record<string, unknown>>) {
    const named = (['group_name', 'user_name', 'service_principal_name'] as const).filter((k) => typeof entry?.[k] === 'string');
    if (named.length !== 1) return apiError(400, 'INVALID_PARAMETER_VALUE', 'Each access control entry needs exactly one of group_name, user_name or service_principal_name.');
    if (entry.permission_level !== 'CAN_USE') {
      return apiError(400, 'INVALID_PARAMETER_VALUE', `Permission level ${String(entry.permission_level)} cannot be granted on tokens; the only grantable level is CAN_USE.`);
    }
    const key = named[0]!;
    const grant: TokenGrant = { type: key === 'group_name' ? 'group' : key === 'user_name' ? 'user' : 'service-principal', name: entry[key] as string };
    if (grant.type === 'group' && grant.name === 'admins') continue; // admins hold CAN_MANAGE regardless
    const why = ws.validateGrant(grant);
    if (why) return apiError(400, 'INVALID_PARAMETER_VALUE', why);
    grants.push(grant);
  }
  return grants;
}

export function permissionsJson(ws: WorkspaceModel): Record<string, unknown> {
  const acl: Array<Record<string, unknown>> = [
    { group_name: 'admins', all_permissions: [{ permission_level: 'CAN_MANAGE', inherited: false }] },
  ];
  for (const g of ws.grants) {
    const perms = [{ permission_level: 'CAN_USE', inherited: false }];
    if (g.type === 'group') acl.push({ group_name: g.name, all_permissions: perms });
    else if (g.type === 'user') acl.push({ user_name: g.name, display_name: ws.findByUserName(g.name)?.displayName, all_permissions: perms });
    else acl.push({ service_principal_name: g.name, display_name: ws.findServicePrincipal(g.name)?.displayName, all_permissions: perms });
  }
  return { object_id: 'authorization/tokens', object_type: 'tokens', access_control_list: acl };
}
