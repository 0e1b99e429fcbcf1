import type { Application, DirectoryObject } from '@microsoft/microsoft-graph-types';
import { AzureRestClient } from '../providers/entra/azure-rest.js';
import { GraphClient } from '../providers/entra/graph.js';
import { callSignal, checkMaker, classifyFailure, failureDetail, daysLeft, shortMessage, skipped, type DoctorContext } from './context.js';
import { graphAppRole, graphOwner } from './fixes.js';
import { readCredentialSignIns, SIGN_IN_PERMISSION } from '../providers/entra/signin-activity.js';
import type { DoctorCheck, OwnCredentialFinding } from './types.js';

/**
 * Microsoft Graph: which application permissions Keywarden's identity holds, proved without writing anything.
 * The granted app roles are read from the `roles` claim of the Graph token Keywarden gets (what Graph itself
 * enforces after admin consent), and each one is exercised with a read: list applications (Read.All), list the
 * SP's ownedObjects (OwnedBy: which apps it may rotate), list an approver group's members (GroupMember.Read.All).
 * addPassword would be the only direct proof of OwnedBy and is too invasive for a health check.
 */

const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
const READ_ALL = ['Application.Read.All', 'Directory.Read.All', 'Application.ReadWrite.All', 'Directory.ReadWrite.All'];
const GROUP_READ = ['GroupMember.Read.All', 'Group.Read.All', 'Directory.Read.All'];
const BROADER = ['Application.ReadWrite.All', 'Directory.ReadWrite.All'];

interface TokenFacts {
  roles?: string[];
  appId?: string;
  spObjectId?: string;
}

/** The claims of an access token, when it is a readable JWT (never printed). */
export function tokenFacts(token: string): TokenFacts {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { roles?: unknown; appid?: unknown; azp?: unknown; oid?: unknown };
    return {
      roles: Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : payload.roles === undefined ? [] : undefined,
      appId: typeof payload.appid === 'string' ? payload.appid : typeof payload.azp === 'string' ? payload.azp : undefined,
      spObjectId: typeof payload.oid === 'string' ? payload.oid : undefined,
    };
  } catch {
    return {};
  }
}

const has = (roles: string[] | undefined, any: string[]) => roles?.some((r) => any.includes(r)) ?? false;

/** Apps the config says Keywarden may rotate (Entra passwords mapped to a Key Vault secret). */
function mappedApps(ctx: DoctorContext): string[] {
  return [...new Set(ctx.config.keyVault.mappings.filter((m) => m.holds.kind === 'entra-password').map((m) => m.holds.scope.toLowerCase()))];
}

function ownCredentials(app: Application, now: number): OwnCredentialFinding[] {
  const where = `app ${app.displayName ?? ''} (${app.appId ?? ''})`.replace('app  (', 'app (');
  const finding = (kind: OwnCredentialFinding['kind'], name: string, end: string | null | undefined): OwnCredentialFinding => {
    const at = end ? Date.parse(end) : NaN;
    if (!Number.isFinite(at)) return { kind, where, name, expiresAt: null, daysLeft: null, status: 'warn', note: 'no end date' };
    const left = daysLeft(at, now);
    return {
      kind, where, name, expiresAt: at, daysLeft: left,
      status: left < 0 ? 'fail' : left <= 30 ? 'warn' : 'pass',
      note: left < 0 ? 'expired — add a new secret/certificate and update azure.credential' : left <= 30 ? 'expires soon — rotate it (Keywarden alerts on it too)' : undefined,
    };
  };
  return [
    ...(app.passwordCredentials ?? []).map((p) => finding('entra-password', `client secret ${p.displayName ?? p.hint ?? p.keyId ?? ''}`.trim(), p.endDateTime)),
    ...(app.keyCredentials ?? []).map((k) => finding('entra-certificate', `certificate ${k.displayName ?? k.keyId ?? ''}`.trim(), k.endDateTime)),
  ];
}

