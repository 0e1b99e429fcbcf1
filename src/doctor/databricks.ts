import type { WorkspaceConfig } from '../config/schema.js';
import { databricksAuthFromConfig, type DatabricksAuth } from '../providers/databricks/auth.js';
import { DatabricksClient } from '../providers/databricks/client.js';
import type { ScimServicePrincipal, TokenInfo, TokenPermissions } from '../providers/databricks/types.js';
import { callSignal, checkMaker, classifyFailure, failureDetail, daysLeft, shortMessage, skipped, type DoctorContext } from './context.js';
import { databricksAdmin, databricksCanUse, keyVaultRole } from './fixes.js';
import type { DoctorCheck, OwnCredentialFinding } from './types.js';

/** Databricks, per workspace: reachability, token management (admin), SCIM, workspace-conf, OBO, instance pools. */

const PROBE_COMMENT = 'keywarden doctor probe';

interface WorkspaceResult {
  checks: DoctorCheck[];
  own: OwnCredentialFinding[];
}

/** Resolves the workspace's auth the way the product does; a PAT kept in Key Vault is read through the vault client. */
async function resolveAuth(ctx: DoctorContext, ws: WorkspaceConfig): Promise<{ auth: DatabricksAuth; viaPat?: string }> {
  if (ws.auth.type === 'entra') return { auth: databricksAuthFromConfig(ws, { credential: ctx.credential, scope: ctx.config.databricks.scope }) };
  if (ws.auth.token) return { auth: { pat: ws.auth.token }, viaPat: 'databricks.workspaces[].auth.token' };
  const ref = ws.auth.keyVaultSecret!;
  const [vaultName, secret] = ref.split('/') as [string, string];
  const vault = ctx.vaults.get(vaultName);
  if (!vault) throw new Error(`auth.keyVaultSecret names vault "${vaultName}", which is not in keyVault.vaults — add it there`);
  const { value } = await vault.readSecretValue(secret, undefined, { signal: callSignal(ctx) });
  return { auth: { pat: value }, viaPat: ref };
}

/** Tries one call; returns its value or the classified failure. */
async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; failure: ReturnType<typeof classifyFailure> }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, failure: classifyFailure(err) };
  }
}

/** CAN_USE for an SP: a direct grant by applicationId, or the `users` group (every principal is in it). */
function spCanUse(perms: TokenPermissions, sp: ScimServicePrincipal): 'yes' | 'maybe' | 'no' {
  const canUse = perms.entries.filter((e) => e.levels.some((l) => l.level === 'CAN_USE' || l.level === 'CAN_MANAGE'));
  if (canUse.some((e) => e.type === 'service-principal' && e.principal.toLowerCase() === sp.applicationId.toLowerCase())) return 'yes';
  if (canUse.some((e) => e.type === 'group' && e.principal === 'users')) return 'yes';
  // A grant to some other group may cover it; SCIM group membership is not read here, so say so.
  return canUse.some((e) => e.type === 'group' && e.principal !== 'admins') ? 'maybe' : 'no';
}

