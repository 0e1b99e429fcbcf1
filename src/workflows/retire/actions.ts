/**
 * The Retire-unused and Revoke-on-demand buttons. Both carry only an offer id and its nonce (approvals/remedy-offers.ts):
 * the handler plans again from the latest scan, and when the plan is not the one the card showed (or the offer came
 * from a report that showed no plan yet) it answers with the plan card instead of approving. An approval goes through
 * the same path as a card's Revoke: authorize → recordApproval (N-of-M, one job per subject) → the engine.
 */
import { environmentOf } from '../../alerts/routing.js';
import { currentAlert } from '../../alerts/lifecycle.js';
import type { AlertRecord } from '../../alerts/types.js';
import { checkConversation, checkTenant, cleanText, recentlyUsed, requiredApprovals } from '../../approvals/rules.js';
import { createRemedyOffer, readRemedyOffer, type RemedyOffer } from '../../approvals/remedy-offers.js';
import { recordApproval } from '../../approvals/record.js';
import type { ApprovalRecord } from '../../approvals/types.js';
import type { AdaptiveCard, CardAction, ChatContext } from '../../domain/chat.js';
import type { Credential } from '../../domain/credential.js';
import type { JobRecord } from '../../domain/job.js';
import { formatTime, planHash, type ActionPlan } from '../../domain/plan.js';
import { scanViewOf, type ScanResult } from '../../domain/scan.js';
import type { ScanTrigger } from '../../scanner/scanner.js';
import { answerFor, auditDecision, idOf, messageOf, newId, STEPS, type ActionResult, type WorkflowActionsOptions } from '../actions.js';
import { renderApprovalForm } from '../cards.js';
import { lastUseText, planRevoke, revokeBlocker } from '../revoke/revoke.js';
import { planRetire, retireBatchOf, type RetireOptions } from './planner.js';
import { keepKey } from './retire.js';
import { batchOf } from './planner.js';

export interface RemedyActionsOptions extends WorkflowActionsOptions {
  scans: { lastScan(): ScanResult | undefined; latestOrScan(trigger: ScanTrigger): Promise<ScanResult> };
}

/** Where an offer may be clicked: the conversation it was shown in (else any support channel) and its tenant. */
function offerCard(offer: RemedyOffer, ctx: ChatContext) {
  const p = offer.parameters;
  return {
    conversationId: typeof p.conversationId === 'string' ? p.conversationId : ctx.conversation.conversationId,
    tenantId: typeof p.tenantId === 'string' ? p.tenantId : '',
    nonce: offer.nonce, nonceIssuedAt: offer.nonceIssuedAt,
  };
}

/** The offer's shown-in fields from a command's context. */
export function shownIn(ctx: ChatContext): { conversationId: string; tenantId: string } {
  return { conversationId: ctx.conversation.conversationId, tenantId: ctx.actor.tenantId ?? ctx.conversation.tenantId };
}

// ── Retire unused tokens ───────────────────────────────────────────────────────────────────────────────────────

export function retireOptionsFor(options: Pick<WorkflowActionsOptions, 'config' | 'clock'>, scope: string, unusedDays?: number): RetireOptions {
  const r = options.config.governance.retire;
  return { scope, unusedDays: unusedDays ?? r.unusedDays, waitDays: r.waitDays, maxBatch: r.maxBatch, now: options.clock.now() };
}

async function retirePlan(options: RemedyActionsOptions, scan: ScanResult, offer: Pick<RemedyOffer, 'subject' | 'parameters'>): Promise<{ plan: ActionPlan; hash: string; tokens: number }> {
  const unusedDays = typeof offer.parameters.unusedDays === 'number' ? offer.parameters.unusedDays : undefined;
  const ro = retireOptionsFor(options, offer.subject, unusedDays);
  const batch = await retireBatchOf(scan, options.config, ro);
  const plan = planRetire(batch, ro);
  return { plan, hash: planHash(plan), tokens: batch.tokens.length };
}

