/**
 * Auto-rotation rules as stored standing approvals (kind 'auto-rotation', id `standing:auto-rotation:<ruleId>`): which
 * are in force, what they cover, and the line an alert card shows. Lives in approvals/ so alerts/ may read it too.
 */
import type { AttributeValue, Credential } from '../domain/credential.js';
import type { Store } from '../store/store.js';
import { selectorMatches, type AutoRotationTemplate, type StandingApproval, type StandingSelector } from './standing.js';

export type AutoRotationRule = StandingApproval<AutoRotationTemplate>;

export const AUTO_ROTATION_PREFIX = 'standing:auto-rotation:';

/**
 * One (rule, credential) pair as the execution side records it, in `approvals` under `autorun:<ruleId>:<credentialId>`.
 * /rules reads it for "last run".
 */
export interface AutoRotationRun {
  ruleId: string;
  credentialId: string;
  lastRunAt?: number;
  lastJobId?: string;
  lastResult?: string;
  attempts: number;
  pausedReason?: string;
}

export const autoRunKey = (ruleId: string, credentialId: string): string => `autorun:${ruleId}:${credentialId}`;

/** The rule id inside a record id (`standing:auto-rotation:R1` → `R1`). */
export const ruleIdOf = (rule: Pick<AutoRotationRule, 'id'>): string => rule.id.slice(AUTO_ROTATION_PREFIX.length);

export function listAutoRotationRules(store: Store): AutoRotationRule[] {
  return store.list<AutoRotationRule>('approvals', { prefix: AUTO_ROTATION_PREFIX }).map((r) => r.value).filter((r) => r.kind === 'auto-rotation');
}

export function readAutoRotationRule(store: Store, ruleId: string): AutoRotationRule | undefined {
  const rule = store.get<AutoRotationRule>('approvals', `${AUTO_ROTATION_PREFIX}${ruleId}`)?.value;
  return rule?.kind === 'auto-rotation' ? rule : undefined;
}

/** In force: approved, not paused, revoked or replaced, and not past its review date. The execution side asks this. */
export function isRuleActive(rule: Pick<AutoRotationRule, 'state' | 'reviewBy'>, now: number): boolean {
  return rule.state === 'active' && (rule.reviewBy === undefined || now < rule.reviewBy);
}

/** The selector as people write it in `/autorotate`: `kind:databricks-pat scope:ws-prod tag:pipeline=adf`. */
export function selectorText(selector: StandingSelector): string {
  const parts: string[] = [];
  if (selector.credentialIds?.length) parts.push(selector.credentialIds.length === 1 ? selector.credentialIds[0]! : `${selector.credentialIds.length} credentials`);
  if (selector.kind) parts.push(`kind:${selector.kind}`);
  if (selector.scope) parts.push(`scope:${selector.scope}`);
  if (selector.tag) parts.push(`tag:${selector.tag.name}${selector.tag.value !== undefined ? `=${selector.tag.value}` : ''}`);
  if (selector.callerObjectId) parts.push(`caller:${selector.callerObjectId}`);
  return parts.join(' ') || '(nothing)';
}

/**
 * Tags live on Key Vault secrets, not on the PAT or Entra secret a secret holds: a credential is selected by the tags of
 * the secrets that hold it as well as by its own.
 */
export function withHolderTags(credential: Credential, credentials: readonly Credential[]): Credential {
  const holders = credentials.filter((s) => s.kind === 'keyvault-secret' && (s.holds === credential.id
    || credential.heldIn.some((h) => h.vault === s.where.scope && h.name.toLowerCase() === s.nativeId.toLowerCase())));
  if (holders.length === 0) return credential;
  const attributes: Record<string, AttributeValue> = {};
  for (const h of holders) {
    for (const [k, v] of Object.entries(h.attributes)) if (k.startsWith('tag:')) attributes[k] = v;
  }
  return { ...credential, attributes: { ...attributes, ...credential.attributes } };
}

/** The credentials of a scan a selector picks (a secret that merely holds another credential is that credential's). */
export function credentialsSelected(selector: StandingSelector, credentials: readonly Credential[]): Credential[] {
  return credentials.filter((c) => !(c.kind === 'keyvault-secret' && c.holds && credentials.some((x) => x.id === c.holds)))
    .filter((c) => selectorMatches(selector, withHolderTags(c, credentials)));
}

/** Without the scan at hand (an alert card): the selector on the credential itself, or a credential approved by name. */
export function ruleCovers(rule: AutoRotationRule, credential: Credential): boolean {
  return Boolean(rule.template.approvedFacts?.[credential.id]) || selectorMatches(rule.selector, credential);
}

/**
 * "rule R1 — 14 days before expiry (approved by Alex Wilber, Megan Bowen)" when a rule in force covers it; a paused one
 * says so (the card then offers no second rule either).
 */
export function autoRotationText(store: Store, credential: Credential, now: number): string | undefined {
  const covering = listAutoRotationRules(store).filter((r) => ruleCovers(r, credential) && (r.reviewBy === undefined || now < r.reviewBy))
    .sort((a, b) => (a.chat?.approvedAt ?? a.declaredAt) - (b.chat?.approvedAt ?? b.declaredAt));
  const rule = covering.find((r) => isRuleActive(r, now)) ?? covering.find((r) => r.state === 'paused');
  if (!rule) return undefined;
  const approvedBy = `approved by ${rule.approvers.map((a) => a.name).join(', ') || 'config'}`;
  if (rule.state === 'paused') return `rule ${rule.template.ruleName} — paused${rule.chat?.changedBy ? ` by ${rule.chat.changedBy.name}` : ''} (${approvedBy}; /rules resume ${rule.template.ruleName})`;
  return `rule ${rule.template.ruleName} — ${rule.trigger.days ?? 0} days before expiry (${approvedBy})`;
}
