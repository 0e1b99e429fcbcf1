/**
 * `/rules [pause|resume|revoke R1]` and the Pause / Resume / Revoke buttons of the /rules card. Any one approver may
 * pause, resume or revoke (stopping automation never needs a second approver); every change is audited.
 */
import { readAutoRotationRule, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import { checkTenant } from '../../approvals/rules.js';
import type { CardAction, ChatCommand, ChatContext, Reply } from '../../domain/chat.js';
import type { JobActor } from '../../domain/job.js';
import { idOf, type ActionResult } from '../actions.js';
import { changeRule, findRule, ruleDetails } from './rules-store.js';
import { refreshCoveredAlerts, type RulesOptions } from './rules-context.js';
import { renderRulesCard } from './rules-card.js';
import { commandHelp } from './autorotate-command.js';

export const RULES_USAGE = '/rules [pause|resume|revoke <rule>]';
export const RULES_EXAMPLE = '/rules pause R1';

export type RuleChange = 'pause' | 'resume' | 'revoke';

const DONE: Record<RuleChange, { state: AutoRotationRule['state']; word: string; audit: string }> = {
  pause: { state: 'paused', word: 'paused', audit: 'rule.paused' },
  resume: { state: 'active', word: 'resumed', audit: 'rule.resumed' },
  revoke: { state: 'revoked', word: 'revoked', audit: 'rule.revoked' },
};

/** Why the change cannot apply to the rule as it is now, or undefined. */
function changeBlocker(change: RuleChange, rule: AutoRotationRule, now: number): string | undefined {
  const name = rule.template.ruleName;
  if (change === 'pause' && rule.state !== 'active') return `rule ${name} is ${rule.state}, not active`;
  if (change === 'resume' && rule.state !== 'paused') return `rule ${name} is ${rule.state}, not paused`;
  if (change === 'resume' && rule.reviewBy !== undefined && now >= rule.reviewBy) return `rule ${name} passed its review date; renew it (run /autorotate with the same selector) instead`;
  if (change === 'revoke' && !['active', 'paused', 'expired'].includes(rule.state)) return `rule ${name} is ${rule.state}; there is nothing to revoke`;
  return undefined;
}

/** Applies a change decided by an authorized approver; returns the rule or why not. */
export async function applyRuleChange(options: RulesOptions, change: RuleChange, rule: AutoRotationRule, by: JobActor): Promise<AutoRotationRule | string> {
  const now = options.clock.now();
  const next = changeRule(options.store, rule.id.slice('standing:auto-rotation:'.length), (r) => changeBlocker(change, r, now) ?? {
    ...r, state: DONE[change].state, ...(r.chat ? { chat: { ...r.chat, changedBy: { ...by, at: now } } } : {}),
  });
  if (typeof next === 'string') return next;
  options.store.appendAudit({ action: DONE[change].audit, actor: by, subject: next.id, result: 'ok', details: { ...ruleDetails(next), previousState: rule.state } });
  await refreshCoveredAlerts(options, next);
  return next;
}

/** A command has no card nonce: the clicker must be a signed-in approver of our tenant. */
async function commandApprover(options: RulesOptions, ctx: ChatContext, subject: string): Promise<JobActor | string> {
  const { config, authorizer } = options;
  const tenant = config.bot.tenantId ?? config.azure.tenantId ?? config.entra.tenantId ?? ctx.conversation.tenantId;
  const refusal = checkTenant(ctx, tenant);
  const member = refusal ? undefined : await authorizer.directory.isApprover(ctx.actor.aadObjectId!);
  const reason = refusal?.reason
    ?? (member === 'unavailable' ? 'Keywarden could not check your approver group membership in Entra right now; try again in a minute'
      : member ? undefined : `${ctx.actor.name} is not an approver for Keywarden actions (approvals.users / approvals.groups)`);
  if (reason) {
    authorizer.refuse({ action: 'auto-rotate', ctx, subject }, { ok: false, code: refusal?.code ?? (member === 'unavailable' ? 'directory-unavailable' : 'not-approver'), reason });
    return reason;
  }
  return { aadObjectId: ctx.actor.aadObjectId!, name: ctx.actor.name };
}

export function rulesCommand(options: RulesOptions): ChatCommand {
  const command: ChatCommand = {
    name: 'rules',
    usage: RULES_USAGE,
    description: 'lists the standing approvals (auto-rotation rules and pipeline JIT) with their scope, approvers, last and next run; an approver can pause, resume or revoke a rule',
    example: RULES_EXAMPLE,
    details: [
      'Without arguments: every auto-rotation rule and config-declared pipeline approval, with Pause / Resume / Revoke buttons.',
      'pause <rule>: the rule stops firing until resumed · resume <rule>: it fires again (not past its review date) · revoke <rule>: it ends for good.',
      '<rule> is the name on its card (R1). One approver is enough for each; widening a rule needs a new approval (/autorotate).',
    ].join(' · '),
    async handle(args, ctx): Promise<Reply> {
      if (/(^|\s)(--help|-h)(\s|$)/.test(args)) return commandHelp(command, options.config.bot.name);
      const words = args.trim().split(/\s+/).filter(Boolean);
      if (words.length === 0) return { kind: 'card', card: await renderRulesCard(options) };
      const [verb, name, ...rest] = words as [string, string | undefined, ...string[]];
      const change = verb.toLowerCase();
      if ((change !== 'pause' && change !== 'resume' && change !== 'revoke') || !name || rest.length > 0) {
        return { kind: 'text', text: `Cannot do that: say pause, resume or revoke and a rule name.\nUsage: ${RULES_USAGE}\nExample: ${RULES_EXAMPLE}` };
      }
      const rule = /^[A-Za-z0-9_-]{1,64}$/.test(name) ? findRule(options.store, name) : undefined;
      if (!rule) return { kind: 'text', text: `There is no rule "${name.slice(0, 40)}". /rules lists them.` };
      const by = await commandApprover(options, ctx, rule.id);
      if (typeof by === 'string') return { kind: 'text', text: `Not done: ${by}.` };
      const next = await applyRuleChange(options, change, rule, by);
      if (typeof next === 'string') return { kind: 'text', text: `Not done: ${next}.` };
      return { kind: 'card', card: await renderRulesCard(options, `Rule ${next.template.ruleName} ${DONE[change].word} by ${by.name}.`) };
    },
  };
  return command;
}

/** Pause / Resume / Revoke buttons on the /rules card (the card lives where /rules was asked). */
function ruleChangeAction(options: RulesOptions, change: RuleChange, verb: string): CardAction {
  return {
    verb,
    async handle(data, ctx): Promise<ActionResult> {
      const { store, authorizer } = options;
      const ruleId = idOf(data.ruleId);
      const rule = ruleId ? readAutoRotationRule(store, ruleId) : undefined;
      if (!rule) {
        authorizer.refuse({ action: 'auto-rotate', ctx, subject: ruleId ?? '(unknown rule)' }, { ok: false, code: 'bad-input', reason: 'the card names no auto-rotation rule Keywarden knows' });
        return { text: 'This card does not name an auto-rotation rule I know. /rules lists them.' };
      }
      const auth = await authorizer.authorize({
        action: 'auto-rotate', ctx, subject: rule.id, skipJustification: true,
        card: { conversationId: ctx.conversation.conversationId, tenantId: rule.chat?.conversation.tenantId ?? '', nonce: rule.chat?.nonce, nonceIssuedAt: rule.chat?.nonceIssuedAt },
        presentedNonce: data.nonce, stateRefusal: changeBlocker(change, rule, options.clock.now()),
      });
      if (!auth.ok) return auth.refresh ? { card: await renderRulesCard(options, `This card was out of date: ${auth.reason}`) } : { text: `Not done: ${auth.reason}.` };
      const next = await applyRuleChange(options, change, rule, auth.approver);
      if (typeof next === 'string') return { text: `Not done: ${next}.` };
      return { card: await renderRulesCard(options, `Rule ${next.template.ruleName} ${DONE[change].word} by ${auth.approver.name}.`) };
    },
  };
}

export function ruleChangeActions(options: RulesOptions): CardAction[] {
  return [ruleChangeAction(options, 'pause', 'pauseRule'), ruleChangeAction(options, 'resume', 'resumeRule'), ruleChangeAction(options, 'revoke', 'revokeRule')];
}