export async function checkGraph(ctx: DoctorContext): Promise<{ checks: DoctorCheck[]; own: OwnCredentialFinding[] }> {
  const graphUrl = ctx.config.entra.graphUrl.replace(/\/+$/, '');
  const make = checkMaker('graph', 'tenant');
  const checks: DoctorCheck[] = [];
  const own: OwnCredentialFinding[] = [];
  const wantsGroups = ctx.config.approvals.groups.length > 0;
  const later: Array<[string, string, boolean]> = [
    ['application-read-all', 'Application.Read.All: read every app and SP with its credentials (scan)', true],
    ['application-readwrite-ownedby', 'Application.ReadWrite.OwnedBy + ownership: rotate secrets of owned apps', true],
    ...(wantsGroups ? [['groupmember-read-all', 'GroupMember.Read.All: check approver group membership', true] as [string, string, boolean]] : []),
    ['auditlog-read-all', `${SIGN_IN_PERMISSION}: last use of Entra secrets (sign-in activity report)`, false],
  ];

  let facts: TokenFacts;
  try {
    const token = await ctx.credential.getToken(GRAPH_SCOPE, { abortSignal: callSignal(ctx) });
    if (!token?.token) throw new Error('the credential returned no token');
    facts = tokenFacts(token.token);
  } catch (err) {
    checks.push(make('token', 'Keywarden\'s identity gets a Microsoft Graph token', {
      status: 'fail', required: true, detail: shortMessage(classifyFailure(err).message), missing: 'a working credential for Keywarden\'s identity',
      fix: ['Check azure.credential and azure.tenantId (see docs/configuration.md); a client secret may have expired.'],
    }));
    return { checks: [...checks, ...skipped(make, later, 'no Graph token')], own };
  }
  ctx.identity.clientId ??= facts.appId;
  ctx.identity.spObjectId ??= facts.spObjectId;
  const { clientId, spObjectId } = ctx.identity;
  const roles = facts.roles;
  checks.push(make('token', 'Keywarden\'s identity gets a Microsoft Graph token', {
    status: 'pass', required: true, detail: roles ? `granted app roles: ${roles.length ? roles.join(', ') : '(none)'}` : 'token roles not readable; judging by calls only',
  }));

  const graph = new GraphClient({ baseUrl: graphUrl, credential: ctx.credential, clock: ctx.clock, timeoutMs: ctx.timeoutMs, maxRetries: 1 });
  const rest = new AzureRestClient({ credential: ctx.credential, scope: GRAPH_SCOPE, clock: ctx.clock, timeoutMs: ctx.timeoutMs, maxRetries: 1, service: 'Microsoft Graph' });

  // Application.Read.All — listing works with OwnedBy too, but then shows only owned apps: the role decides.
  let apps: Application[] | undefined;
  try {
    apps = await graph.listApplications({ signal: callSignal(ctx) });
  } catch (err) {
    const f = classifyFailure(err);
    if (f.kind === 'unreachable') {
      checks.push(make('reachable', `reachable at ${graphUrl}`, { status: 'fail', required: true, detail: shortMessage(f.message), missing: 'a network path to Microsoft Graph', fix: ['Check entra.graphUrl and outbound HTTPS to graph.microsoft.com.'] }));
      return { checks: [...checks, ...skipped(make, later, 'Graph unreachable')], own };
    }
    checks.push(make(later[0]![0], later[0]![1], { status: 'fail', required: true, detail: failureDetail(f), ...graphAppRole('Application.Read.All', clientId, spObjectId, 'to scan every app registration\'s secrets and certificates') }));
  }
  if (apps) {
    const readAll = roles === undefined || has(roles, READ_ALL);
    checks.push(readAll
      ? make(later[0]![0], later[0]![1], { status: 'pass', required: true, detail: `${apps.length} application(s) visible` })
      : make(later[0]![0], later[0]![1], {
        status: 'fail', required: true, detail: `only ${apps.length} owned application(s) visible: the token has no Application.Read.All`,
        ...graphAppRole('Application.Read.All', clientId, spObjectId, 'to scan every app registration\'s secrets and certificates'),
      }));
  }
  if (roles && has(roles, BROADER)) {
    checks.push(make('least-privilege', 'no broader Graph permission than needed', {
      status: 'warn', required: false, detail: `granted ${roles.filter((r) => BROADER.includes(r)).join(', ')}`,
      missing: 'least privilege: Keywarden needs only Application.Read.All + Application.ReadWrite.OwnedBy',
      fix: ['Entra admin center → App registrations → Keywarden\'s app → API permissions → remove Application.ReadWrite.All / Directory.ReadWrite.All → grant Application.ReadWrite.OwnedBy instead (docs/deploy.md §3).'],
    }));
  }

  checks.push(await ownedBy(ctx, rest, graphUrl, roles, make));
  if (wantsGroups) checks.push(await groupRead(ctx, rest, graphUrl, roles, make));
  checks.push(await signInReport(ctx, graph, make));

  // Keywarden's own app secret/certificate expiry (a managed identity has none).
  const app = apps?.find((a) => a.appId?.toLowerCase() === clientId?.toLowerCase())
    ?? (clientId ? await graph.listApplications({ filter: `appId eq '${clientId}'`, signal: callSignal(ctx) }).then((l) => l[0]).catch(() => undefined) : undefined);
  if (app) own.push(...ownCredentials(app, ctx.clock.now()));
  else if (ctx.config.azure.credential.type !== 'managed-identity') {
    own.push({ kind: 'entra-password', where: `app ${clientId ?? '(unknown client id)'}`, name: '(own credentials)', expiresAt: null, daysLeft: null, expiryKnown: false, status: 'info', note: 'no app registration visible for Keywarden\'s client id (a managed identity has no secret to expire)' });
  }
  return { checks, own };
}