/** The plan card of a retire offer: the batch, owners, wait, approvals needed, and the Approve button. */
export function retirePlanCard(options: RemedyActionsOptions, offer: RemedyOffer, plan: ActionPlan, hash: string, notice?: string, approval?: ApprovalRecord): AdaptiveCard {
  const required = requiredApprovals({ action: 'retire-unused', scope: offer.scope, environment: environmentOf(options.config, offer.scope), now: options.clock.now() }, options.config.approvals);
  const tokens = batchOf(plan);
  const waitDays = Number(plan.parameters.waitDays);
  return renderApprovalForm({
    notice,
    headline: plan.title,
    facts: [
      { title: 'Tokens', value: String(tokens.length) },
      { title: 'Owners to notify', value: [...new Set(tokens.map((t) => t.ownerName))].join(', ') || 'none' },
      { title: 'Wait before revoking', value: `${waitDays} d (governance.retire.waitDays) — revoked about ${formatTime(options.clock.now() + waitDays * 86_400_000)} if approved now` },
      { title: 'Requested by', value: offer.offeredBy?.name ?? 'Keywarden' },
      ...(approval ? [{ title: 'Approved so far', value: approval.approvers.map((a) => a.name).join(', ') }] : []),
    ],
    plan, planHash: hash,
    approvalsText: `${approval ? `${approval.approvers.length} of ${approval.required} approvals. ` : ''}${required.required > 1 ? `Needs ${required.required} approvers: ${required.reasons.join('; ')}.` : 'One approver is enough.'} Whoever asked for it cannot approve it.`,
    askJustification: false, askOverride: false,
    confirmTitle: approval ? 'Confirm (second approver)' : tokens.length ? `Approve: notify owners, revoke in ${waitDays} d` : 'Nothing to retire',
    confirmVerb: approval ? 'confirm' : 'retireUnused',
    confirmData: approval ? { approvalId: approval.id, nonce: approval.nonce } : { offerId: offer.id, nonce: offer.nonce },
  });
}

/** A fresh offer showing `plan` (its hash pinned), for a command or for a click on an offer that showed no plan. */
/** Without `planHash` (a button that shows no plan, like the report's or /findings'), the first click shows the plan. */
export function offerRetire(options: RemedyActionsOptions, input: { scope: string; unusedDays: number; offeredBy?: RemedyOffer['offeredBy']; ctx: ChatContext; planHash?: string }): RemedyOffer {
  return createRemedyOffer(options.store, options.clock, {
    remedy: 'retire-unused', subject: input.scope, scope: input.scope, offeredBy: input.offeredBy,
    parameters: { unusedDays: input.unusedDays, ...(input.planHash ? { planHash: input.planHash } : {}), ...shownIn(input.ctx) },
  });
}

function retireAction(options: RemedyActionsOptions): CardAction {
  return {
    verb: 'retireUnused',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, authorizer, config } = options;
      const offer = readRemedyOffer(store, data.offerId);
      if (!offer || offer.remedy !== 'retire-unused') {
        authorizer.refuse({ action: 'retire-unused', ctx, subject: String(idOf(data.offerId) ?? '(unknown offer)') }, { ok: false, code: 'bad-input', reason: 'the card names no retire offer Keywarden knows' });
        return { text: 'This card names no offer I know. Ask again with /retire-unused.' };
      }
      const scan = await options.scans.latestOrScan('command');
      const { plan, hash, tokens } = await retirePlan(options, scan, offer);
      const unusedDays = Number(plan.parameters.unusedDays);
      if (offer.parameters.planHash !== hash) {
        // A report's button, or the estate changed since this card: show the plan as it is now, nothing is approved.
        const fresh = offerRetire(options, { scope: offer.subject, unusedDays, offeredBy: offer.offeredBy ?? { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name }, ctx, planHash: hash });
        const notice = offer.parameters.planHash === undefined ? undefined : 'The tokens changed since this card was shown (a scan ran); here is the batch as it is now — check it and approve again.';
        return { card: retirePlanCard(options, fresh, plan, hash, notice) };
      }
      const now = clock.now();
      const auth = await authorizer.authorize({
        action: 'retire-unused', ctx, subject: plan.subject, card: offerCard(offer, ctx), presentedNonce: data.nonce,
        requestedBy: offer.offeredBy?.aadObjectId, stateRefusal: tokens === 0 ? 'there are no tokens to retire in this batch' : undefined,
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      const required = requiredApprovals({ action: 'retire-unused', scope: offer.scope, environment: environmentOf(config, offer.scope), now }, config.approvals);
      const requestedBy = offer.offeredBy?.aadObjectId ? { aadObjectId: offer.offeredBy.aadObjectId, name: offer.offeredBy.name } : undefined;
      const outcome = recordApproval(store, {
        id: `remedy:${offer.id}:${offer.nonce}:approval`, action: 'retire-unused', subject: plan.subject, scope: offer.scope, nonce: offer.nonce,
        required: required.required, approver: { ...auth.approver, at: now }, plan, planHash: hash, jobKind: 'retire-unused',
        steps: STEPS['retire-unused'], jobId: newId('ret'), requestedBy, message: messageOf(undefined, ctx), now,
      });
      auditDecision(options, outcome, ctx, { action: 'retire-unused', targets: { scope: offer.scope, offerId: offer.id, tokens }, requiredReasons: required.reasons });
      if (outcome.kind === 'started') options.engine.kick(outcome.job.id);
      return answerFor(outcome, {
        authorizer, action: 'retire-unused', ctx, subject: plan.subject,
        pendingCard: () => retirePlanCard(options, offer, plan, hash, undefined, outcome.kind === 'pending' ? outcome.approval : undefined),
      });
    },
  };
}

