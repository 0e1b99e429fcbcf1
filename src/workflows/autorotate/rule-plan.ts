/**
 * The plan of an auto-rotation rule: what it covers now (from the latest scan), when it fires, the limits, how many
 * approvers it needs and its hash — and the card that shows all of that with Approve / Deny.
 */
import { environmentOf } from '../../alerts/routing.js';
import { selectorText, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import { requiredApprovals, type RequiredApprovals } from '../../approvals/rules.js';
import { standingHash, type AutoRotationTemplate, type StandingChatState, type StandingSelector } from '../../approvals/standing.js';
import { renderCard } from '../../cards/render.js';
import { DAY_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { AdaptiveCard } from '../../domain/chat.js';
import type { Credential } from '../../domain/credential.js';
import { formatUtcDate } from '../../domain/expiry.js';
import type { JobActor, JobFacts } from '../../domain/job.js';
import { formatTime, shortHash } from '../../domain/plan.js';
import { planFor } from '../plan-for.js';

/** How many covered credentials a card lists by name. */
export const MAX_LISTED = 10;
/** The renewal reminder comes this long before a rule's review date. */
export const REMINDER_DAYS = 14;

/** What a person chose: the selector, when it fires and the grace window (lifetime follows the credentials' kind). */
export interface RuleParameters {
  selector: StandingSelector;
  days: number;
  graceHours: number;
}

export interface RuleCoverage {
  /** Rotatable credentials the selector picks now, with the facts a rotation of each relies on. */
  covered: Array<{ credential: Credential; facts: JobFacts }>;
  /** Picked, but a rotation could not run (user-owned PAT, no Key Vault secret...): never rotated automatically. */
  blocked: Array<{ credential: Credential; blocker: string }>;
  /** How many of each in all: a card keeps only the first few in the lists (see `addToCoverage`). */
  coveredCount: number;
  blockedCount: number;
}

export const emptyCoverage = (): RuleCoverage => ({ covered: [], blocked: [], coveredCount: 0, blockedCount: 0 });

/** A credential the selector picked: covered if Keywarden can rotate it, else blocked; lists stop at `keep`, counts do not. */
export function addToCoverage(coverage: RuleCoverage, credential: Credential, config: KeywardenConfig, keep = Infinity): void {
  const plan = planFor('rotate', credential, config);
  if (plan.blocker) {
    if (coverage.blockedCount++ < keep) coverage.blocked.push({ credential, blocker: plan.blocker });
  } else if (coverage.coveredCount++ < keep) {
    coverage.covered.push({ credential, facts: plan.plan.facts });
  }
}

/** Lifetime of the new credentials: by kind; a rule over both kinds takes the shorter one. */
export function lifetimeFor(selector: StandingSelector, coverage: RuleCoverage, config: KeywardenConfig): number {
  const kinds = new Set<string>(selector.kind ? [selector.kind] : coverage.covered.map((c) => c.credential.kind));
  const pat = config.workflows.patLifetimeDays;
  const entra = config.workflows.entraSecretLifetimeDays;
  if (kinds.size === 1 && kinds.has('entra-password')) return entra;
  if (kinds.size === 1 && kinds.has('databricks-pat')) return pat;
  return Math.min(pat, entra);
}

/**
 * As many approvers as the strictest rotation it allows would need (approvals.highRisk 'rotate' per covered scope),
 * or more when approvals.highRisk says so for 'auto-rotate'.
 */
export function requiredForRule(selector: StandingSelector, coverage: RuleCoverage, config: KeywardenConfig, now: number): RequiredApprovals {
  const scopes = new Set(coverage.covered.map((c) => c.credential.where.scope));
  if (selector.scope) scopes.add(selector.scope);
  if (scopes.size === 0) scopes.add('');
  let required = 1;
  const reasons = new Set<string>();
  for (const scope of scopes) {
    for (const action of ['rotate', 'auto-rotate'] as const) {
      const r = requiredApprovals({ action, scope, environment: environmentOf(config, scope), now }, config.approvals);
      required = Math.max(required, r.required);
      for (const reason of r.reasons) reasons.add(reason);
    }
  }
  return { required, reasons: [...reasons] };
}

export interface ProposedRule {
  rule: AutoRotationRule;
  coverage: RuleCoverage;
}

/** A pending rule record: the template with the approved facts of what it covers now, and its hash. */
export function proposeRule(input: {
  ruleId: string;
  ruleName: string;
  parameters: RuleParameters;
  /** What the selector covers in the latest scan, every credential kept (its facts are what approvers approve). */
  coverage: RuleCoverage;
  config: KeywardenConfig;
  requestedBy: JobActor;
  conversation: StandingChatState['conversation'];
  nonce: string;
  replaces?: string;
  now: number;
}): ProposedRule {
  const { parameters, config, now, coverage } = input;
  const template: AutoRotationTemplate = {
    ruleName: input.ruleName,
    lifetimeDays: lifetimeFor(parameters.selector, coverage, config),
    graceHours: parameters.graceHours,
    approvedFacts: Object.fromEntries(coverage.covered.map((c) => [c.credential.id, c.facts])),
  };
  const base = { kind: 'auto-rotation' as const, template, selector: parameters.selector, trigger: { kind: 'days-before-expiry' as const, days: parameters.days } };
  const required = requiredForRule(parameters.selector, coverage, config, now);
  return {
    coverage,
    rule: {
      id: `standing:auto-rotation:${input.ruleId}`, source: 'chat', ...base, planHash: standingHash(base), approvers: [], state: 'pending', declaredAt: now,
      chat: {
        requestedBy: input.requestedBy, required: required.required, reasons: required.reasons, nonce: input.nonce, nonceIssuedAt: now,
        conversation: input.conversation, ...(input.replaces ? { replaces: input.replaces } : {}),
      },
    },
  };
}

/** The rule's parameters, to propose the same again (renewal) or compare with a change. */
export function parametersOf(rule: AutoRotationRule): RuleParameters {
  return { selector: rule.selector, days: rule.trigger.days ?? 0, graceHours: rule.template.graceHours };
}

/** When the rule fires for a credential: N days before it expires (null: it never expires, so never). */
export function firesAt(rule: Pick<AutoRotationRule, 'trigger'>, credential: Pick<Credential, 'expiresAt'>): number | null {
  return credential.expiresAt === null ? null : credential.expiresAt - (rule.trigger.days ?? 0) * DAY_MS;
}

function coveredLine(rule: AutoRotationRule, c: Credential, now: number): string {
  const fires = firesAt(rule, c);
  const when = fires === null ? 'never expires: nothing to fire' : fires <= now ? 'due now (at the next scan)' : `fires ${formatUtcDate(fires)}`;
  return `• ${c.name} · ${c.where.label} · expires ${c.expiresAt === null ? 'never' : formatUtcDate(c.expiresAt)} · ${when}`;
}

const STATE_WORDS: Record<AutoRotationRule['state'], string> = {
  pending: 'proposed', active: 'approved', paused: 'paused', revoked: 'revoked', denied: 'denied', replaced: 'replaced', expired: 'expired',
};

export interface RuleCardOptions {
  notice?: string;
  /** The name of the rule this one changes, to say so on the card. */
  replacesName?: string;
  /** It proposes the very same rule again (after a reminder). */
  renewal?: boolean;
  reviewDays: number;
  now: number;
  /** The reminder variant: a Renew button instead of Approve / Deny. */
  renewNonce?: string;
}

/** The rule plan card (cards/rule-plan.json). */
export function renderRuleCard(rule: AutoRotationRule, coverage: RuleCoverage, options: RuleCardOptions): AdaptiveCard {
  const { now } = options;
  const chat = rule.chat;
  const name = rule.template.ruleName;
  const ruleId = rule.id.slice('standing:auto-rotation:'.length);
  const approvers = rule.approvers.map((a) => a.name).join(' and ');
  const headline = options.renewNonce
    ? `Auto-rotation rule ${name} lapses on ${formatUtcDate(rule.reviewBy ?? now)} — renew it?`
    : rule.state === 'pending'
      ? `${options.replacesName ? `${options.renewal ? 'Renewal of' : 'Change to'} auto-rotation rule` : 'Auto-rotation rule'} ${name} — proposed by ${chat?.requestedBy.name ?? 'someone'}`
      : `Auto-rotation rule ${name} — ${STATE_WORDS[rule.state]}${rule.state === 'active' || rule.state === 'paused' ? ` (approved by ${approvers})` : ''}`;
  const reviewBy = rule.reviewBy ?? now + options.reviewDays * DAY_MS;
  const required = chat?.required ?? 1;
  const facts = [
    { title: 'Rule', value: name },
    { title: 'Covers', value: selectorText(rule.selector) },
    { title: 'Fires', value: `${rule.trigger.days ?? 0} days before each covered credential expires` },
    { title: 'New credential', value: `lives ${rule.template.lifetimeDays} days` },
    { title: 'Grace', value: `the old one keeps working ${rule.template.graceHours} h after the new one is verified` },
    { title: 'Review by', value: `${rule.reviewBy ? formatUtcDate(reviewBy) : `${options.reviewDays} days after approval (${formatUtcDate(reviewBy)} if approved today)`}; a reminder comes ${REMINDER_DAYS} days before` },
    { title: 'Approvals', value: `${required} needed${chat?.reasons.length ? `: ${chat.reasons.join('; ')}` : ' (no approvals.highRisk rule asks for more)'}; not the requester` },
    ...(rule.approvers.length ? [{ title: 'Approved by', value: rule.approvers.map((a) => a.name).join(', ') }] : []),
    { title: 'Plan hash', value: shortHash(rule.planHash) },
    ...(options.replacesName ? [{ title: 'Replaces', value: `${options.replacesName} as it is now, which stays in force until this is approved` }] : []),
  ];
  const listed = coverage.covered.slice(0, MAX_LISTED).map((c) => ({ text: coveredLine(rule, c.credential, now) }));
  if (coverage.coveredCount > MAX_LISTED) listed.push({ text: `…and ${coverage.coveredCount - MAX_LISTED} more` });
  if (listed.length === 0) listed.push({ text: 'Nothing in the latest scan yet; credentials that match later are covered when they appear.' });
  const blocked = coverage.blocked.slice(0, 3).map((b) => `${b.credential.name} (${b.blocker.split(/[:;—]/)[0]!.trim()})`).join(', ');
  const open = rule.state === 'pending' && !options.renewNonce;
  const status = options.renewNonce
    ? `After ${formatTime(reviewBy)} the rule stops firing. Renew proposes the same rule again; it needs the same approvals.`
    : rule.state === 'pending'
      ? `${rule.approvers.length} of ${required} approvals — an approver other than ${chat?.requestedBy.name ?? 'the requester'} decides.`
      : rule.state === 'active' ? `In force until ${formatUtcDate(reviewBy)}. /rules lists it; an approver can pause or revoke it there.`
        : `This rule is ${STATE_WORDS[rule.state]}${chat?.changedBy ? ` (${chat.changedBy.name}, ${formatTime(chat.changedBy.at)})` : ''}.`;
  return renderCard('rule-plan', {
    hasNotice: Boolean(options.notice), notice: options.notice ?? '',
    headline, headlineColor: rule.state === 'denied' || rule.state === 'revoked' ? 'Attention' : rule.state === 'active' ? 'Good' : 'Default',
    facts,
    coveredTitle: `Covers now (${coverage.coveredCount} credential${coverage.coveredCount === 1 ? '' : 's'} in the latest scan)`,
    covered: listed,
    hasBlocked: coverage.blockedCount > 0,
    blockedText: `${coverage.blockedCount} more match but cannot be rotated, so the rule never touches them: ${blocked}${coverage.blockedCount > 3 ? ', …' : ''}`,
    statusText: status,
    open,
    actionData: { ruleId, nonce: chat?.nonce ?? '' },
    canRenew: Boolean(options.renewNonce),
    renewData: { ruleId, nonce: options.renewNonce ?? '' },
  });
}
