/**
 * Moving a pipeline off a person's PAT: which service principal takes it over (config), why it may be refused (the
 * token, the secret, the SP's membership and CAN_USE), and the plan an approver approves. The steps themselves are
 * the PAT rotation's (create → set → test → finish), with the SP as the new token's owner.
 */
import { HOUR_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Consumer, Credential } from '../../domain/credential.js';
import { filledInLater, formatDuration, type ActionPlan } from '../../domain/plan.js';
import type { DatabricksClient } from '../../providers/databricks/client.js';
import type { ScimServicePrincipal, TokenPermissions } from '../../providers/databricks/types.js';
import { tail } from '../engine/keyvault-steps.js';
import { rotatedComment, scopesOf } from '../rotate/rotate-pat.js';

export interface TargetServicePrincipal {
  workspace: string;
  applicationId: string;
  name: string;
}

export const SP_CONFIG_KEY = 'governance.moveToServicePrincipal.servicePrincipals';

/** The configured SP of a workspace, if any. */
export function targetFor(config: KeywardenConfig, workspace: string): TargetServicePrincipal | undefined {
  return config.governance.moveToServicePrincipal.servicePrincipals.find((s) => s.workspace === workspace);
}

/** Why this credential cannot be moved, judged from the scan and config alone (no cloud call), or undefined. */
export function moveBlocker(credential: Credential, config: KeywardenConfig): string | undefined {
  if (credential.kind !== 'databricks-pat') return 'only Databricks PATs can be moved to a service principal';
  if (credential.owner?.kind === 'service-principal') {
    return `the token's owner ${credential.owner.name} is already a service principal — nothing to move; rotate it instead`;
  }
  if (credential.heldIn.length === 0) {
    return 'this PAT is not held in a Key Vault secret, so there is no pipeline secret to switch — tag the secret or add a keyVault.mappings entry, scan again, then move it';
  }
  if (typeof credential.attributes.scopesUnreadable === 'string') {
    return `Keywarden cannot read this token's scopes (${credential.attributes.scopesUnreadable}), and the new token must carry the same ones — set its scopes in Databricks, scan again, then move it`;
  }
  if (!targetFor(config, credential.where.scope)) {
    return `no service principal is configured for workspace ${credential.where.scope} — add { workspace: ${credential.where.scope}, applicationId, name } to ${SP_CONFIG_KEY}`;
  }
  return undefined;
}

/** Whether the token ACL gives this SP CAN_USE: admins, a direct grant, or a grant to one of its groups (or `users`). */
export function spCanUseTokens(perms: TokenPermissions, sp: Pick<ScimServicePrincipal, 'applicationId' | 'groups'>): boolean {
  const groups = new Set(['users', ...(sp.groups ?? [])]);
  if (groups.has('admins')) return true;
  return perms.entries.some((e) => e.levels.some((l) => l.level === 'CAN_USE' || l.level === 'CAN_MANAGE')
    && ((e.type === 'service-principal' && e.principal.toLowerCase() === sp.applicationId.toLowerCase()) || (e.type === 'group' && groups.has(e.principal))));
}

/**
 * Asks the workspace whether the SP can take the token over: a member (SCIM) and allowed to use tokens (the token
 * ACL, directly or through a group). Returns the reason it cannot, or undefined.
 */
export async function spNotReady(client: DatabricksClient, sp: TargetServicePrincipal, signal?: AbortSignal): Promise<string | undefined> {
  const found = await client.listServicePrincipals({ filter: `applicationId eq "${sp.applicationId.replace(/["\\]/g, '')}"`, signal });
  const member = found.find((s) => s.applicationId.toLowerCase() === sp.applicationId.toLowerCase());
  if (!member) return `service principal ${sp.name} (${sp.applicationId}) is not a member of workspace ${sp.workspace} (SCIM) — add it to the workspace, or configure another one in ${SP_CONFIG_KEY}`;
  if (!member.active) return `service principal ${sp.name} is deactivated in workspace ${sp.workspace} (SCIM active=false) — activate it first`;
  const perms = await client.getTokenPermissions({ signal });
  if (!spCanUseTokens(perms, member)) {
    return `service principal ${sp.name} lacks CAN_USE on tokens in ${sp.workspace} (permissions/authorization/tokens), so it can neither get nor use a token — grant it CAN_USE (directly or through a group) and ask again`;
  }
  return undefined;
}