async function checkWorkspace(ctx: DoctorContext, ws: WorkspaceConfig): Promise<WorkspaceResult> {
  const make = checkMaker('databricks', ws.name);
  const checks: DoctorCheck[] = [];
  const own: OwnCredentialFinding[] = [];
  const appId = ctx.identity.clientId;
  const later: Array<[string, string, boolean]> = [
    ['token-management', 'token management: list every user\'s and SP\'s tokens (workspace admin)', true],
    ['scim', 'SCIM: read users and service principals', true],
    ['workspace-conf', 'workspace-conf: read maxTokenLifetimeDays / enableTokensConfig', true],
    ['token-permissions', 'token permissions: read who may use tokens', true],
    ['obo', 'on-behalf-of token creation for the SPs whose PATs are rotated', true],
    ['instance-pools', 'instance pools: list (JIT pools)', true],
  ];

  let resolved: Awaited<ReturnType<typeof resolveAuth>>;
  try {
    resolved = await resolveAuth(ctx, ws);
  } catch (err) {
    const f = classifyFailure(err);
    const vault = ws.auth.type === 'pat' ? ws.auth.keyVaultSecret?.split('/')[0] : undefined;
    const grant = vault && f.kind === 'forbidden' ? keyVaultRole({ name: vault, url: ctx.vaults.get(vault)?.vaultUrl ?? '' }, appId, 'get') : undefined;
    checks.push(make('auth', 'credential for the workspace', {
      status: 'fail', required: true, detail: failureDetail(f), missing: grant?.missing,
      fix: grant?.fix ?? ['Check databricks.workspaces[].auth and azure.credential in the config (see docs/configuration.md).'],
    }));
    return { checks: [...checks, ...skipped(make, later, 'no credential for the workspace')], own };
  }

  const client = new DatabricksClient({
    host: ws.host, auth: resolved.auth, clock: ctx.clock, timeoutMs: ctx.timeoutMs, retry: { maxAttempts: 2, baseDelayMs: 200 },
  });
  const admin = databricksAdmin(ws, appId, resolved.viaPat);
  const signal = () => ({ signal: callSignal(ctx) });

  // Token management is the admin-only call every scan makes; its answer also tells reachability apart.
  const tokens = await attempt(() => client.listTokens(signal()));
  if (!tokens.ok && (tokens.failure.kind === 'unreachable' || tokens.failure.kind === 'unauthenticated')) {
    const unreachable = tokens.failure.kind === 'unreachable';
    checks.push(make('reachable', `reachable at ${ws.host} and signed in`, {
      status: 'fail', required: true, detail: shortMessage(tokens.failure.message),
      missing: unreachable ? 'a network path to the workspace' : 'a valid credential for the workspace',
      fix: unreachable
        ? ['Check databricks.workspaces[].host and the network path (firewall, private endpoint, DNS).']
        : resolved.viaPat
          ? [`The PAT in ${resolved.viaPat} is expired, revoked or from another workspace: store a valid one there.`]
          : ['Check azure.credential and azure.tenantId; the identity\'s secret or certificate must still be valid.'],
    }));
    return { checks: [...checks, ...skipped(make, later, unreachable ? 'workspace unreachable' : 'not signed in')], own };
  }
  checks.push(make('reachable', `reachable at ${ws.host} and signed in`, { status: 'pass', required: true, detail: resolved.viaPat ? `PAT from ${resolved.viaPat}` : 'Entra token of Keywarden\'s identity' }));
  const isAdmin = tokens.ok;
  checks.push(tokens.ok
    ? make('token-management', later[0]![1], { status: 'pass', required: true, detail: `${tokens.value.length} token(s) visible` })
    : make('token-management', later[0]![1], { status: 'fail', required: true, detail: failureDetail(tokens.failure), ...admin }));

  const [users, sps] = await Promise.all([
    attempt(() => client.listUsers({ attributes: 'id,userName,active', ...signal() })),
    attempt(() => client.listServicePrincipals({ attributes: 'id,applicationId,displayName,active', ...signal() })),
  ]);
  if (users.ok && sps.ok) {
    checks.push(make('scim', later[1]![1], { status: 'pass', required: true, detail: `${users.value.length} user(s), ${sps.value.length} service principal(s)` }));
  } else {
    const f = !users.ok ? users.failure : !sps.ok ? sps.failure : undefined;
    checks.push(make('scim', later[1]![1], { status: 'fail', required: true, detail: f ? failureDetail(f) : '', ...admin }));
  }

  const conf = await attempt(() => client.getWorkspaceConf(['maxTokenLifetimeDays', 'enableTokensConfig'], signal()));
  if (conf.ok) {
    const disabled = conf.value.enableTokensConfig === 'false';
    checks.push(make('workspace-conf', later[2]![1], {
      status: disabled ? 'warn' : 'pass', required: true,
      detail: `maxTokenLifetimeDays=${conf.value.maxTokenLifetimeDays ?? 'unset'}, enableTokensConfig=${conf.value.enableTokensConfig ?? 'unset'}${disabled ? ' — PATs are disabled in this workspace, so rotation and JIT cannot mint tokens' : ''}`,
    }));
  } else {
    checks.push(make('workspace-conf', later[2]![1], { status: 'fail', required: true, detail: failureDetail(conf.failure), ...admin }));
  }

  const perms = await attempt(() => client.getTokenPermissions(signal()));
  checks.push(perms.ok
    ? make('token-permissions', later[3]![1], { status: 'pass', required: true, detail: perms.value.exists ? `${perms.value.entries.length} grant(s)` : 'no token permissions yet (only admins may use tokens)' })
    : make('token-permissions', later[3]![1], { status: 'fail', required: true, detail: failureDetail(perms.failure), ...admin }));

  checks.push(await checkObo(ctx, client, ws, { isAdmin, tokens: tokens.ok ? tokens.value : [], sps: sps.ok ? sps.value : undefined, perms: perms.ok ? perms.value : undefined, admin }));

  const pools = await attempt(() => client.listInstancePools(signal()));
  checks.push(pools.ok
    ? make('instance-pools', later[5]![1], { status: 'pass', required: true, detail: `${pools.value.length} pool(s)` })
    : make('instance-pools', later[5]![1], { status: 'fail', required: true, detail: failureDetail(pools.failure), ...admin }));

  if (resolved.viaPat) own.push(...await ownPats(ctx, client, ws));
  return { checks, own };
}

/**
 * OBO is proved without creating anything: Keywarden is an admin (token management answered) and every SP that owns a
 * PAT here holds CAN_USE on tokens. With --create-probe-token, one 5-minute token is minted and deleted at once.
 */
