/**
 * Rule verbs: "Rotate automatically from now on" on an alert card (proposes a rule for that credential), Approve / Deny
 * on a rule plan card (N-of-M, requester ≠ approver, one vote each), and Renew on a reminder. The card data carries
 * only ids and a nonce; every parameter comes from the stored rule, the alert and config.
 */
import type { AlertRecord } from '../../alerts/types.js';
import { isRuleActive, readAutoRotationRule, ruleCovers, ruleIdOf, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import { standingHash } from '../../approvals/standing.js';
import { DAY_MS } from '../../clock.js';
import type { CardAction, ChatContext } from '../../domain/chat.js';
import { formatUtcDate } from '../../domain/expiry.js';
import { shortHash } from '../../domain/plan.js';
import { idOf, type ActionResult } from '../actions.js';
import { planFor } from '../plan-for.js';
import { addToCoverage, emptyCoverage, proposeRule, type RuleParameters } from './rule-plan.js';
import { coverageIn, sawAnything } from './rule-select.js';
import { changeRule, newRuleNonce, ruleDetails, storeProposal, type Proposal } from './rules-store.js';
import {
  actorOf, channelTarget, latestCoverage, latestView, refreshCoveredAlerts, refreshedRuleCard, ruleCardResult, type RulesOptions,
} from './rules-context.js';

/** The card of a proposal, whatever storeProposal decided. */
export function proposalCard(options: RulesOptions, proposal: Proposal): Promise<ActionResult> {
  if (proposal.kind === 'unchanged') return ruleCardResult(options, proposal.rule, `Rule ${proposal.rule.template.ruleName} already says exactly this; nothing new to approve.`);
  if (proposal.kind === 'waiting') return ruleCardResult(options, proposal.rule, 'This rule is already waiting for approvers; here is its card.');
  return ruleCardResult(options, proposal.proposed.rule);
}

function unknownRule(options: RulesOptions, ctx: ChatContext, data: Record<string, unknown>): ActionResult {
  options.authorizer.refuse({ action: 'auto-rotate', ctx, subject: String(data.ruleId ?? '(unknown rule)').slice(0, 64) }, { ok: false, code: 'bad-input', reason: 'the card names no auto-rotation rule Keywarden knows' });
  return { text: 'This card does not name an auto-rotation rule I know. /rules lists them.' };
}

/** The rule a card names (its chat block holds the card's conversation and nonce), or the answer for an unknown one. */
function namedRule(options: RulesOptions, data: Record<string, unknown>, ctx: ChatContext):
  { rule: AutoRotationRule; ruleId: string; chat: NonNullable<AutoRotationRule['chat']> } | { answer: ActionResult } {
  const ruleId = idOf(data.ruleId);
  const rule = ruleId ? readAutoRotationRule(options.store, ruleId) : undefined;
  if (!rule?.chat || !ruleId) return { answer: unknownRule(options, ctx, data) };
  return { rule, ruleId, chat: rule.chat };
}

/** The rule card as the authorizer checks it: where it was posted and the nonce it carries now. */
function ruleCard(chat: NonNullable<AutoRotationRule['chat']>) {
  return { conversationId: chat.conversation.conversationId, tenantId: chat.conversation.tenantId, nonce: chat.nonce, nonceIssuedAt: chat.nonceIssuedAt };
}

/** "Rotate automatically from now on": a rule for this one credential, proposed in the alert's channel. */
function autoRotateAction(options: RulesOptions): CardAction {
  return {
    verb: 'autoRotate',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const alertId = idOf(data.alertId);
      const alert = alertId ? store.get<AlertRecord>('alerts', alertId)?.value : undefined;
      if (!alert) {
        authorizer.refuse({ action: 'auto-rotate', ctx, subject: alertId ?? '(unknown alert)' }, { ok: false, code: 'bad-input', reason: 'the card names no alert Keywarden knows' });
        return { text: 'This card does not name an alert I know. Ask me for a fresh one with /expiring.' };
      }
      const c = alert.credential;
      const now = clock.now();
      const blocker = planFor('rotate', c, config).blocker;
      const inForce = store.list<AutoRotationRule>('approvals', { prefix: 'standing:auto-rotation:' }).map((r) => r.value)
        .find((r) => isRuleActive(r, now) && ruleCovers(r, c));
      // Proposing is not approving: anyone in the channel may ask; the approvers decide on the plan card.
      const auth = await authorizer.authorize({
        action: 'auto-rotate', ctx, subject: c.id, memberOnly: true,
        card: { conversationId: alert.message?.conversationId ?? ctx.conversation.conversationId, tenantId: alert.message?.tenantId ?? '', nonce: alert.nonce, nonceIssuedAt: alert.nonceIssuedAt },
        presentedNonce: data.nonce,
        stateRefusal: alert.state === 'resolved' ? 'this alert is already resolved' : blocker
          ?? (inForce ? `rule ${inForce.template.ruleName} already rotates it automatically (/rules)` : undefined),
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      const parameters: RuleParameters = { selector: { credentialIds: [c.id] }, days: config.autoRotation.daysBefore, graceHours: config.workflows.graceHours };
      const conversation = alert.message
        ? { conversationId: alert.message.conversationId, serviceUrl: alert.message.serviceUrl, tenantId: alert.message.tenantId }
        : { conversationId: ctx.conversation.conversationId, serviceUrl: ctx.conversation.serviceUrl, tenantId: ctx.conversation.tenantId };
      const view = latestView(options);
      const scanned = sawAnything(view);
      const coverage = scanned ? await coverageIn(view, parameters.selector, config) : emptyCoverage();
      // Before any scan saw anything, the rule covers the alert's credential as the card shows it.
      if (!scanned) addToCoverage(coverage, c, config);
      const proposal = storeProposal({ store, config, parameters, coverage, requestedBy: actorOf(ctx), conversation, now });
      const answer = await proposalCard(options, proposal);
      const gateway = options.chat();
      const name = proposal.kind === 'proposed' ? proposal.proposed.rule.template.ruleName : proposal.rule.template.ruleName;
      if (!gateway || !('card' in answer)) return { text: `Rule ${name} is proposed; run /rules to see it (the Teams connection is not up to post its card).` };
      try {
        await gateway.post(channelTarget(conversation), { card: answer.card }, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        options.logger?.warn({ err, rule: name }, 'could not post the rule plan card');
        return { text: `Rule ${name} is stored, but its card could not be posted (${(err as Error).message.slice(0, 120)}). Run /autorotate ${c.id} ${parameters.days} to show it again.` };
      }
      return { text: proposal.kind === 'proposed' ? `Rule ${name} proposed: its plan card is in the channel, where another approver decides.` : `Rule ${name}: its card is in the channel again.` };
    },
  };
}

/** Approve: one vote per approver; the last needed vote puts the rule in force (and retires the version it changes). */
function approveRuleAction(options: RulesOptions): CardAction {
  return {
    verb: 'approveRule',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const named = namedRule(options, data, ctx);
      if ('answer' in named) return named.answer;
      const { rule, ruleId, chat } = named;
      const auth = await authorizer.authorize({
        action: 'auto-rotate', ctx, subject: rule.id, skipJustification: true,
        card: ruleCard(chat),
        presentedNonce: data.nonce, requestedBy: chat.requestedBy.aadObjectId,
        stateRefusal: rule.state === 'pending' ? undefined : `rule ${rule.template.ruleName} is already ${rule.state}`,
      });
      if (!auth.ok) return auth.refresh ? refreshedRuleCard(options, rule, `This card was out of date: ${auth.reason}`) : { text: `Not done: ${auth.reason}.` };
      const now = clock.now();

      // Approve what the card showed: if the scan since changed what the rule covers, the votes start over.
      const view = latestView(options);
      const scanned = sawAnything(view);
      const again = proposeRule({
        ruleId, ruleName: rule.template.ruleName, parameters: { selector: rule.selector, days: rule.trigger.days ?? 0, graceHours: rule.template.graceHours },
        coverage: scanned ? await coverageIn(view, rule.selector, config) : emptyCoverage(), config, requestedBy: chat.requestedBy, conversation: chat.conversation,
        nonce: newRuleNonce(), replaces: chat.replaces, now,
      });
      if (again.rule.planHash !== rule.planHash && scanned) {
        const reset = changeRule(store, ruleId, (r) => (r.state !== 'pending' ? `rule ${r.template.ruleName} is already ${r.state}` : {
          ...r, template: again.rule.template, planHash: again.rule.planHash, approvers: [], chat: { ...again.rule.chat!, requestedBy: chat.requestedBy },
        }));
        if (typeof reset === 'string') return { text: `Not done: ${reset}.` };
        store.appendAudit({ action: 'rule.plan-changed', actor: auth.approver, subject: rule.id, result: 'info', details: { ...ruleDetails(reset), previousPlanHash: rule.planHash } });
        return ruleCardResult(options, reset, `What rule ${rule.template.ruleName} covers changed since this card was posted (plan ${shortHash(rule.planHash)} → ${shortHash(reset.planHash)}); the approvals so far are cleared — check it and approve again.`);
      }

      const vote = { ...auth.approver, at: now };
      let alreadyVoted = false;
      const result = store.transaction(() => {
        const next = changeRule(store, ruleId, (r) => {
          if (r.state !== 'pending' || !r.chat) return `rule ${r.template.ruleName} is already ${r.state}`;
          if (r.planHash !== rule.planHash) return 'the rule changed a moment ago; look at its card again';
          if (r.approvers.some((a) => a.aadObjectId === vote.aadObjectId)) {
            alreadyVoted = true;
            return `you already approved this (${r.approvers.length} of ${r.chat.required}); a different approver must confirm`;
          }
          const approvers = [...r.approvers, vote];
          if (approvers.length < r.chat.required) return { ...r, approvers };
          return {
            ...r, approvers, state: 'active', reviewBy: now + config.autoRotation.reviewDays * DAY_MS,
            chat: { ...r.chat, approvedAt: now, nonce: newRuleNonce(), nonceIssuedAt: now },
          };
        });
        if (typeof next === 'string' || next.state !== 'active' || !next.chat?.replaces) return { next, replaced: undefined };
        const replaced = changeRule(store, next.chat.replaces.slice('standing:auto-rotation:'.length), (old) =>
          (['active', 'paused', 'expired'].includes(old.state) ? { ...old, state: 'replaced', chat: old.chat && { ...old.chat, replacedBy: next.id } } : 'not in force'));
        return { next, replaced: typeof replaced === 'string' ? undefined : replaced };
      });
      const { next, replaced } = result;
      if (typeof next === 'string') {
        authorizer.refuse({ action: 'auto-rotate', ctx, subject: rule.id }, { ok: false, code: alreadyVoted ? 'already-approved-by-you' : 'state', reason: next });
        return { text: `Not done: ${next}.` };
      }
      const votes = next.approvers.map((a) => ({ aadObjectId: a.aadObjectId, name: a.name, at: (a as typeof vote).at }));
      if (next.state === 'active') {
        store.appendAudit({ action: 'rule.approved', actor: auth.approver, subject: next.id, result: 'ok', details: { ...ruleDetails(next), votes, required: next.chat?.required, reviewBy: next.reviewBy, requestedBy: next.chat?.requestedBy } });
        if (replaced) {
          store.appendAudit({ action: 'rule.replaced', actor: auth.approver, subject: replaced.id, result: 'info', details: { ...ruleDetails(replaced), replacedBy: next.id, newPlanHash: next.planHash } });
          await refreshCoveredAlerts(options, replaced);
        }
        await refreshCoveredAlerts(options, next);
        return ruleCardResult(options, next, `Approved by ${next.approvers.map((a) => a.name).join(' and ')}: rule ${next.template.ruleName} is in force until ${formatUtcDate(next.reviewBy!)}.`);
      }
      store.appendAudit({ action: 'rule.approval-recorded', actor: auth.approver, subject: next.id, result: 'ok', details: { ...ruleDetails(next), votes, required: next.chat?.required } });
      return ruleCardResult(options, next, `Your approval is recorded (${next.approvers.length} of ${next.chat?.required}); waiting for another approver.`);
    },
  };
}

function denyRuleAction(options: RulesOptions): CardAction {
  return {
    verb: 'denyRule',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, authorizer } = options;
      const named = namedRule(options, data, ctx);
      if ('answer' in named) return named.answer;
      const { rule, ruleId, chat } = named;
      const auth = await authorizer.authorize({
        action: 'auto-rotate', ctx, subject: rule.id, skipJustification: true,
        card: ruleCard(chat),
        presentedNonce: data.nonce, stateRefusal: rule.state === 'pending' ? undefined : `rule ${rule.template.ruleName} is already ${rule.state}`,
      });
      if (!auth.ok) return auth.refresh ? refreshedRuleCard(options, rule, `This card was out of date: ${auth.reason}`) : { text: `Not done: ${auth.reason}.` };
      const now = clock.now();
      const next = changeRule(store, ruleId, (r) => (r.state !== 'pending' || !r.chat ? `rule ${r.template.ruleName} is already ${r.state}` : {
        ...r, state: 'denied', chat: { ...r.chat, nonce: newRuleNonce(), changedBy: { ...auth.approver, at: now } },
      }));
      if (typeof next === 'string') return { text: `Not done: ${next}.` };
      store.appendAudit({ action: 'rule.denied', actor: auth.approver, subject: next.id, result: 'ok', details: { ...ruleDetails(next), requestedBy: chat.requestedBy } });
      return ruleCardResult(options, next, `Denied by ${auth.approver.name}.${chat.replaces ? ' The rule it would have changed stays as it was.' : ''}`);
    },
  };
}

