/**
 * JIT card verbs: Approve / Deny a `/jit` request (requester ≠ approver, justification required), and ask for an
 * extension, which needs a new approval and stays within config.workflows.jit.maxHours.
 */
import { recordApproval } from '../../approvals/record.js';
import { cleanText, requiredApprovals } from '../../approvals/rules.js';
import type { ActionOffer, JitRequestRecord } from '../../approvals/types.js';
import { HOUR_MS } from '../../clock.js';
import type { CardAction } from '../../domain/chat.js';
import { answerFor, auditDecision, idOf, messageOf, newId, newNonce, STEPS, type ActionResult, type WorkflowActionsOptions } from '../actions.js';
import { renderJitRequestCard } from '../cards.js';
import { extendedExpiry, planJit } from './jit.js';
import { formatTime, planHash } from '../../domain/plan.js';
import type { JobRecord } from '../../domain/job.js';

export const jitRequestKey = (requestId: string) => `jitreq:${requestId}`;

function load(options: WorkflowActionsOptions, requestId: string | undefined) {
  return requestId ? options.store.get<JitRequestRecord>('approvals', jitRequestKey(requestId)) : undefined;
}

function planOf(options: WorkflowActionsOptions, req: JitRequestRecord, expiresAt: number) {
  return planJit({
    requestId: req.requestId, workspace: req.workspace, hours: req.hours, nodeType: req.nodeType, maxCapacity: req.maxCapacity,
    ...(req.secrets ? { secrets: req.secrets } : {}), ...(req.pipeline ? { pipeline: req.pipeline } : {}),
  }, { config: options.config, expiresAt });
}

/** The request card as it should look now (with a fresh nonce when the old one went stale). */
export function jitRequestCardFor(options: WorkflowActionsOptions, req: JitRequestRecord, notice?: string): ActionResult {
  const now = options.clock.now();
  const open = req.state === 'requested' || (req.state === 'active' && Boolean(req.pendingExtension));
  const status = req.state === 'requested' ? 'Waiting for an approver (not the requester).'
    : req.pendingExtension ? `Extension of ${req.pendingExtension.hours} h asked by ${req.pendingExtension.by.name}: waiting for an approver.`
      : `This request is ${req.state}.`;
  return { card: renderJitRequestCard(req, planOf(options, req, now + req.hours * HOUR_MS), { notice, statusText: status, open, now }) };
}

function refreshRequest(options: WorkflowActionsOptions, requestId: string, notice: string): ActionResult {
  const rec = load(options, requestId);
  if (!rec) return { text: notice };
  const fresh = { ...rec.value, nonce: newNonce(), nonceIssuedAt: options.clock.now() };
  const saved = options.store.compareAndSet('approvals', rec.id, rec.version, fresh)?.value ?? rec.value;
  return jitRequestCardFor(options, saved, notice);
}

function approveAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'jitApprove',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer, engine } = options;
      const rec = load(options, idOf(data.requestId));
      if (!rec) {
        authorizer.refuse({ action: 'jit', ctx, subject: String(data.requestId ?? '(unknown request)').slice(0, 64) }, { ok: false, code: 'bad-input', reason: 'the card names no JIT request Keywarden knows' });
        return { text: 'This card does not name a JIT request I know.' };
      }
      const req = rec.value;
      const now = clock.now();
      const extension = req.state === 'active' ? req.pendingExtension : undefined;
      const stateRefusal = req.state === 'requested' || extension ? undefined : `this request is ${req.state}${req.state === 'active' ? ' and no extension is waiting' : ''}`;
      const justification = req.justification ?? cleanText(data.justification);
      const auth = await authorizer.authorize({
        action: 'jit', ctx, subject: `jit:${req.requestId}`,
        card: { conversationId: req.conversation.conversationId, tenantId: req.conversation.tenantId, nonce: req.nonce, nonceIssuedAt: req.nonceIssuedAt },
        presentedNonce: data.nonce, stateRefusal, requestedBy: extension ? extension.by.aadObjectId : req.requestedBy.aadObjectId, justification,
      });
      if (!auth.ok) return auth.refresh ? refreshRequest(options, req.requestId, `This card was out of date: ${auth.reason}`) : { text: `Not done: ${auth.reason}.` };
      if (extension && req.jobId) return approveExtension(options, rec.id, rec.version, req, extension.hours, auth.approver, ctx);

      const expiresAt = now + req.hours * HOUR_MS;
      const plan = planOf(options, req, expiresAt);
      const hash = planHash(plan);
      const required = requiredApprovals({ action: 'jit', scope: req.workspace, now }, config.approvals);
      const message = messageOf(req.message, ctx);
      const outcome = recordApproval(store, {
        id: `jit:${req.requestId}:${req.nonce}`, action: 'jit', subject: `jit:${req.requestId}`, scope: req.workspace, nonce: req.nonce,
        required: required.required, approver: { ...auth.approver, at: now, justification }, plan, planHash: hash,
        jobKind: 'jit', steps: STEPS.jit, jobId: newId('jit'), requestId: req.requestId, requestedBy: { aadObjectId: req.requestedBy.aadObjectId, name: req.requestedBy.name },
        justification, message, now,
        onApproved: (job) => Boolean(store.compareAndSet<JitRequestRecord>('approvals', rec.id, rec.version, {
          ...req, state: 'active', jobId: job.id, justification, nonce: newNonce(), nonceIssuedAt: now, message,
        })),
      });
      auditDecision(options, outcome, ctx, { action: 'jit', targets: { requestId: req.requestId, workspace: req.workspace, hours: req.hours, nodeType: req.nodeType, maxCapacity: req.maxCapacity }, requiredReasons: required.reasons });
      if (outcome.kind === 'started') engine.kick(outcome.job.id);
      return answerFor(outcome, { authorizer, action: 'jit', ctx, subject: `jit:${req.requestId}` });
    },
  };
}

