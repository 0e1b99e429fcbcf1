/**
 * Review dates: REMINDER_DAYS before a rule's reviewBy its channel gets one reminder card with Renew (claimed in the
 * store first, so two passes or two replicas never post it twice); at reviewBy the rule lapses (state expired).
 */
import { listAutoRotationRules, ruleIdOf, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import { DAY_MS } from '../../clock.js';
import { MAX_LISTED, renderRuleCard, REMINDER_DAYS } from './rule-plan.js';
import { changeRule, newRuleNonce, ruleDetails } from './rules-store.js';
import { channelTarget, latestCoverage, refreshCoveredAlerts, type RulesOptions } from './rules-context.js';

const KEYWARDEN = { name: 'Keywarden (review)' };

export interface ReviewPass {
  reminded: string[];
  expired: string[];
}

export async function reviewRules(options: RulesOptions, signal?: AbortSignal): Promise<ReviewPass> {
  const now = options.clock.now();
  const pass: ReviewPass = { reminded: [], expired: [] };
  for (const rule of listAutoRotationRules(options.store)) {
    if (rule.reviewBy === undefined || rule.source !== 'chat') continue;
    if ((rule.state === 'active' || rule.state === 'paused') && now >= rule.reviewBy) {
      if (await expire(options, rule)) pass.expired.push(rule.template.ruleName);
    } else if (rule.state === 'active' && now >= rule.reviewBy - REMINDER_DAYS * DAY_MS && !rule.chat?.reminder && !renewalWaiting(options, rule)) {
      if (await remind(options, rule, signal)) pass.reminded.push(rule.template.ruleName);
    }
  }
  return pass;
}

/** A renewal someone already proposed needs no reminder. */
function renewalWaiting(options: RulesOptions, rule: AutoRotationRule): boolean {
  return listAutoRotationRules(options.store).some((r) => r.state === 'pending' && r.chat?.replaces === rule.id);
}

async function expire(options: RulesOptions, rule: AutoRotationRule): Promise<boolean> {
  const next = changeRule(options.store, ruleIdOf(rule), (r) => ((r.state === 'active' || r.state === 'paused') && r.reviewBy !== undefined && options.clock.now() >= r.reviewBy
    ? { ...r, state: 'expired' } : 'not due'));
  if (typeof next === 'string') return false;
  options.store.appendAudit({ action: 'rule.expired', actor: KEYWARDEN, subject: next.id, result: 'info', details: { ...ruleDetails(next), reviewBy: next.reviewBy, previousState: rule.state } });
  await refreshCoveredAlerts(options, next);
  return true;
}

/** Claim, post, audit; a post that fails gives the claim back so the next pass tries again. */
async function remind(options: RulesOptions, rule: AutoRotationRule, signal?: AbortSignal): Promise<boolean> {
  const gateway = options.chat();
  if (!gateway || !rule.chat) return false;
  const now = options.clock.now();
  const reminder = { postedAt: now, nonce: newRuleNonce() };
  const claimed = changeRule(options.store, ruleIdOf(rule), (r) => (r.chat && !r.chat.reminder && r.state === 'active' ? { ...r, chat: { ...r.chat, reminder } } : 'already reminded'));
  if (typeof claimed === 'string') return false;
  const card = renderRuleCard(claimed, await latestCoverage(options, claimed.selector, MAX_LISTED), {
    now, reviewDays: options.config.autoRotation.reviewDays, renewNonce: reminder.nonce,
  });
  try {
    await options.chat()!.post(channelTarget(claimed.chat!.conversation), { card }, { signal: signal ?? AbortSignal.timeout(10_000) });
  } catch (err) {
    options.logger?.warn({ err, rule: claimed.template.ruleName }, 'could not post the rule review reminder; the next pass tries again');
    changeRule(options.store, ruleIdOf(rule), (r) => (r.chat?.reminder?.nonce === reminder.nonce ? { ...r, chat: { ...r.chat, reminder: undefined } } : 'changed'));
    return false;
  }
  options.store.appendAudit({ action: 'rule.reminder', actor: KEYWARDEN, subject: claimed.id, result: 'info', details: { ...ruleDetails(claimed), reviewBy: claimed.reviewBy } });
  return true;
}
