/**
 * Whether a rule may rotate a credential by itself: only what matters (a known consumer or recent use), only what
 * Keywarden can rotate, and only a plan of the same shape as the one the approvers saw (same owner, same Key Vault
 * target, same scopes). Anything else is a reason, in words, for the card and the audit log.
 */
import { DAY_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential } from '../../domain/credential.js';
import type { JobFacts, JobRecord } from '../../domain/job.js';
import { describeDrift, type ActionPlan } from '../../domain/plan.js';
import type { Store } from '../../store/store.js';
import { planFor } from '../plan-for.js';
import { ruleIdOf, ruleLabel, runsOf, type AutoRotationRule } from './runs-store.js';

export type Decision =
  | { kind: 'fire'; plan: ActionPlan; hash: string; approvedAs: string }
  | { kind: 'skip'; code: 'no-consumer' | 'cannot-rotate' | 'not-approved' | 'drift'; reason: string };

/** Configured consumers (autoRotation.consumers) of a credential, by id or name. */
export function configuredConsumers(c: Pick<Credential, 'id' | 'name'>, config: KeywardenConfig): string[] {
  return config.autoRotation.consumers.filter((x) => x.credential === c.id || x.credential === c.name).map((x) => x.name);
}

/** Covered only with at least one known consumer or use within autoRotation.recentUseDays. */
export function coverageGap(c: Credential, config: KeywardenConfig, now: number): string | undefined {
  if (c.consumers.length + configuredConsumers(c, config).length > 0) return undefined;
  const days = config.autoRotation.recentUseDays;
  if (typeof c.lastUsedAt === 'number' && now - c.lastUsedAt <= days * DAY_MS) return undefined;
  return `no known consumer and not used in ${days} days: consider revoking instead`;
}

/** The config a click would use, with the rule's lifetime and grace window. */
export function configForRule(config: KeywardenConfig, rule: AutoRotationRule): KeywardenConfig {
  const { lifetimeDays, graceHours } = rule.template;
  return { ...config, workflows: { ...config.workflows, graceHours, patLifetimeDays: lifetimeDays, entraSecretLifetimeDays: lifetimeDays } };
}

/** Facts that name the credential itself, which a rotation replaces: a successor differs in them by design. */
const IDENTITY_FACTS = new Set(['tokenId', 'keyId', 'expiryTime', 'expiresAt', 'comment']);

const FACT_WORDS: Record<string, string> = {
  vault: 'the Key Vault target', secret: 'the Key Vault target', selfSecret: 'the Key Vault target',
  ownerApplicationId: 'the owner', appId: 'the owner', objectId: 'the owner', objectType: 'the owner',
  scopes: 'the token scopes', workspace: 'the workspace', tokenId: 'the token', keyId: 'the secret',
  expiryTime: 'the expiry', expiresAt: 'the expiry', comment: 'the token comment',
};

/**
 * The facts the rule's approvers approved for this credential: its own entry, or — for a credential an earlier run of
 * the same rule created — the entry of the credential that run replaced (identity facts then do not count).
 */
export function approvedFactsFor(store: Store, rule: AutoRotationRule, c: Credential): { facts: JobFacts; approvedAs: string; successor: boolean } | undefined {
  const own = rule.template.approvedFacts?.[c.id];
  if (own) return { facts: own, approvedAs: c.id, successor: false };
  for (const run of runsOf(store, ruleIdOf(rule))) {
    if (run.value.state !== 'done' || !run.value.lastJobId) continue;
    const job = store.get<JobRecord>('jobs', run.value.lastJobId)?.value;
    if (!job || (job.facts.newTokenId ?? job.facts.newKeyId) !== c.nativeId) continue;
    const approvedAs = run.value.approvedAs ?? run.value.credentialId;
    const facts = rule.template.approvedFacts?.[approvedAs];
    if (facts) return { facts, approvedAs, successor: true };
  }
  return undefined;
}

/** Compares approved and current plan facts; the reason in the user's words, or undefined when the shape is the same. */
export function shapeChange(rule: AutoRotationRule, approved: JobFacts, current: JobFacts, successor: boolean): string | undefined {
  const pick = (f: JobFacts) => Object.fromEntries(Object.entries(f).filter(([k]) => !successor || !IDENTITY_FACTS.has(k)));
  const changes = describeDrift(pick(approved), pick(current));
  if (changes.length === 0) return undefined;
  const keys = new Set([...Object.keys(approved), ...Object.keys(current)].filter((k) => !(successor && IDENTITY_FACTS.has(k)) && (approved[k] ?? null) !== (current[k] ?? null)));
  const what = [...new Set([...keys].map((k) => FACT_WORDS[k] ?? k))].join(' and ');
  return `${what} changed since ${ruleLabel(rule)} was approved (${changes.join('; ')}) — rotate by hand or renew the rule`;
}

/** What a rule does with one credential that is due: fire with the plan a click would build, or skip with a reason. */
export function decide(store: Store, config: KeywardenConfig, rule: AutoRotationRule, c: Credential, now: number): Decision {
  const gap = coverageGap(c, config, now);
  if (gap) return { kind: 'skip', code: 'no-consumer', reason: gap };
  const { plan, hash, blocker } = planFor('rotate', c, configForRule(config, rule));
  if (blocker) return { kind: 'skip', code: 'cannot-rotate', reason: `Keywarden cannot rotate it: ${blocker}` };
  const approved = approvedFactsFor(store, rule, c);
  if (!approved) {
    return { kind: 'skip', code: 'not-approved', reason: `it came into the scope of ${ruleLabel(rule)} after the rule was approved, so nobody approved its plan — rotate by hand or renew the rule` };
  }
  const changed = shapeChange(rule, approved.facts, plan.facts, approved.successor);
  if (changed) return { kind: 'skip', code: 'drift', reason: changed };
  return { kind: 'fire', plan, hash, approvedAs: approved.approvedAs };
}