/** "Keep this token" in the owners' notice: the owner (or an approver) takes one token out of the waiting batch. */
function keepAction(options: RemedyActionsOptions): CardAction {
  return {
    verb: 'keepToken',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, authorizer, config, engine } = options;
      const jobId = idOf(data.jobId);
      const job = jobId ? store.get<JobRecord>('jobs', jobId)?.value : undefined;
      const token = job && batchOf(job.plan).find((t) => t.workspace === data.workspace && t.tokenId === data.tokenId);
      const subject = job?.subject ?? '(unknown job)';
      const refuse = (code: 'bad-input' | 'state' | 'not-approver' | 'stale-card', reason: string): ActionResult => {
        authorizer.refuse({ action: 'retire-unused', ctx, subject }, { ok: false, code, reason });
        return { text: `Not kept: ${reason}.` };
      };
      if (!job || job.kind !== 'retire-unused' || !token) return refuse('bad-input', 'the card names no token of a retire batch Keywarden knows');
      const where = checkTenant(ctx, job.message?.tenantId || config.bot.tenantId || config.azure.tenantId || '') ?? checkConversation(ctx, job.message?.conversationId ?? '', config.teams.channels);
      if (where) return refuse(where.code as 'bad-input', where.reason);
      if (typeof data.nonce !== 'string' || data.nonce !== job.facts.keepNonce) return refuse('stale-card', 'this card is not the batch\'s current notice');
      if (job.state !== 'waiting') return refuse('state', job.state === 'done' ? 'the batch already ran' : 'the batch is no longer waiting (it is being revoked now, or ended)');
      const owner = token.ownerEntraId !== null && token.ownerEntraId === ctx.actor.aadObjectId;
      if (!owner && (await authorizer.directory.isApprover(ctx.actor.aadObjectId!)) !== true) {
        return refuse('not-approver', `only the token's owner (${token.ownerName}) or an approver may keep it`);
      }
      const changed = engine.changeWaiting(job.id, (j) => ({ ...j, facts: { ...j.facts, [keepKey(token)]: ctx.actor.name } }));
      if (!changed) return refuse('state', 'the batch is being worked on right now; try again in a minute');
      store.appendAudit({
        action: 'retire.token-kept', actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name }, subject: token.credentialId, result: 'ok',
        details: { jobId: job.id, workspace: token.workspace, tokenId: token.tokenId, comment: token.comment, as: owner ? 'owner' : 'approver' },
      });
      return { text: `Kept: "${token.comment}" in ${token.workspace} is out of the batch and will not be revoked.` };
    },
  };
}

// ── Revoke on demand ───────────────────────────────────────────────────────────────────────────────────────────

/** The Revoke form for any credential of the scan, alert or not: same facts, usage gate and justification as the card. */
export function revokeForm(options: RemedyActionsOptions, offer: RemedyOffer, c: Credential, notice?: string, approval?: ApprovalRecord): AdaptiveCard {
  const now = options.clock.now();
  const plan = planRevoke(c);
  const required = requiredApprovals({ action: 'revoke', scope: c.where.scope, environment: environmentOf(options.config, c.where.scope), lastUsedAt: c.lastUsedAt, now }, options.config.approvals);
  return renderApprovalForm({
    notice,
    headline: `Revoke ${c.name}?`,
    facts: [
      { title: 'Where', value: c.where.label }, { title: 'Owner', value: c.owner?.name ?? 'unknown' },
      { title: 'Expires', value: formatTime(c.expiresAt) }, { title: 'Last use', value: lastUseText(c) },
      { title: 'Asked by', value: offer.offeredBy?.name ?? 'Keywarden' },
      ...(approval ? [{ title: 'Approved so far', value: approval.approvers.map((a) => a.name).join(', ') }] : []),
    ],
    plan, planHash: planHash(plan),
    approvalsText: approval
      ? `${approval.approvers.length} of ${approval.required} approvals: ${required.reasons.join('; ') || 'high-risk action'} — another approver must confirm.`
      : required.required > 1 ? `Needs ${required.required} approvers: ${required.reasons.join('; ')}.` : 'One approver is enough.',
    askJustification: !approval,
    askOverride: !approval && recentlyUsed(c.lastUsedAt, now, options.config.approvals.revokeRecentUseDays),
    confirmTitle: approval ? 'Confirm (second approver)' : 'Revoke',
    confirmVerb: approval ? 'confirm' : 'revokeOnDemand',
    confirmData: approval ? { approvalId: approval.id, nonce: approval.nonce } : { offerId: offer.id, nonce: offer.nonce },
  });
}

