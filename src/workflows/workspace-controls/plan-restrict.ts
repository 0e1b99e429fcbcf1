/**
 * The plan for "Restrict token creation": the token ACL now and after, everyone who loses CAN_USE — split into direct
 * grants (Databricks deletes their tokens at once, unrecoverable) and group losses (their tokens stop working until
 * access returns) — each token by name, and the Key Vault secrets and Data Factory pipelines that hold them.
 */
import type { KeywardenConfig } from '../../config/schema.js';
import type { ActionPlan } from '../../domain/plan.js';
import type { Store } from '../../store/store.js';
import type { WorkflowProviders } from '../engine/providers.js';
import { aclChange, aclText, canUseGrants, grantWords, losersOf, sortGrants, type Grant, type Loser } from './acl.js';
import type { BuiltPlan } from './plan-max-lifetime.js';
import { capped, liveTokens, readPeople, scannedTokens, tokenLine, tokenWords, type TokenLine } from './reads.js';

export interface RestrictRequest {
  workspace: string;
  /** The ACL to end with: the configured allow-list, or (rollback) the ACL before a restriction. */
  target: Grant[];
  rollbackOf?: string;
}

/** The configured allow-list of a workspace as grants, or undefined when none is configured. */
export function allowListOf(config: KeywardenConfig, workspace: string): Grant[] | undefined {
  const entry = config.governance.workspaceControls.tokenAllowList.find((a) => a.workspace === workspace);
  if (!entry) return undefined;
  return sortGrants([
    ...entry.groups.filter((g) => g !== 'admins').map((principal) => ({ type: 'group' as const, principal })),
    ...entry.servicePrincipals.map((principal) => ({ type: 'service-principal' as const, principal })),
    ...entry.users.map((principal) => ({ type: 'user' as const, principal })),
  ]);
}

export interface RestrictPlan extends BuiltPlan {
  losers: Array<Loser & { tokens: TokenLine[] }>;
}

const words = (grants: Grant[], people: Parameters<typeof grantWords>[1]) => grants.map((g) => grantWords(g, people)).join(', ') || 'nobody';

export async function planRestrictTokens(input: RestrictRequest & { providers: WorkflowProviders; store: Store; now: number; signal?: AbortSignal }): Promise<RestrictPlan> {
  const { workspace } = input;
  const client = input.providers.databricks(workspace);
  const [permissions, tokens, people] = await Promise.all([
    client.getTokenPermissions({ signal: input.signal }),
    client.listTokens({ signal: input.signal }),
    readPeople(client, input.signal),
  ]);
  const current = canUseGrants(permissions);
  const target = sortGrants(input.target);
  const { adds, removes } = aclChange(current, target);
  const scanned = scannedTokens(input.store, workspace);
  const live = liveTokens(tokens, input.now);
  const losers = losersOf(people, current, target).map((l) => ({
    ...l, tokens: live.filter((t) => t.ownerId === l.person.id).map((t) => tokenLine(t, people, scanned)),
  }));
  const direct = losers.filter((l) => l.how === 'direct');
  const viaGroup = losers.filter((l) => l.how === 'group');
  const ids = (list: typeof losers) => list.flatMap((l) => l.tokens.map((t) => t.tokenId)).sort().join(',');

  const loserLines = (l: (typeof losers)[number]) => {
    const via = l.via.map((g) => grantWords(g, people)).join(', ');
    const head = l.how === 'direct'
      ? `DELETED at once, unrecoverable — ${l.person.name} (own grant: ${via})`
      : `Stop working until access returns — ${l.person.name} (through ${via})`;
    return l.tokens.length ? l.tokens.map((t) => `${head}: ${tokenWords(t, { owner: false })}`) : [`${head}: no tokens today, but cannot create any`];
  };
  const plan: ActionPlan = {
    kind: 'restrict-tokens',
    subject: `restrict-tokens:${workspace}`,
    title: `${input.rollbackOf ? 'Roll back: restore' : 'Restrict'} who may create tokens in ${workspace}`,
    facts: { workspace, tokenPermissions: aclText(current), directLoserTokens: ids(direct), groupLoserTokens: ids(viaGroup) },
    parameters: { target: aclText(target), rollbackOf: input.rollbackOf ?? null },
    operations: [
      `create: read the token permissions of ${workspace} again and stop without acting if they are no longer [${aclText(current) || 'no grants'}], or if someone losing CAN_USE holds tokens this plan does not name`,
      adds.length ? `create: PATCH /api/2.0/permissions/authorization/tokens adding CAN_USE for ${words(adds, people)} (merges; nobody loses anything)` : 'create: nothing to add (no PATCH)',
      removes.length
        ? `set: PUT /api/2.0/permissions/authorization/tokens with the full list [${aclText(target) || 'no grants'}] — this removes CAN_USE from ${words(removes, people)}`
        : 'set: nothing to remove (no PUT)',
      'test: read the token permissions back, check they are exactly the target, and check which tokens were deleted',
    ],
    warnings: [
      ...(losers.length === 0 ? ['Nobody loses CAN_USE.'] : []),
      ...capped([...direct.flatMap(loserLines), ...viaGroup.flatMap(loserLines)]),
      'Rollback: a button in this thread restores the token permissions as they are now — but deleted tokens cannot come back; their owners must create new ones.',
    ],
  };
  const count = (list: typeof losers) => `${list.length} (${list.reduce((n, l) => n + l.tokens.length, 0)} tokens)`;
  return {
    plan, losers,
    facts: [
      { title: 'Workspace', value: workspace },
      { title: 'CAN_USE now', value: words(current, people) },
      { title: 'CAN_USE after', value: words(target, people) },
      { title: 'Lose it directly (tokens deleted)', value: count(direct) },
      { title: 'Lose it through a group (tokens stop working)', value: count(viaGroup) },
    ],
    blocker: !permissions.exists
      ? `${workspace} has no token permissions object yet (no token was ever created there), so only admins can use tokens; nothing to restrict`
      : adds.length + removes.length === 0 ? `the token permissions of ${workspace} already match [${aclText(target) || 'no grants'}]; nothing to change` : undefined,
  };
}
