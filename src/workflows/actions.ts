/**
 * The Rotate / Revoke / Confirm / Rollback / Back card verbs. Every click: look up server state by the id in the
 * card data, authorize (approver, tenant, channel, nonce, state), claim the approval + job with one transaction,
 * answer at once with an "in progress — approved by X" card, and let the engine run the job in the background.
 */
import { randomBytes } from 'node:crypto';
import { freshNonce, setAlertProgress } from '../alerts/lifecycle.js';
import { renderAlertCard } from '../alerts/cards.js';
import { environmentOf } from '../alerts/routing.js';
import type { AlertRecord } from '../alerts/types.js';
import type { ClickAuthorizer } from '../approvals/authorize.js';
import { recordApproval, type ApprovalOutcome } from '../approvals/record.js';
import { baseConversationId, cleanText, recentlyUsed, requiredApprovals } from '../approvals/rules.js';
import type { ActionOffer, ApprovalAction, ApprovalRecord, Refusal } from '../approvals/types.js';
import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { AdaptiveCard, CardAction, ChatContext, PostedMessage } from '../domain/chat.js';
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';
import { renderApprovalForm, renderProgressCard, rollbackOfferCard } from './cards.js';
import type { JobEngine } from './engine/journal.js';
import { planHash, formatTime, type ActionPlan } from '../domain/plan.js';
import { entraRotationBlocker, planEntraRotation } from './rotate/rotate-entra.js';
import { patRotationBlocker, planPatRotation } from './rotate/rotate-pat.js';
import { lastUseText, planRevoke, revokeBlocker } from './revoke/revoke.js';
import { planRollback, rollbackBlocker } from './rotate/rollback.js';
import { TERMINAL_STATES, type JobKind, type JobRecord, type StepName } from '../domain/job.js';
import { refreshUserIds } from '../approvals/people.js';
import { autoRotationText } from '../approvals/auto-rotation.js';

export type ActionResult = { card: AdaptiveCard } | { text: string };

export interface WorkflowActionsOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger?: Logger;
  engine: JobEngine;
  authorizer: ClickAuthorizer;
}

export const STEPS: Record<JobKind, readonly StepName[]> = {
  'rotate-pat': ['create', 'set', 'test', 'finish'],
  'rotate-entra': ['create', 'set', 'test', 'finish'],
  jit: ['create', 'set', 'test', 'finish'],
  revoke: ['finish'],
  rollback: ['set', 'finish'],
  // Governance remedies (issue 13); each remedy's folder owns its line.
  'move-to-sp': ['create', 'set', 'test', 'finish'],
  'max-lifetime': ['set', 'finish'],
  'restrict-tokens': ['set', 'finish'],
  'retire-unused': ['finish'],
};

const ID = /^[A-Za-z0-9_:-]{1,128}$/;
export const idOf = (v: unknown): string | undefined => (typeof v === 'string' && ID.test(v) ? v : undefined);
export const newId = (prefix: string): string => `${prefix}-${randomBytes(6).toString('hex')}`;
export const newNonce = (): string => randomBytes(12).toString('base64url');

const VERB_WORD: Record<ApprovalAction, string> = {
  rotate: 'Rotation', revoke: 'Revoke', jit: 'JIT access', rollback: 'Rollback', 'auto-rotate': 'Auto-rotation rule',
  'move-to-sp': 'Move to a service principal', 'max-lifetime': 'Maximum token lifetime', 'restrict-tokens': 'Token creation restriction',
  'retire-unused': 'Retiring unused tokens',
};

/** Where a job reports: the clicked card's thread (from the stored alert, else from the click itself). */
export function messageOf(stored: PostedMessage | undefined, ctx: ChatContext): PostedMessage {
  if (stored?.activityId) return stored;
  return {
    conversationId: baseConversationId(ctx.conversation.conversationId), serviceUrl: ctx.conversation.serviceUrl,
    tenantId: ctx.conversation.tenantId, activityId: ctx.replyToId ?? stored?.activityId,
  };
}