async function ownedBy(ctx: DoctorContext, rest: AzureRestClient, graphUrl: string, roles: string[] | undefined, make: ReturnType<typeof checkMaker>): Promise<DoctorCheck> {
  const { clientId, spObjectId } = ctx.identity;
  const title = 'Application.ReadWrite.OwnedBy + ownership: rotate secrets of owned apps';
  const hasOwnedBy = roles === undefined ? undefined : roles.includes('Application.ReadWrite.OwnedBy');
  if (hasOwnedBy === false && !has(roles, BROADER)) {
    return make('application-readwrite-ownedby', title, { status: 'fail', required: true, detail: 'the token has no Application.ReadWrite.OwnedBy', ...graphAppRole('Application.ReadWrite.OwnedBy', clientId, spObjectId, 'to add/remove passwords on the apps Keywarden rotates') });
  }
  if (!spObjectId) return make('application-readwrite-ownedby', title, { status: 'warn', required: true, detail: 'could not learn Keywarden\'s service principal id, so ownership was not checked' });
  const res = await rest.send({ method: 'GET', url: `${graphUrl}/v1.0/servicePrincipals/${encodeURIComponent(spObjectId)}/ownedObjects?$top=999`, signal: callSignal(ctx), retry: 'safe' })
    .catch((err: unknown) => err as Error);
  if (res instanceof Error || res.status !== 200) {
    const message = res instanceof Error ? classifyFailure(res).message : `HTTP ${res.status}`;
    const granted = hasOwnedBy ? 'granted (token roles), but ' : '';
    return make('application-readwrite-ownedby', title, { status: 'warn', required: true, detail: `${granted}could not list the apps Keywarden owns (${shortMessage(message)}); reading ownedObjects needs Application.Read.All` });
  }
  const owned = (((res.body as { value?: DirectoryObject[] }).value ?? []) as Array<DirectoryObject & { appId?: string; displayName?: string }>)
    .filter((o) => (o as { '@odata.type'?: string })['@odata.type'] === '#microsoft.graph.application' && o.appId);
  const ownedIds = new Set(owned.map((o) => o.appId!.toLowerCase()));
  const notOwned = mappedApps(ctx).filter((id) => !ownedIds.has(id));
  const names = owned.map((o) => o.displayName ?? o.appId).join(', ');
  if (notOwned.length > 0) {
    return make('application-readwrite-ownedby', title, { status: 'fail', required: true, detail: `keyVault.mappings rotate app(s) Keywarden does not own: ${notOwned.join(', ')}`, ...graphOwner(notOwned, spObjectId) });
  }
  if (hasOwnedBy !== true) {
    const broader = roles?.filter((r) => BROADER.includes(r)).join(', ');
    return make('application-readwrite-ownedby', title, { status: 'warn', required: true, detail: broader ? `rotation works through the broader ${broader}; owns ${owned.length} app(s)` : `token roles not readable; owns ${owned.length} app(s)` });
  }
  if (owned.length === 0) {
    return make('application-readwrite-ownedby', title, { status: 'warn', required: true, detail: 'granted, but Keywarden owns no application yet, so it cannot rotate any Entra secret', ...graphOwner([], spObjectId) });
  }
  return make('application-readwrite-ownedby', title, { status: 'pass', required: true, detail: `granted; owner of ${owned.length} app(s): ${names} (checked by reading ownedObjects, nothing written)` });
}