export function offerRevoke(options: RemedyActionsOptions, c: Credential, ctx: ChatContext, offeredBy?: RemedyOffer['offeredBy']): RemedyOffer {
  return createRemedyOffer(options.store, options.clock, {
    remedy: 'revoke', subject: c.id, scope: c.where.scope, offeredBy,
    parameters: { planHash: planHash(planRevoke(c)), ...shownIn(ctx) },
  });
}

/** The open alert of a credential, so a revoke on demand also resolves its card. */
function openAlertOf(options: RemedyActionsOptions, credentialId: string): AlertRecord | undefined {
  return currentAlert(options.store, credentialId)?.value;
}

function revokeOnDemandAction(options: RemedyActionsOptions): CardAction {
  return {
    verb: 'revokeOnDemand',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, authorizer, config } = options;
      const offer = readRemedyOffer(store, data.offerId);
      if (!offer || offer.remedy !== 'revoke') {
        authorizer.refuse({ action: 'revoke', ctx, subject: String(idOf(data.offerId) ?? '(unknown offer)') }, { ok: false, code: 'bad-input', reason: 'the card names no revoke offer Keywarden knows' });
        return { text: 'This card names no offer I know. Ask again with /revoke.' };
      }
      const scan = await options.scans.latestOrScan('command');
      const c = scanViewOf(scan).get(offer.subject)?.credential;
      if (!c) return { text: `Not done: ${offer.subject} is not in the latest scan any more (already revoked or deleted?). Nothing was started.` };
      const plan = planRevoke(c);
      const hash = planHash(plan);
      if (offer.parameters.planHash !== hash) {
        const fresh = offerRevoke(options, c, ctx, offer.offeredBy ?? { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name });
        const notice = offer.parameters.planHash === undefined ? undefined : 'The credential changed since this card was shown (a scan ran); here is the plan as it is now — check it and click again.';
        return { card: revokeForm(options, fresh, c, notice) };
      }
      const now = clock.now();
      const justification = cleanText(data.justification);
      const overrideReason = cleanText(data.overrideReason);
      const auth = await authorizer.authorize({
        action: 'revoke', ctx, subject: c.id, card: offerCard(offer, ctx), presentedNonce: data.nonce, stateRefusal: revokeBlocker(c), justification,
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      // The same gate as the card's Revoke: in use within revokeRecentUseDays → a second approver or an override reason.
      const required = requiredApprovals({ action: 'revoke', scope: c.where.scope, environment: environmentOf(config, c.where.scope), lastUsedAt: c.lastUsedAt, overrideReason, now }, config.approvals);
      const alert = openAlertOf(options, c.id);
      const outcome = recordApproval(store, {
        id: `remedy:${offer.id}:${offer.nonce}:approval`, action: 'revoke', subject: c.id, scope: c.where.scope, nonce: offer.nonce,
        required: required.required, approver: { ...auth.approver, at: now, ...(justification ? { justification } : {}) }, plan, planHash: hash,
        jobKind: 'revoke', steps: STEPS.revoke, jobId: newId('rev'), alertId: alert?.id, justification, overrideReason,
        message: messageOf(undefined, ctx), now,
      });
      auditDecision(options, outcome, ctx, {
        action: 'revoke', targets: { credentialId: c.id, nativeId: c.nativeId, scope: c.where.scope, onDemand: true, offerId: offer.id, askedBy: offer.offeredBy?.name },
        requiredReasons: required.reasons,
      });
      if (outcome.kind === 'started') options.engine.kick(outcome.job.id);
      return answerFor(outcome, {
        authorizer, action: 'revoke', ctx, subject: c.id,
        pendingCard: () => revokeForm(options, offer, c, undefined, outcome.kind === 'pending' ? outcome.approval : undefined),
      });
    },
  };
}

export function remedyCardActions(options: RemedyActionsOptions): CardAction[] {
  return [retireAction(options), keepAction(options), revokeOnDemandAction(options)];
}