/** "In progress — approved by X", "Already running — …", "Already done — …". */
export function answerFor(outcome: ApprovalOutcome, options: { authorizer: ClickAuthorizer; action: ApprovalAction; ctx: ChatContext; subject: string; pendingCard?: () => AdaptiveCard }): ActionResult {
  const word = VERB_WORD[options.action];
  switch (outcome.kind) {
    case 'started':
      return progressCardOf(outcome.job);
    case 'pending':
      return options.pendingCard ? { card: options.pendingCard() } : { text: `Your approval is recorded (${outcome.approval.approvers.length} of ${outcome.approval.required}); waiting for another approver.` };
    case 'already-voted': {
      const refusal: Refusal = { ok: false, code: 'already-approved-by-you', reason: `you already approved this (${outcome.approval.approvers.length} of ${outcome.approval.required}); a different approver must confirm` };
      options.authorizer.refuse(options, refusal);
      return { text: refusal.reason };
    }
    case 'exists': {
      const job = outcome.job;
      const by = outcome.approval.approvers.map((a) => a.name).join(' and ');
      const reason = outcome.approval.state === 'denied'
        ? `this was denied by ${by}`
        : outcome.approval.state === 'pending'
          ? `a ${outcome.approval.action} approved by ${by} is waiting for another approver on this card; confirm or let it lapse first`
        : job && ['done', 'compensated', 'failed', 'cancelled'].includes(job.state)
          ? `already done (${job.state}) — approved by ${by}`
          : `already running — approved by ${by}`;
      options.authorizer.refuse(options, { ok: false, code: 'state', reason });
      return { text: `${word}: ${reason}. Nothing more was started.` };
    }
    case 'busy': {
      const reason = outcome.jobId ? `another action on this is running (job ${outcome.jobId}); wait for its result in the thread` : 'the state changed while approving; nothing was started — look at the current card';
      options.authorizer.refuse(options, { ok: false, code: 'state', reason });
      return { text: reason };
    }
  }
}

function alertCardResult(options: WorkflowActionsOptions, alert: AlertRecord, now: number, notice?: string): ActionResult {
  return { card: renderAlertCard(alert, now, {
    ...(notice ? { notice } : {}), snoozeMaxDays: options.config.alerts.snoozeMaxDays,
    refreshUserIds: refreshUserIds(options.store, options.authorizer.directory),
    autoRotation: autoRotationText(options.store, alert.credential, now),
  }) };
}

/** The job holding the subject, while it runs (its "in progress" card is what the card shows). */
function runningJob(store: Store, subject: string): JobRecord | undefined {
  const lock = store.get<{ jobId: string }>('approvals', `active:${subject}`)?.value;
  const job = lock ? store.get<JobRecord>('jobs', lock.jobId)?.value : undefined;
  return job && !TERMINAL_STATES.includes(job.state) ? job : undefined;
}

/** The "in progress — approved by X" card of a running job: the one a losing click may safely put back. */
export function progressCardOf(job: JobRecord, options: { late?: boolean } = {}): { card: AdaptiveCard } {
  const action: ApprovalAction = job.kind === 'rotate-pat' || job.kind === 'rotate-entra' ? 'rotate' : job.kind;
  return { card: renderProgressCard({
    plan: job.plan, planHash: job.planHash, approvers: job.approvedBy, job,
    headline: `${VERB_WORD[action]} ${options.late ? 'already ' : ''}in progress — approved by ${job.approvedBy.map((a) => a.name).join(' and ')}`,
    status: 'Keywarden is working on it; the result will be posted in this thread.', color: 'Accent',
  }) };
}

/**
 * A stale card: answer with the current one (a nonce past its freshness gets a new one first). While a job acts
 * on the credential, that is its "in progress" card — never an alert card offering Rotate again, which a losing
 * click of a race would otherwise put back over the winner's.
 */
function refreshedAlert(options: WorkflowActionsOptions, alert: AlertRecord, notice: string): ActionResult {
  const now = options.clock.now();
  const running = runningJob(options.store, alert.credentialId);
  if (running) return progressCardOf(running, { late: true });
  const current = freshNonce(options.store, alert.id, now, options.config.approvals.nonceTtlMinutes * 60_000) ?? alert;
  return alertCardResult(options, current, now, notice);
}

/** The plan comes from server state and config only: nothing in the click's data chooses a parameter. */
function planForAlert(action: 'rotate' | 'revoke', alert: AlertRecord, config: KeywardenConfig): { plan: ActionPlan; kind: JobKind; blocker?: string } {
  const c = alert.credential;
  if (action === 'revoke') return { plan: planRevoke(c), kind: 'revoke', blocker: revokeBlocker(c) };
  const graceHours = config.workflows.graceHours;
  if (c.kind === 'entra-password') return { plan: planEntraRotation(c, { config, graceHours }), kind: 'rotate-entra', blocker: entraRotationBlocker(c) };
  return { plan: planPatRotation(c, { config, graceHours }), kind: 'rotate-pat', blocker: patRotationBlocker(c) };
}