/** An approved extension re-opens the parked JIT job: a new token generation with the later expiry. */
function approveExtension(options: WorkflowActionsOptions, recId: string, version: number, req: JitRequestRecord, hours: number, approver: { aadObjectId: string; name: string }, ctx: Parameters<CardAction['handle']>[1]): ActionResult {
  const { store, clock, config, engine, authorizer } = options;
  const now = clock.now();
  const job = store.get<JobRecord>('jobs', req.jobId!)?.value;
  if (!job) return { text: 'The JIT job of this request is gone; request again with /jit.' };
  const next = extendedExpiry(job, hours, config.workflows.jit.maxHours);
  if ('refusal' in next) {
    authorizer.refuse({ action: 'jit', ctx, subject: `jit:${req.requestId}` }, { ok: false, code: 'state', reason: next.refusal });
    return { text: `Not done: ${next.refusal}.` };
  }
  const extended = store.transaction(() => {
    const changed = engine.changeWaiting(job.id, (j) => {
      if (j.steps.find((s) => s.name === 'finish')?.status === 'done') return undefined;
      const generation = (typeof j.facts.generation === 'number' ? j.facts.generation : 0) + 1;
      return {
        ...j, state: 'waiting', dueAt: undefined, waitingFor: `extension approved by ${approver.name}`,
        facts: { ...j.facts, generation, expiresAt: next.expiresAt, previousTokenId: j.facts.tokenId ?? null },
        steps: j.steps.map((s) => (s.name === 'finish' ? s : { ...s, status: 'pending' })),
        approvedBy: [...j.approvedBy, approver],
      };
    });
    if (!changed) return undefined;
    const { pendingExtension: _p, ...rest } = req;
    store.compareAndSet<JitRequestRecord>('approvals', recId, version, { ...rest, extensions: [...req.extensions, hours], nonce: newNonce(), nonceIssuedAt: now });
    return changed;
  });
  if (!extended) {
    authorizer.refuse({ action: 'jit', ctx, subject: `jit:${req.requestId}` }, { ok: false, code: 'state', reason: 'the JIT job is busy or already torn down' });
    return { text: 'Not done: the JIT access is being changed or already ended; look at the thread.' };
  }
  store.appendAudit({
    action: 'approval.granted', actor: approver, subject: `jit:${req.requestId}`, result: 'ok',
    details: { verb: 'jit-extend', hours, expiresAt: next.expiresAt, jobId: job.id, requestedBy: req.pendingExtension?.by, planHash: job.planHash },
  });
  engine.kick(job.id);
  return { text: `Extension approved by ${approver.name}: the access now ends at ${formatTime(next.expiresAt)} (a new token replaces the current one in the same Key Vault secret).` };
}

function denyAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'jitDeny',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, authorizer } = options;
      const rec = load(options, idOf(data.requestId));
      if (!rec) {
        authorizer.refuse({ action: 'jit', ctx, subject: String(data.requestId ?? '(unknown request)').slice(0, 64) }, { ok: false, code: 'bad-input', reason: 'the card names no JIT request Keywarden knows' });
        return { text: 'This card does not name a JIT request I know.' };
      }
      const req = rec.value;
      const open = req.state === 'requested' || (req.state === 'active' && req.pendingExtension);
      const auth = await authorizer.authorize({
        action: 'jit', ctx, subject: `jit:${req.requestId}`, skipJustification: true,
        card: { conversationId: req.conversation.conversationId, tenantId: req.conversation.tenantId, nonce: req.nonce, nonceIssuedAt: req.nonceIssuedAt },
        presentedNonce: data.nonce, stateRefusal: open ? undefined : `this request is ${req.state}`,
      });
      if (!auth.ok) return auth.refresh ? refreshRequest(options, req.requestId, `This card was out of date: ${auth.reason}`) : { text: `Not done: ${auth.reason}.` };
      const { pendingExtension: _p, ...rest } = req;
      const denyReason = cleanText(data.justification);
      const next: JitRequestRecord = req.state === 'requested'
        ? { ...req, state: 'denied', nonce: newNonce(), deniedBy: auth.approver, ...(denyReason ? { denyReason } : {}) }
        : { ...rest, nonce: newNonce() };
      if (!store.compareAndSet('approvals', rec.id, rec.version, next)) return { text: 'Someone acted on this request a moment ago; look at the card again.' };
      store.appendAudit({
        action: 'approval.denied', actor: auth.approver, subject: `jit:${req.requestId}`, result: 'ok',
        details: { verb: req.state === 'requested' ? 'jit' : 'jit-extend', requestedBy: req.requestedBy, at: clock.now() },
      });
      return jitRequestCardFor(options, next, `Denied by ${auth.approver.name}.`);
    },
  };
}

/** "Request extension" on the JIT-ready card: records the ask and shows an approval card (not an approval itself). */
function extendAction(options: WorkflowActionsOptions): CardAction {
  return {
    verb: 'jitExtend',
    async handle(data, ctx): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const jobId = idOf(data.jobId);
      const offer = jobId ? store.get<ActionOffer>('approvals', `offer:${jobId}`)?.value : undefined;
      const job = jobId ? store.get<JobRecord>('jobs', jobId)?.value : undefined;
      const rec = job ? load(options, String(job.plan.facts.requestId)) : undefined;
      if (!offer || !job || !rec || offer.kind !== 'extend') {
        authorizer.refuse({ action: 'jit', ctx, subject: jobId ?? '(unknown job)' }, { ok: false, code: 'bad-input', reason: 'no extension is offered for this job' });
        return { text: 'There is no extension offered for this card.' };
      }
      const hours = Number(data.hours);
      if (!Number.isFinite(hours) || hours <= 0 || hours > config.workflows.jit.maxHours) {
        authorizer.refuse({ action: 'jit', ctx, subject: job.subject }, { ok: false, code: 'bad-input', reason: `extension of "${String(data.hours).slice(0, 20)}" hours is not between 1 and ${config.workflows.jit.maxHours}` });
        return { text: `Give the extension in hours, between 1 and ${config.workflows.jit.maxHours}.` };
      }
      const auth = await authorizer.authorize({
        action: 'jit', ctx, subject: job.subject, memberOnly: true,
        card: { conversationId: offer.conversationId, tenantId: offer.tenantId, nonce: offer.nonce, nonceIssuedAt: offer.nonceIssuedAt },
        presentedNonce: data.nonce, stateRefusal: job.state === 'waiting' && rec.value.state === 'active' ? undefined : 'this JIT access already ended',
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      const check = extendedExpiry(job, hours, config.workflows.jit.maxHours);
      if ('refusal' in check) {
        authorizer.refuse({ action: 'jit', ctx, subject: job.subject }, { ok: false, code: 'state', reason: check.refusal });
        return { text: `Not asked: ${check.refusal}.` };
      }
      const by = { aadObjectId: ctx.actor.aadObjectId!, name: ctx.actor.name };
      const next: JitRequestRecord = { ...rec.value, pendingExtension: { hours, by, at: clock.now() }, nonce: newNonce(), nonceIssuedAt: clock.now() };
      if (!store.compareAndSet('approvals', rec.id, rec.version, next)) return { text: 'Someone acted on this request a moment ago; try again.' };
      store.appendAudit({ action: 'jit.extension.requested', actor: by, subject: job.subject, result: 'info', details: { hours, jobId: job.id } });
      return jitRequestCardFor(options, next);
    },
  };
}

export function jitCardActions(options: WorkflowActionsOptions): CardAction[] {
  return [approveAction(options), denyAction(options), extendAction(options)];
}