/** "Data Factory adf-prod / LS_Databricks_Prod → pipelines a, b", one per consumer. */
export function consumerLine(c: Consumer): string {
  const pipelines = c.pipelines?.length ? ` → pipelines ${c.pipelines.join(', ')}` : ' (no pipeline uses it)';
  return `Data Factory ${c.factory} / linked service ${c.name}${pipelines}${c.pinnedVersion ? ' [pinned secret version: it will NOT get the new token]' : ''}${c.dynamic ? ' [possible: dynamic secret name]' : ''}`;
}

export function planMoveToSp(credential: Credential, options: { config: KeywardenConfig; sp: TargetServicePrincipal }): ActionPlan {
  const { config, sp } = options;
  const block = config.governance.moveToServicePrincipal;
  const held = credential.heldIn[0];
  const secret = held ? `${held.vault}/${held.name}` : '(none)';
  const wsMax = typeof credential.attributes.maxTokenLifetimeDays === 'number' ? credential.attributes.maxTokenLifetimeDays : undefined;
  const lifetimeDays = Math.min(block.lifetimeDays ?? config.workflows.patLifetimeDays, wsMax ?? Number.POSITIVE_INFINITY);
  const graceHours = block.graceHours ?? config.workflows.graceHours;
  const comment = String(credential.attributes.comment ?? credential.name);
  const person = credential.owner?.name ?? 'the owner';
  const scopes = scopesOf(credential);
  const consumers = credential.consumers.map(consumerLine);
  const grace = graceHours === 0 ? 'right after verification' : `${formatDuration(graceHours * HOUR_MS)} after verification (grace window; Rollback possible until then)`;
  return {
    kind: 'move-to-sp',
    subject: credential.id,
    title: `Move pipeline secret ${secret} from ${person}'s PAT "${comment}" to service principal ${sp.name} in ${credential.where.scope}`,
    facts: {
      workspace: credential.where.scope,
      tokenId: credential.nativeId,
      comment,
      expiryTime: credential.expiresAt ?? -1,
      ownerName: credential.owner?.name ?? null,
      ownerId: credential.owner?.id ?? null,
      ownerApplicationId: null,
      newOwnerApplicationId: sp.applicationId,
      newOwnerName: sp.name,
      scopes,
      vault: held?.vault ?? null,
      secret: held?.name ?? null,
      consumers: consumers.join('; ') || null,
    },
    parameters: { lifetimeDays, graceHours },
    operations: [
      `create: an on-behalf-of token for service principal ${sp.name} (application id ${sp.applicationId}) in ${credential.where.scope}, ${scopes ? `scopes ${scopes.split(',').join(', ')} (the same as ${person}'s token)` : `all APIs (like ${person}'s token, which has no scopes)`}, lifetime ${lifetimeDays} d${wsMax ? ` (workspace maximum ${wsMax} d)` : ' (no workspace maximum set)'}, comment "${rotatedComment(comment, filledInLater('job id'))}"`,
      `set: write Key Vault secret ${secret} as a new version holding the SP's token, exp = its expiry, tags managed-by, credential-kind=databricks-pat, credential-id=${filledInLater('new token id')}, workspace=${credential.where.scope}, rotation-id=${filledInLater('job id')}`,
      `test: call ${credential.where.scope} with the new token (list its own tokens) and check it is ${sp.name}'s token with the same scopes`,
      consumers.length
        ? `consumers switching to the SP's token at their next run (they read the latest version): ${consumers.join('; ')}`
        : 'consumers: none found in Data Factory (anything else reading the secret switches at its next read)',
      `finish: revoke ${person}'s token ${tail(credential.nativeId)} ${grace}`,
    ],
    warnings: [
      ...(credential.heldIn.length > 1 ? [`also held in ${credential.heldIn.slice(1).map((h) => `${h.vault}/${h.name}`).join(', ')}: only ${secret} is switched, the others stop working when ${person}'s token is revoked`] : []),
      ...(credential.consumers.some((c) => c.pinnedVersion) ? ['a consumer pins the secret version: update it to the new version before the grace window ends, or it breaks'] : []),
    ],
  };
}