/** Rotate and Revoke on an alert card. */
function alertAction(action: 'rotate' | 'revoke', options: WorkflowActionsOptions): CardAction {
  return {
    verb: action,
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const alertId = idOf(data.alertId);
      const record = alertId ? store.get<AlertRecord>('alerts', alertId) : undefined;
      if (!record) {
        authorizer.refuse({ action, ctx, subject: alertId ?? '(unknown alert)' }, { ok: false, code: 'bad-input', reason: 'the card names no alert Keywarden knows' });
        return { text: 'This card does not name an alert I know. Ask me for a fresh one with /expiring.' };
      }
      const alert = record.value;
      const now = clock.now();
      const { plan, kind, blocker } = planForAlert(action, alert, config);
      const hash = planHash(plan);
      const stateRefusal = alert.state === 'resolved'
        ? `this alert is already resolved (${alert.resolution?.text ?? 'no longer needed'})`
        : blocker;
      const justification = cleanText(data.justification);
      const overrideReason = cleanText(data.overrideReason);
      const confirmed = data.confirmed === true || data.confirmed === 'true';
      const auth = await authorizer.authorize({
        action, ctx, subject: alert.credentialId,
        card: { conversationId: alert.message?.conversationId ?? ctx.conversation.conversationId, tenantId: alert.message?.tenantId ?? '', nonce: alert.nonce, nonceIssuedAt: alert.nonceIssuedAt },
        presentedNonce: data.nonce, stateRefusal, justification, skipJustification: action === 'revoke' && !confirmed,
      });
      if (!auth.ok) return auth.refresh ? refreshedAlert(options, alert, `This card was out of date: ${auth.reason}`) : { text: `Not done: ${auth.reason}.` };

      const c = alert.credential;
      const required = requiredApprovals({
        action, scope: c.where.scope, environment: environmentOf(config, c.where.scope), lastUsedAt: c.lastUsedAt, overrideReason, now,
      }, config.approvals);
      const recent = action === 'revoke' && recentlyUsed(c.lastUsedAt, now, config.approvals.revokeRecentUseDays);
      const form = (notice?: string, approval?: ApprovalRecord): AdaptiveCard => renderApprovalForm({
        notice,
        headline: `${action === 'revoke' ? 'Revoke' : 'Rotate'} ${c.name}?`,
        facts: [
          { title: 'Where', value: c.where.label }, { title: 'Owner', value: c.owner?.name ?? 'unknown' },
          { title: 'Expires', value: formatTime(c.expiresAt) }, { title: 'Last use', value: lastUseText(c) },
          ...(approval ? [{ title: 'Approved so far', value: approval.approvers.map((a) => a.name).join(', ') }] : []),
        ],
        plan, planHash: hash,
        approvalsText: approval
          ? `${approval.approvers.length} of ${approval.required} approvals: ${required.reasons.join('; ') || 'high-risk action'} — another approver must confirm.`
          : required.required > 1 ? `Needs ${required.required} approvers: ${required.reasons.join('; ')}.` : 'One approver is enough.',
        askJustification: !approval && action === 'revoke',
        askOverride: !approval && recent,
        confirmTitle: approval ? 'Confirm (second approver)' : action === 'revoke' ? 'Revoke' : 'Rotate',
        confirmVerb: approval ? 'confirm' : action,
        confirmData: approval ? { approvalId: approval.id, nonce: approval.nonce } : { alertId: alert.id, nonce: alert.nonce, confirmed: true },
        cancelData: { alertId: alert.id, nonce: alert.nonce },
      });
      if (action === 'revoke' && !confirmed) return { card: form() };

      const approver = { ...auth.approver, at: now, ...(justification ? { justification } : {}) };
      const outcome = recordApproval(store, {
        id: `alert:${alert.id}:${alert.nonce}`, action, subject: alert.credentialId, scope: c.where.scope, nonce: alert.nonce,
        required: required.required, approver, plan, planHash: hash, jobKind: kind, steps: STEPS[kind], jobId: newId(kind === 'revoke' ? 'rev' : 'rot'),
        alertId: alert.id, justification, overrideReason, message: messageOf(alert.message, ctx), now,
      });
      auditDecision(options, outcome, ctx, { action, targets: { credentialId: c.id, nativeId: c.nativeId, scope: c.where.scope }, requiredReasons: required.reasons });
      if (outcome.kind === 'started') {
        setAlertProgress(store, alert.id, `${VERB_WORD[action]} started by ${auth.approver.name} at ${formatTime(now)} (job ${outcome.job.id})`, now, { jobId: outcome.job.id, shownByClick: true });
        options.engine.kick(outcome.job.id);
      }
      return answerFor(outcome, { authorizer, action, ctx, subject: alert.credentialId, pendingCard: () => form(undefined, outcome.kind === 'pending' ? outcome.approval : undefined) });
    },
  };
}

