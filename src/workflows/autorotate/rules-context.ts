/** What the rule verbs, commands and the review timer share: options, the latest scan, rule cards, alert refreshes. */
import { currentAlert, mutateAlert, queueCard } from '../../alerts/lifecycle.js';
import { readAutoRotationRule, ruleCovers, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import { baseConversationId } from '../../approvals/rules.js';
import type { StandingChatState, StandingSelector } from '../../approvals/standing.js';
import type { ChatContext, ChatGateway, ConversationTarget } from '../../domain/chat.js';
import type { JobActor } from '../../domain/job.js';
import { scanViewOf, type ScanView } from '../../domain/scan.js';
import { readLatestSnapshot } from '../../scanner/snapshot.js';
import type { ActionResult, WorkflowActionsOptions } from '../actions.js';
import { MAX_LISTED, parametersOf, renderRuleCard, type RuleCoverage } from './rule-plan.js';
import { coverageIn, selectedPages } from './rule-select.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import { changeRule, newRuleNonce } from './rules-store.js';

export interface RulesOptions extends WorkflowActionsOptions {
  /** The Teams gateway once attached (plan cards from a button, reminders). */
  chat: () => ChatGateway | undefined;
}

/** The latest scan's rows (none before the first scan): read page by page through `coverageIn`, never all at once. */
export function latestView(options: Pick<RulesOptions, 'store'>): ScanView | undefined {
  const scan = readLatestSnapshot(options.store);
  return scan && scanViewOf(scan);
}

/** What a selector covers in the latest scan; `keep` as in `coverageIn` (a card: MAX_LISTED). */
export function latestCoverage(options: Pick<RulesOptions, 'store' | 'config'>, selector: StandingSelector, keep?: number): Promise<RuleCoverage> {
  return coverageIn(latestView(options), selector, options.config, keep);
}

export const actorOf = (ctx: ChatContext): JobActor => ({ aadObjectId: ctx.actor.aadObjectId ?? '', name: ctx.actor.name });

/** Where a proposal's card and reminder go: the channel it was asked in. */
export function conversationOf(ctx: ChatContext): StandingChatState['conversation'] {
  return { conversationId: baseConversationId(ctx.conversation.conversationId), serviceUrl: ctx.conversation.serviceUrl, tenantId: ctx.conversation.tenantId };
}

export function channelTarget(c: StandingChatState['conversation']): ConversationTarget {
  return { conversationId: c.conversationId, serviceUrl: c.serviceUrl, tenantId: c.tenantId, kind: 'channel' };
}

/** The rule's plan card as it is now (coverage from the latest scan). */
export async function ruleCardResult(options: RulesOptions, rule: AutoRotationRule, notice?: string): Promise<ActionResult> {
  const coverage = await latestCoverage(options, rule.selector, MAX_LISTED);
  const replaces = rule.chat?.replaces ? readAutoRotationRule(options.store, rule.chat.replaces.slice('standing:auto-rotation:'.length)) : undefined;
  return { card: renderRuleCard(rule, coverage, {
    notice, now: options.clock.now(), reviewDays: options.config.autoRotation.reviewDays,
    ...(replaces && rule.state === 'pending' ? { replacesName: replaces.template.ruleName, renewal: canonicalJson(parametersOf(replaces)) === canonicalJson(parametersOf(rule)) } : {}),
  }) };
}

/** A stale card: a new nonce, and the card again with why. */
export function refreshedRuleCard(options: RulesOptions, rule: AutoRotationRule, notice: string): Promise<ActionResult> {
  const now = options.clock.now();
  const next = changeRule(options.store, rule.id.slice('standing:auto-rotation:'.length), (r) => (r.chat ? { ...r, chat: { ...r.chat, nonce: newRuleNonce(), nonceIssuedAt: now } } : 'no chat state'));
  return ruleCardResult(options, typeof next === 'string' ? rule : next, notice);
}

/**
 * The alert cards of what a rule covers show (or stop showing) its line: a new revision of each, queued for the
 * usual paced delivery (same nonce, so nobody's open card goes out of date).
 */
export async function refreshCoveredAlerts(options: Pick<RulesOptions, 'store' | 'clock'>, rule: AutoRotationRule): Promise<number> {
  const now = options.clock.now();
  let queued = 0;
  const refresh = (credentialId: string) => {
    const alert = currentAlert(options.store, credentialId)?.value;
    if (!alert || !ruleCovers(rule, alert.credential)) return;
    const saved = mutateAlert(options.store, alert.id, (a) => ({ ...a, revision: a.revision + 1, updatedAt: now }));
    if (saved) {
      queueCard(options.store, saved.value, now);
      queued++;
    }
  };
  // What the rule covers: the credentials it was approved with, and what its selector picks in the latest scan (page
  // by page through the rows' indexes), not every alert ever opened.
  const approved = new Set(Object.keys(rule.template.approvedFacts ?? {}));
  for (const id of approved) refresh(id);
  const view = latestView(options);
  if (view) {
    for await (const page of selectedPages(view, rule.selector)) for (const c of page) if (!approved.has(c.id)) refresh(c.id);
  }
  return queued;
}
