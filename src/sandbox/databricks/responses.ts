import { randomUUID } from 'node:crypto';
import type { EmulatorResponse } from '../emulator.js';
import { jsonWithBigInts } from '../emulator.js';
import type { InstancePool, WorkspaceModel, WorkspacePrincipal, WorkspaceToken } from './model.js';

/** Response bodies in Databricks' exact shapes: ids as bare JSON numbers, times in epoch ms, both error forms. */

function withRequestId(headers: Record<string, string> = {}): Record<string, string> {
  return { 'x-request-id': randomUUID(), ...headers };
}

export function ok(body: unknown = {}): EmulatorResponse {
  return { status: 200, headers: withRequestId(), rawJson: jsonWithBigInts(body) };
}

export function noContent(): EmulatorResponse {
  return { status: 204, headers: withRequestId() };
}

/** The standard envelope: {"error_code":"RESOURCE_DOES_NOT_EXIST","message":"…"}. */
export function apiError(status: number, errorCode: string, message: string): EmulatorResponse {
  return {
    status,
    headers: withRequestId(status >= 400 && status < 500 ? { 'x-databricks-reason-phrase': message.slice(0, 200) } : {}),
    rawJson: JSON.stringify({ error_code: errorCode, message }),
  };
}

/** The auth layer's form, with a numeric error_code (G2), or the HTML page some front ends send (G3). */
export function authError(status: 401 | 403, message: string, html = false, path = '/'): EmulatorResponse {
  const headers = withRequestId({ 'x-databricks-reason-phrase': message });
  if (html) {
    return {
      status,
      headers: { ...headers, 'content-type': 'text/html;charset=iso-8859-1' },
      body: `<html><head><title>Error ${status} ${message}</title></head><body><h2>HTTP ERROR ${status}</h2>\n<p>Problem accessing ${path}. Reason:<pre>    ${message}</pre></p></body></html>`,
    };
  }
  return { status, headers, rawJson: JSON.stringify({ error_code: status, message }) };
}

export function scimError(status: number, detail: string, scimType?: string): EmulatorResponse {
  const body: Record<string, unknown> = { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'] };
  if (scimType) body.scimType = scimType;
  body.detail = detail;
  body.status = String(status);
  return { status, headers: withRequestId(), rawJson: JSON.stringify(body) };
}

/** Bodies for injected faults, as the real service words them (F22). */
export function faultBody(status: number): unknown {
  if (status === 429) return { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'Workspace exceeded the concurrent limit of 30 requests.' };
  if (status === 503) return { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'The service is currently unavailable.' };
  if (status === 504) return { error_code: 'DEADLINE_EXCEEDED', message: 'The request timed out.' };
  if (status === 401 || status === 403) return { error_code: status, message: 'Invalid access token.' };
  if (status >= 500) return { error_code: 'INTERNAL_ERROR', message: 'Internal error. Please try again later.' };
  return { error_code: 'BAD_REQUEST', message: `Injected error ${status}.` };
}

/** TokenInfo (token-management): the admin view with creator, owner, workspace and last_used_day. */
export function tokenInfo(ws: WorkspaceModel, t: WorkspaceToken): Record<string, unknown> {
  const info: Record<string, unknown> = {
    token_id: t.tokenId,
    creation_time: t.creationTime,
    expiry_time: t.expiryTime,
    comment: t.comment,
    created_by_id: t.createdById,
    created_by_username: t.createdByUsername,
    owner_id: t.ownerId,
    workspace_id: ws.workspaceId,
  };
  if (t.lastUsedDay > 0) info.last_used_day = t.lastUsedDay;
  return withScopes(info, t);
}

/** `scopes` only on scoped tokens (an all-APIs token has none), `autoscope_state` when auto-scoping applies. */
function withScopes(info: Record<string, unknown>, t: WorkspaceToken): Record<string, unknown> {
  if (t.scopes) info.scopes = [...t.scopes];
  if (t.autoscopeState) info.autoscope_state = t.autoscopeState;
  return info;
}

/** PublicTokenInfo (Token API): no owner fields; last_accessed_time instead of last_used_day. */
export function publicTokenInfo(t: WorkspaceToken): Record<string, unknown> {
  const info: Record<string, unknown> = { token_id: t.tokenId, creation_time: t.creationTime, expiry_time: t.expiryTime, comment: t.comment };
  if (t.lastAccessedTime > 0) info.last_accessed_time = t.lastAccessedTime;
  return withScopes(info, t);
}

export function poolJson(p: InstancePool): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = v;
  return out;
}

const GROUP_IDS: Record<string, string> = { admins: '111', users: '112' };

function groupRefs(p: WorkspacePrincipal): Array<Record<string, string>> {
  return [...p.groups].map((g) => {
    const value = GROUP_IDS[g] ?? String(1000 + g.length);
    return { display: g, type: 'direct', value, $ref: `Groups/${value}` };
  });
}

/** SCIM resource: ids are strings in SCIM, unlike the token APIs. */
export function scimResource(p: WorkspacePrincipal): Record<string, unknown> {
  const base: Record<string, unknown> = {
    schemas: [p.kind === 'user' ? 'urn:ietf:params:scim:schemas:core:2.0:User' : 'urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal'],
    id: p.id.toString(),
  };
  if (p.kind === 'user') {
    base.userName = p.userName;
    base.displayName = p.displayName;
    base.emails = [{ value: p.userName, type: 'work', primary: true }];
  } else {
    base.applicationId = p.applicationId;
    base.displayName = p.displayName;
  }
  base.active = p.active;
  base.groups = groupRefs(p);
  base.entitlements = p.entitlements.map((value) => ({ value }));
  return base;
}

/** SCIM Me: always the User schema; an SP's userName is its applicationId. */
export function scimMe(p: WorkspacePrincipal): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    id: p.id.toString(),
    userName: p.userName,
    displayName: p.displayName,
    active: p.active,
    entitlements: p.entitlements.map((value) => ({ value })),
    groups: groupRefs(p),
  };
}