/** Audit of what was decided: approvals granted or recorded (refusals are audited by the authorizer). */
export function auditDecision(options: Pick<WorkflowActionsOptions, 'store'>, outcome: ApprovalOutcome, ctx: ChatContext, extra: { action: ApprovalAction; targets: Record<string, unknown>; requiredReasons?: string[] }): void {
  if (outcome.kind !== 'started' && outcome.kind !== 'pending') return;
  const a = outcome.approval;
  options.store.appendAudit({
    action: outcome.kind === 'started' ? 'approval.granted' : 'approval.recorded',
    actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name },
    subject: a.subject,
    result: 'ok',
    details: {
      verb: extra.action, approvalId: a.id, planHash: a.planHash, plan: a.plan.operations,
      approvers: a.approvers.map((v) => ({ aadObjectId: v.aadObjectId, name: v.name })), required: a.required,
      reasons: extra.requiredReasons, justification: a.justification ?? a.approvers.find((v) => v.justification)?.justification,
      overrideReason: a.overrideReason, requestedBy: a.requestedBy, targets: extra.targets,
      jobId: outcome.kind === 'started' ? outcome.job.id : undefined, before: a.plan.facts,
    },
  });
}

/** Second (Nth) approver of a high-risk action. */
function confirmAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'confirm',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, authorizer } = options;
      const approvalId = idOf(data.approvalId);
      const existing = approvalId ? store.get<ApprovalRecord>('approvals', approvalId)?.value : undefined;
      if (!existing) {
        authorizer.refuse({ action: 'rotate', ctx, subject: approvalId ?? '(unknown approval)' }, { ok: false, code: 'bad-input', reason: 'the card names no approval Keywarden knows' });
        return { text: 'This card does not name an approval I know.' };
      }
      const now = clock.now();
      const auth = await authorizer.authorize({
        action: existing.action, ctx, subject: existing.subject,
        card: { conversationId: existing.message?.conversationId ?? ctx.conversation.conversationId, tenantId: existing.message?.tenantId ?? '', nonce: existing.nonce, nonceIssuedAt: existing.createdAt },
        presentedNonce: data.nonce, requestedBy: existing.requestedBy?.aadObjectId, skipJustification: true,
        stateRefusal: existing.state === 'denied' ? 'this request was denied' : undefined,
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      const kind = (existing.plan.kind);
      const outcome = recordApproval(store, {
        id: existing.id, action: existing.action, subject: existing.subject, scope: existing.scope, nonce: existing.nonce,
        required: existing.required, approver: { ...auth.approver, at: now }, plan: existing.plan, planHash: existing.planHash,
        jobKind: kind, steps: STEPS[kind], jobId: newId('job'), alertId: existing.alertId, requestId: existing.requestId,
        requestedBy: existing.requestedBy, message: existing.message, now,
      });
      auditDecision(options, outcome, ctx, { action: existing.action, targets: { subject: existing.subject } });
      if (outcome.kind === 'started') {
        if (existing.alertId) setAlertProgress(store, existing.alertId, `${VERB_WORD[existing.action]} started by ${outcome.job.approvedBy.map((a) => a.name).join(' and ')} at ${formatTime(now)} (job ${outcome.job.id})`, now, { jobId: outcome.job.id, shownByClick: true });
        options.engine.kick(outcome.job.id);
      }
      return answerFor(outcome, { authorizer, action: existing.action, ctx, subject: existing.subject });
    },
  };
}

/** "Back" on an approval form: the alert card as it is now (no state change). */
function cancelAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'cancelAction',
    async handle(data): Promise<ActionResult> {
      const alertId = idOf(data.alertId);
      const alert = alertId ? options.store.get<AlertRecord>('alerts', alertId)?.value : undefined;
      if (!alert) return { text: 'This card does not name an alert I know.' };
      return alertCardResult(options, alert, options.clock.now());
    },
  };
}