/** Renew on a reminder: the same rule proposed again (a new version), needing the same approvals. */
function renewRuleAction(options: RulesOptions): CardAction {
  return {
    verb: 'renewRule',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const named = namedRule(options, data, ctx);
      if ('answer' in named) return named.answer;
      const { rule, chat } = named;
      const now = clock.now();
      // A renewal only proposes (approvers decide), so the reminder's nonce does not age: it only has to be this rule's.
      const auth = await authorizer.authorize({
        action: 'auto-rotate', ctx, subject: rule.id, memberOnly: true,
        card: { conversationId: chat.conversation.conversationId, tenantId: chat.conversation.tenantId, nonce: chat.reminder?.nonce, nonceIssuedAt: now },
        presentedNonce: data.nonce,
        stateRefusal: ['active', 'paused', 'expired'].includes(rule.state) ? undefined : `rule ${rule.template.ruleName} is ${rule.state}; propose a new one with /autorotate`,
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      const proposal = storeProposal({
        store, config, parameters: { selector: rule.selector, days: rule.trigger.days ?? 0, graceHours: rule.template.graceHours },
        coverage: await latestCoverage(options, rule.selector), requestedBy: actorOf(ctx), conversation: chat.conversation, changes: rule, renewal: true, now,
      });
      return proposalCard(options, proposal);
    },
  };
}

export function ruleCardActions(options: RulesOptions): CardAction[] {
  return [autoRotateAction(options), approveRuleAction(options), denyRuleAction(options), renewRuleAction(options)];
}

export { ruleIdOf, standingHash };