async function checkObo(
  ctx: DoctorContext, client: DatabricksClient, ws: WorkspaceConfig,
  seen: { isAdmin: boolean; tokens: TokenInfo[]; sps?: ScimServicePrincipal[]; perms?: TokenPermissions; admin: ReturnType<typeof databricksAdmin> },
): Promise<DoctorCheck> {
  const make = checkMaker('databricks', ws.name);
  const title = 'on-behalf-of token creation for the SPs whose PATs are rotated';
  if (!seen.isAdmin) return make('obo', title, { status: 'fail', required: true, detail: 'OBO tokens can be created only by a workspace admin', ...seen.admin });
  if (!seen.sps || !seen.perms) return make('obo', title, { status: 'skip', required: true, detail: 'not checked: SCIM or token permissions could not be read' });
  const owners = new Set(seen.tokens.map((t) => t.ownerId).filter((id): id is string => Boolean(id)));
  // JIT tokens are minted on behalf of workflows.jit.applicationId, so that SP needs CAN_USE too.
  const jitApp = ctx.config.workflows.jit.applicationId?.toLowerCase();
  const rotated = seen.sps.filter((sp) => (owners.has(sp.id) || sp.applicationId.toLowerCase() === jitApp) && sp.active);
  const lacking = rotated.filter((sp) => spCanUse(seen.perms!, sp) === 'no');
  const unsure = rotated.filter((sp) => spCanUse(seen.perms!, sp) === 'maybe');
  const named = (list: ScimServicePrincipal[]) => list.map((s) => ({ name: s.displayName || s.applicationId, applicationId: s.applicationId }));
  if (lacking.length > 0) {
    return make('obo', title, {
      status: 'fail', required: true, detail: `no CAN_USE on tokens: ${named(lacking).map((s) => s.name).join(', ')}`, ...databricksCanUse(ws, named(lacking)),
    });
  }
  let detail = rotated.length
    ? `admin, and CAN_USE held by ${named(rotated).map((s) => s.name).join(', ')} (checked without creating a token)`
    : 'admin; no service principal owns a PAT here yet (checked without creating a token)';
  if (ctx.createProbeToken && rotated[0]) {
    const sp = rotated[0];
    try {
      // Minted and deleted at once; the comment and the 5-minute lifetime make a leftover obvious and short-lived.
      const created = await client.createOboToken({ applicationId: sp.applicationId, lifetimeSeconds: 300, comment: PROBE_COMMENT, signal: callSignal(ctx) });
      await client.deleteToken(created.tokenInfo.tokenId, { signal: callSignal(ctx) });
      detail += `; probe: created a 5-minute "${PROBE_COMMENT}" token for ${sp.displayName || sp.applicationId} and deleted it at once`;
    } catch (err) {
      const f = classifyFailure(err);
      return make('obo', title, { status: 'fail', required: true, detail: `probe token for ${sp.displayName || sp.applicationId} failed: ${failureDetail(f)}`, ...databricksCanUse(ws, named([sp])) });
    }
  }
  if (unsure.length > 0) {
    return make('obo', title, {
      status: 'warn', required: true, detail: `${detail}; could not confirm CAN_USE for ${named(unsure).map((s) => s.name).join(', ')} (granted through a group?)`,
      ...databricksCanUse(ws, named(unsure)),
    });
  }
  return make('obo', title, { status: 'pass', required: true, detail });
}

/** The PAT owner's own tokens, with days left (the one Keywarden uses is among them). */
async function ownPats(ctx: DoctorContext, client: DatabricksClient, ws: WorkspaceConfig): Promise<OwnCredentialFinding[]> {
  try {
    const now = ctx.clock.now();
    const mine = await client.listOwnTokens({ signal: callSignal(ctx) });
    return mine.map((t) => {
      const never = t.expiryTime === -1;
      const left = never ? null : daysLeft(t.expiryTime, now);
      return {
        kind: 'databricks-pat' as const, where: `workspace ${ws.name}`, name: t.comment || `token ${t.tokenId}`,
        expiresAt: never ? null : t.expiryTime, daysLeft: left,
        status: left === null ? 'warn' : left < 0 ? 'fail' : left <= 30 ? 'warn' : 'pass',
        note: never ? 'never expires — give Keywarden\'s PAT a lifetime and let it be rotated' : undefined,
      };
    });
  } catch (err) {
    return [{ kind: 'databricks-pat', where: `workspace ${ws.name}`, name: '(own tokens)', expiresAt: null, daysLeft: null, expiryKnown: false, status: 'warn', note: `could not list: ${shortMessage(classifyFailure(err).message)}` }];
  }
}

export async function checkDatabricks(ctx: DoctorContext): Promise<{ checks: DoctorCheck[]; own: OwnCredentialFinding[] }> {
  const results = await Promise.all(ctx.config.databricks.workspaces.map((ws) => checkWorkspace(ctx, ws)));
  return { checks: results.flatMap((r) => r.checks), own: results.flatMap((r) => r.own) };
}