/** Rollback during a rotation's grace window (button posted in the rotation's thread). */
function rollbackAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'rollback',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer, engine } = options;
      const jobId = idOf(data.jobId);
      const offerRec = jobId ? store.get<ActionOffer>('approvals', `offer:${jobId}`) : undefined;
      const rotation = jobId ? store.get<JobRecord>('jobs', jobId)?.value : undefined;
      if (!offerRec || !rotation || offerRec.value.kind !== 'rollback') {
        authorizer.refuse({ action: 'rollback', ctx, subject: jobId ?? '(unknown job)' }, { ok: false, code: 'bad-input', reason: 'no rollback is offered for this job' });
        return { text: 'There is no rollback offered for this card (the rotation ended or never existed).' };
      }
      const offer = offerRec.value;
      const now = clock.now();
      const plan = planRollback(rotation);
      const hash = planHash(plan);
      const auth = await authorizer.authorize({
        action: 'rollback', ctx, subject: rotation.subject,
        card: { conversationId: offer.conversationId, tenantId: offer.tenantId, nonce: offer.nonce, nonceIssuedAt: offer.nonceIssuedAt },
        presentedNonce: data.nonce, stateRefusal: rollbackBlocker(rotation),
      });
      if (!auth.ok) {
        if (!auth.refresh) return { text: `Not done: ${auth.reason}.` };
        const fresh = { ...offer, nonce: newNonce(), nonceIssuedAt: now };
        const saved = store.compareAndSet('approvals', offerRec.id, offerRec.version, fresh) ? fresh : offer;
        return { card: rollbackOfferCard(rotation, saved.nonce, refreshUserIds(store, authorizer.directory), 'This card was out of date', auth.reason) };
      }
      const required = requiredApprovals({ action: 'rollback', scope: String(rotation.plan.facts.workspace ?? rotation.plan.facts.appId ?? ''), now }, config.approvals);
      const outcome = recordApproval(store, {
        id: `rollback:${rotation.id}:${offer.nonce}`, action: 'rollback', subject: rotation.subject, scope: String(rotation.plan.facts.workspace ?? ''),
        nonce: offer.nonce, required: required.required, approver: { ...auth.approver, at: now }, plan, planHash: hash,
        jobKind: 'rollback', steps: STEPS.rollback, jobId: newId('rbk'), alertId: rotation.alertId,
        message: rotation.message ?? messageOf(undefined, ctx), now,
        // The rotation must stop waiting to revoke the old credential before the rollback may start.
        onApproved: () => engine.cancelWaiting(rotation.id, `rolled back by ${auth.approver.name}`) !== undefined,
      });
      auditDecision(options, outcome, ctx, { action: 'rollback', targets: { rotationJobId: rotation.id, ...plan.facts } });
      if (outcome.kind === 'started') engine.kick(outcome.job.id);
      return answerFor(outcome, { authorizer, action: 'rollback', ctx, subject: rotation.subject });
    },
  };
}

/**
 * Universal Actions refresh of the Rollback card (a view): an approver who opens it gets a nonce with at least half
 * its life left, so Rollback hours into the grace window takes one click. Once the rotation cannot be rolled back
 * (the old credential is revoked), the card comes back without the button.
 */
function refreshOfferAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'refreshOffer',
    view: true,
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const jobId = idOf(data.jobId);
      const rotation = jobId ? store.get<JobRecord>('jobs', jobId)?.value : undefined;
      if (!rotation) return { text: 'This card names no job I know.' };
      const offerRec = store.get<ActionOffer>('approvals', `offer:${rotation.id}`);
      const blocker = rollbackBlocker(rotation);
      if (!offerRec || offerRec.value.kind !== 'rollback' || blocker) {
        return { card: renderProgressCard({
          plan: rotation.plan, planHash: rotation.planHash, approvers: rotation.approvedBy, job: rotation,
          headline: rotation.state === 'done' ? 'Rotated — grace window over' : `Rotation ${rotation.state}`, status: `Rollback is no longer offered: ${blocker ?? 'the offer ended'}.`,
        }) };
      }
      let offer = offerRec.value;
      const now = clock.now();
      const tenant = ctx.actor.tenantId ?? ctx.conversation.tenantId;
      const mayAct = Boolean(ctx.actor.aadObjectId) && Boolean(tenant) && (!offer.tenantId || offer.tenantId === tenant)
        && (await authorizer.directory.isApprover(ctx.actor.aadObjectId!)) === true;
      if (mayAct && now - offer.nonceIssuedAt > (config.approvals.nonceTtlMinutes * 60_000) / 2) {
        const fresh = { ...offer, nonce: newNonce(), nonceIssuedAt: now };
        offer = store.compareAndSet('approvals', offerRec.id, offerRec.version, fresh) ? fresh : store.get<ActionOffer>('approvals', offerRec.id)?.value ?? offer;
      }
      return { card: rollbackOfferCard(rotation, offer.nonce, refreshUserIds(store, authorizer.directory)) };
    },
  };
}

export function workflowCardActions(options: WorkflowActionsOptions): CardAction[] {
  return [alertAction('rotate', options), alertAction('revoke', options), confirmAction(options), cancelAction(options), rollbackAction(options), refreshOfferAction(options)];
}