async function groupRead(ctx: DoctorContext, rest: AzureRestClient, graphUrl: string, roles: string[] | undefined, make: ReturnType<typeof checkMaker>): Promise<DoctorCheck> {
  const { clientId, spObjectId } = ctx.identity;
  const title = 'GroupMember.Read.All: check approver group membership';
  const grant = graphAppRole('GroupMember.Read.All', clientId, spObjectId, 'approvals.groups is set, so each click is checked against group membership');
  if (roles !== undefined && !has(roles, GROUP_READ)) return make('groupmember-read-all', title, { status: 'fail', required: true, detail: 'the token has no GroupMember.Read.All', ...grant });
  const group = ctx.config.approvals.groups[0]!;
  const res = await rest.send({ method: 'GET', url: `${graphUrl}/v1.0/groups/${encodeURIComponent(group)}/members?$top=1`, signal: callSignal(ctx), retry: 'safe' })
    .catch((err: unknown) => err as Error);
  if (res instanceof Error) return make('groupmember-read-all', title, { status: 'fail', required: true, detail: shortMessage(classifyFailure(res).message) });
  if (res.status === 200) return make('groupmember-read-all', title, { status: 'pass', required: true, detail: `read members of approver group ${group}` });
  if (res.status === 404) {
    return make('groupmember-read-all', title, { status: 'fail', required: true, detail: `approver group ${group} does not exist`, missing: 'an existing approver group', fix: ['Set approvals.groups to the object id of an Entra group (Entra admin center → Groups → the group → Object ID).'] });
  }
  return make('groupmember-read-all', title, { status: 'fail', required: true, detail: `Graph answered HTTP ${res.status} reading approver group ${group}`, ...grant });
}

/** The beta sign-in activity report: optional (the last use of Entra secrets shows as unknown without it). */
async function signInReport(ctx: DoctorContext, graph: GraphClient, make: ReturnType<typeof checkMaker>): Promise<DoctorCheck> {
  const title = `${SIGN_IN_PERMISSION}: last use of Entra secrets (sign-in activity report)`;
  const read = await readCredentialSignIns(graph, { signal: callSignal(ctx) });
  if (read.ok) return make('auditlog-read-all', title, { status: 'pass', required: false, detail: `read the sign-in activity of ${read.byKeyId.size} credential(s)` });
  const grant = graphAppRole(SIGN_IN_PERMISSION, ctx.identity.clientId, ctx.identity.spObjectId, 'so revoking an Entra secret still in use needs a second approver, like a PAT in use (beta report; Entra ID P1/P2)');
  return make('auditlog-read-all', title, { status: 'warn', required: false, detail: `last use of Entra secrets is unknown: ${shortMessage(read.reason)}`, ...(read.statusCode === 403 ? grant : {}) });
}
