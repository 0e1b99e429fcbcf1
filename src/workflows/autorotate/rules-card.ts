/**
 * The `/rules` card: every auto-rotation rule and every config-declared standing approval (pipeline JIT), with scope,
 * trigger, approvers, state, review date, last and next run, and Pause / Resume / Revoke per rule.
 */
import { listAutoRotationRules, ruleIdOf, selectorText, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import type { PipelineJitTemplate, StandingApproval } from '../../approvals/standing.js';
import { renderCard } from '../../cards/render.js';
import type { AdaptiveCard } from '../../domain/chat.js';
import type { ScanView } from '../../domain/scan.js';
import { formatUtcDate } from '../../domain/expiry.js';
import { formatTime } from '../../domain/plan.js';
import { planFor } from '../plan-for.js';
import { firesAt } from './rule-plan.js';
import { selectedPages } from './rule-select.js';
import { changeRule, newRuleNonce, runsOf } from './rules-store.js';
import { latestView, type RulesOptions } from './rules-context.js';

/** Rules people no longer act on are left out: denied proposals and versions a newer one replaced. */
const HIDDEN: ReadonlyArray<AutoRotationRule['state']> = ['denied', 'replaced'];
const MAX_SHOWN = 25;

const STATE_COLOR: Record<AutoRotationRule['state'], string> = {
  active: 'Good', pending: 'Accent', paused: 'Warning', expired: 'Warning', revoked: 'Attention', denied: 'Attention', replaced: 'Default',
};

/** Buttons need a nonce young enough to click: one past half its life is renewed as the card is drawn. */
function withFreshNonce(options: RulesOptions, rule: AutoRotationRule): AutoRotationRule {
  const now = options.clock.now();
  if (!rule.chat || now - rule.chat.nonceIssuedAt < (options.config.approvals.nonceTtlMinutes * 60_000) / 2) return rule;
  const next = changeRule(options.store, ruleIdOf(rule), (r) => (r.chat ? { ...r, chat: { ...r.chat, nonce: newRuleNonce(), nonceIssuedAt: now } } : 'no chat state'));
  return typeof next === 'string' ? rule : next;
}

function lastRunText(options: RulesOptions, rule: AutoRotationRule): string {
  const runs = runsOf(options.store, rule).filter((r) => typeof r.lastRunAt === 'number').sort((a, b) => b.lastRunAt! - a.lastRunAt!);
  const last = runs[0];
  if (!last) return 'not run yet';
  return `${formatTime(last.lastRunAt)} · ${last.credentialId}${last.lastResult ? ` · ${last.lastResult}` : ''}${last.lastJobId ? ` (job ${last.lastJobId})` : ''}`;
}

/** The covered credential that fires first (the first in scan order among equals), read page by page. */
async function firstToFire(options: RulesOptions, view: ScanView | undefined, rule: AutoRotationRule): Promise<{ at: number; name: string } | undefined> {
  if (!view) return undefined;
  const paused = new Set(runsOf(options.store, rule).filter((r) => r.pausedReason).map((r) => r.credentialId));
  let first: { at: number; name: string } | undefined;
  for await (const page of selectedPages(view, rule.selector)) {
    for (const c of page) {
      const at = firesAt(rule, c);
      if (at === null || paused.has(c.id) || (first && at >= first.at) || planFor('rotate', c, options.config).blocker) continue;
      first = { at, name: c.name };
    }
  }
  return first;
}

async function nextRunText(options: RulesOptions, rule: AutoRotationRule, view: ScanView | undefined): Promise<string> {
  if (rule.state === 'pending') return 'after approval';
  if (rule.state !== 'active') return `none (${rule.state})`;
  const now = options.clock.now();
  if (rule.reviewBy !== undefined && now >= rule.reviewBy) return 'none (review date passed: renew it)';
  const next = await firstToFire(options, view, rule);
  if (!next) return 'nothing covered expires';
  return next.at <= now ? `due now (${next.name}, at the next scan)` : `${formatTime(next.at)} (${next.name})`;
}

function ruleRow(options: RulesOptions, stored: AutoRotationRule, nextRun: string) {
  const rule = withFreshNonce(options, stored);
  const name = rule.template.ruleName;
  const pendingChange = listAutoRotationRules(options.store).find((r) => r.state === 'pending' && r.chat?.replaces === rule.id);
  const approvers = rule.approvers.map((a) => a.name).join(', ');
  const facts = [
    { title: 'Covers', value: selectorText(rule.selector) },
    { title: 'Trigger', value: `${rule.trigger.days ?? 0} days before expiry · new credential lives ${rule.template.lifetimeDays} d · grace ${rule.template.graceHours} h` },
    { title: 'Approvers', value: approvers || `none yet (${rule.chat?.required ?? 1} needed; asked by ${rule.chat?.requestedBy.name ?? 'someone'})` },
    { title: 'Review by', value: rule.reviewBy ? formatUtcDate(rule.reviewBy) : 'set at approval' },
    { title: 'Last run', value: lastRunText(options, rule) },
    { title: 'Next run', value: nextRun },
    ...(pendingChange ? [{ title: 'Change waiting', value: `${ruleIdOf(pendingChange)}: ${selectorText(pendingChange.selector)}, ${pendingChange.trigger.days} days — in force once approved` }] : []),
  ];
  const live = ['active', 'paused', 'expired'].includes(rule.state);
  return {
    name, heading: `${name} · auto-rotation · ${rule.state}`, color: STATE_COLOR[rule.state], facts,
    hasActions: live, canPause: rule.state === 'active', canResume: rule.state === 'paused', canRevoke: live,
    actionData: { ruleId: ruleIdOf(rule), nonce: rule.chat?.nonce ?? '' },
  };
}

function pipelineRow(approval: StandingApproval<PipelineJitTemplate>) {
  const t = approval.template;
  return {
    name: t.callerName, heading: `${t.callerName} · pipeline JIT · ${approval.state} (declared in config)`, color: STATE_COLOR[approval.state],
    facts: [
      { title: 'Covers', value: `caller ${approval.selector.callerObjectId ?? '?'} in ${t.workspaces.join(', ')}` },
      { title: 'Trigger', value: `an authenticated POST /api/jit · at most ${t.maxHours} h, ${t.maxCapacity} nodes, ${t.hours[0]}:00–${t.hours[1]}:00 UTC` },
      { title: 'Approvers', value: 'the review of the config change (pipelines.callers)' },
      { title: 'Review by', value: approval.reviewBy ? formatUtcDate(approval.reviewBy) : 'with the config' },
      { title: 'Declared', value: formatTime(approval.declaredAt) },
    ],
    hasActions: false, canPause: false, canResume: false, canRevoke: false, actionData: {},
  };
}

export async function renderRulesCard(options: RulesOptions, notice?: string): Promise<AdaptiveCard> {
  const rules = listAutoRotationRules(options.store).filter((r) => !HIDDEN.includes(r.state))
    .sort((a, b) => a.template.ruleName.localeCompare(b.template.ruleName, 'en', { numeric: true }) || a.declaredAt - b.declaredAt);
  const pipelines = options.store.list<StandingApproval<PipelineJitTemplate>>('approvals', { prefix: 'standing:pipeline-jit:' }).map((r) => r.value);
  const view = latestView(options);
  // Only the rules the card shows need their next run (each reads what its rule covers).
  const nextRuns: string[] = [];
  for (const rule of rules) nextRuns.push(nextRuns.length < MAX_SHOWN ? await nextRunText(options, rule, view) : '');
  const rows = [...rules.map((r, i) => ruleRow(options, r, nextRuns[i]!)), ...pipelines.map(pipelineRow)];
  return renderCard('rules', {
    hasNotice: Boolean(notice), notice: notice ?? '',
    title: `Standing approvals: ${rules.length} auto-rotation rule${rules.length === 1 ? '' : 's'}, ${pipelines.length} pipeline approval${pipelines.length === 1 ? '' : 's'}`,
    hint: 'An approver can pause, resume or revoke a rule (one approver is enough). To change one, run /autorotate again: the change needs a new approval, and the rule stays as it is until then.',
    rules: rows.slice(0, MAX_SHOWN),
    isEmpty: rows.length === 0,
    emptyText: 'No rules yet. Click "Rotate automatically from now on" on a credential card, or run /autorotate.',
  });
}
