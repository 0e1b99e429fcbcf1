/**
 * The plan for "Enforce a maximum lifetime": the workspace's maxTokenLifetimeDays now and after, and the existing
 * tokens that live longer than the new limit (it applies to new tokens only, so those keep working until they expire).
 */
import { DAY_MS } from '../../clock.js';
import type { ActionPlan } from '../../domain/plan.js';
import { parseMaxLifetimeDays } from '../../providers/databricks/inventory.js';
import type { Store } from '../../store/store.js';
import type { WorkflowProviders } from '../engine/providers.js';
import { capped, liveTokens, readPeople, scannedTokens, tokenLine, tokenWords, type TokenLine } from './reads.js';

export interface MaxLifetimeRequest {
  workspace: string;
  /** The new maxTokenLifetimeDays; 0 = no limit (a rollback to "none"). */
  days: number;
  /** The job this plan undoes, when it is a rollback. */
  rollbackOf?: string;
}

export interface BuiltPlan {
  plan: ActionPlan;
  /** Shown above the operations on the plan card. */
  facts: Array<{ title: string; value: string }>;
  /** Why it cannot run now (nothing to change), or undefined. */
  blocker?: string;
}

export const limitWords = (days: number | null): string => (days === null ? 'none (no limit)' : `${days} days`);

/** Lifetime longer than the limit, or no expiry at all. */
export function exceeds(t: { creationTime: number; expiryTime: number }, days: number): boolean {
  return t.expiryTime === -1 || t.expiryTime - t.creationTime > days * DAY_MS;
}

export async function planMaxLifetime(input: MaxLifetimeRequest & { providers: WorkflowProviders; store: Store; now: number; signal?: AbortSignal }): Promise<BuiltPlan & { exceeding: TokenLine[] }> {
  const { workspace, days } = input;
  const client = input.providers.databricks(workspace);
  const [conf, tokens, people] = await Promise.all([
    client.getWorkspaceConf(['maxTokenLifetimeDays'], { signal: input.signal }),
    client.listTokens({ signal: input.signal }),
    readPeople(client, input.signal),
  ]);
  const current = parseMaxLifetimeDays(conf.maxTokenLifetimeDays);
  const target = days > 0 ? days : null;
  const scanned = scannedTokens(input.store, workspace);
  const exceeding = target === null ? [] : liveTokens(tokens, input.now).filter((t) => exceeds(t, target)).map((t) => tokenLine(t, people, scanned))
    .sort((a, b) => (a.expiresAt === -1 ? Infinity : a.expiresAt) - (b.expiresAt === -1 ? Infinity : b.expiresAt));
  const title = target === null
    ? `${input.rollbackOf ? 'Roll back: remove' : 'Remove'} the maximum token lifetime of ${workspace}`
    : `${input.rollbackOf ? 'Roll back: set' : 'Set'} the maximum token lifetime of ${workspace} to ${target} days`;
  const plan: ActionPlan = {
    kind: 'max-lifetime',
    subject: `max-lifetime:${workspace}`,
    title,
    facts: { workspace, maxTokenLifetimeDays: current },
    parameters: { days: target ?? 0, rollbackOf: input.rollbackOf ?? null },
    operations: [
      `set: read workspace-conf maxTokenLifetimeDays of ${workspace} again and stop without changing anything if it is no longer ${limitWords(current)}; then PATCH /api/2.0/workspace-conf {"maxTokenLifetimeDays": "${target ?? 0}"}`,
      `test: read maxTokenLifetimeDays back and check it is ${limitWords(target)}`,
    ],
    warnings: [
      target === null
        ? 'New tokens may again be created with lifetimes up to the Databricks default (two years) or without expiry.'
        : exceeding.length
          ? `It limits new tokens only: the ${exceeding.length === 1 ? 'token below lives' : `${exceeding.length} tokens below live`} longer than ${target} days and keep${exceeding.length === 1 ? 's' : ''} working until ${exceeding.length === 1 ? 'it expires' : 'they expire'}. After the change, this thread gets Rotate and Revoke buttons for each (their alert cards' own approvals).`
          : `It limits new tokens only; no existing token lives longer than ${target} days.`,
      ...capped(exceeding.map((t) => tokenWords(t))),
      `Rollback: a button in this thread sets it back to ${limitWords(current)}.`,
    ],
  };
  return {
    plan, exceeding,
    facts: [
      { title: 'Workspace', value: workspace },
      { title: 'Now', value: limitWords(current) },
      { title: 'After', value: limitWords(target) },
      ...(target === null ? [] : [{ title: 'Tokens above it', value: `${exceeding.length} (they keep working until they expire)` }]),
    ],
    blocker: current === target ? `maxTokenLifetimeDays of ${workspace} is already ${limitWords(current)}; nothing to change` : undefined,
  };
}
