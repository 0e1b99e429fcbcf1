import { createHash } from 'node:crypto';
import type { EmulatorRequest, EmulatorResponse } from '../emulator.js';
import { graphTime, GraphRequestError, nextLinkFor, parseFilter, parsePaging } from './graph-shapes.js';
import type { DirectoryApplication, DirectoryServicePrincipal, EntraDirectory, StoredKey, StoredPassword } from './state.js';

/**
 * Microsoft Graph beta usage reports: `reports/appCredentialSignInActivities` (last sign-in per client secret or
 * certificate) and `reports/servicePrincipalSignInActivities` (last sign-in per app). Both need AuditLog.Read.All;
 * without it Graph answers 403 Authorization_RequestDenied, which is how tests make the report unavailable.
 * Only credentials with a recorded sign-in are listed, like the real report.
 */

export const SIGN_IN_REPORTS = ['appCredentialSignInActivities', 'servicePrincipalSignInActivities'] as const;
export type SignInReport = (typeof SIGN_IN_REPORTS)[number];

interface ReportContext {
  directory: EntraDirectory;
  baseUrl(): string;
  maxPageSize(): number;
}

/** A stable id per report row (Graph's are opaque base64 strings). */
const rowId = (...parts: string[]): string => createHash('sha256').update(parts.join('|')).digest('base64url').slice(0, 43);
/** Request ids of sign-ins are opaque GUIDs; a stable one per key and time keeps answers repeatable. */
const requestIdOf = (keyId: string, at: number): string => {
  const h = createHash('sha256').update(`${keyId}|${at}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

type Holder = { kind: 'application' | 'servicePrincipal'; holder: DirectoryApplication | DirectoryServicePrincipal };

function credentialRows(ctx: ReportContext): Array<Record<string, unknown>> {
  const dir = ctx.directory;
  const holders: Holder[] = [
    ...[...dir.applications.values()].map((holder) => ({ kind: 'application' as const, holder })),
    ...[...dir.servicePrincipals.values()].map((holder) => ({ kind: 'servicePrincipal' as const, holder })),
  ];
  const rows: Array<Record<string, unknown>> = [];
  for (const { kind, holder } of holders) {
    const app = dir.applicationByAppId(holder.appId);
    const sp = dir.servicePrincipalByAppId(holder.appId);
    const creds: Array<{ c: StoredPassword | StoredKey; type: 'clientSecret' | 'certificate'; usage: string }> = [
      ...holder.passwordCredentials.map((c) => ({ c, type: 'clientSecret' as const, usage: 'sign' })),
      ...holder.keyCredentials.map((c) => ({ c, type: 'certificate' as const, usage: c.usage === 'Sign' ? 'sign' : 'verify' })),
    ];
    for (const { c, type, usage } of creds) {
      const at = dir.signIns.get(c.keyId);
      if (at === undefined) continue;
      rows.push({
        id: rowId(holder.appId, c.keyId), keyId: c.keyId, keyType: type, keyUsage: usage, appId: holder.appId,
        appObjectId: app?.id ?? null, servicePrincipalObjectId: sp?.id ?? null, resourceId: '00000003-0000-0000-c000-000000000000',
        credentialOrigin: kind, createdDateTime: graphTime(c.startDateTime), expirationDateTime: graphTime(c.endDateTime),
        signInActivity: { lastSignInDateTime: graphTime(at), lastSignInRequestId: requestIdOf(c.keyId, at) },
      });
    }
  }
  return rows;
}

function servicePrincipalRows(ctx: ReportContext): Array<Record<string, unknown>> {
  const dir = ctx.directory;
  const rows: Array<Record<string, unknown>> = [];
  for (const sp of dir.servicePrincipals.values()) {
    const app = dir.applicationByAppId(sp.appId);
    const keys = [...sp.passwordCredentials, ...sp.keyCredentials, ...(app?.passwordCredentials ?? []), ...(app?.keyCredentials ?? [])].map((c) => c.keyId);
    const times = keys.map((k) => dir.signIns.get(k)).filter((t): t is number => t !== undefined);
    if (times.length === 0) continue;
    const at = Math.max(...times);
    const activity = { lastSignInDateTime: graphTime(at), lastSignInRequestId: requestIdOf(sp.appId, at) };
    const none = { lastSignInDateTime: null, lastSignInRequestId: null };
    rows.push({
      id: rowId(sp.appId), appId: sp.appId, lastSignInActivity: activity,
      delegatedClientSignInActivity: none, delegatedResourceSignInActivity: none,
      applicationAuthenticationClientSignInActivity: activity, applicationAuthenticationResourceSignInActivity: none,
    });
  }
  return rows;
}

/** GET /beta/reports/{report}: paged, `$filter` on keyId / appId (eq, in). */
export function signInReport(ctx: ReportContext, req: EmulatorRequest, permissions: ReadonlySet<string>, report: SignInReport): EmulatorResponse {
  if (req.method !== 'GET') throw new GraphRequestError(405, 'Request_BadRequest', `${req.method} is not supported on /reports/${report}.`);
  if (!permissions.has('AuditLog.Read.All')) {
    throw new GraphRequestError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  }
  const credential = report === 'appCredentialSignInActivities';
  const filter = parseFilter(req.url, credential ? ['keyId', 'appId'] : ['appId'], credential ? 'AppCredentialSignInActivity' : 'ServicePrincipalSignInActivity');
  const rows = (credential ? credentialRows(ctx) : servicePrincipalRows(ctx)).filter((o) => !filter || filter(o));
  const { top, offset } = parsePaging(req.url, ctx.maxPageSize());
  const body: Record<string, unknown> = { '@odata.context': `${ctx.baseUrl()}/beta/$metadata#reports/${report}` };
  if (offset + top < rows.length) body['@odata.nextLink'] = nextLinkFor(req.url, ctx.baseUrl(), offset + top);
  body.value = rows.slice(offset, offset + top);
  return { status: 200, body };
}
