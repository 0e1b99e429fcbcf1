/**
 * The Enforce-max-lifetime and Restrict-token-creation verbs. A button carries only `{ offerId, nonce }`; everything
 * else comes from the stored offer and fresh reads of the workspace. First click: the plan card (exact operations,
 * who and what is affected). "Approve" on it: the same approval path as a rotation (recordApproval, N-of-M through
 * the confirm verb, requester ≠ approver), then the journaled job reports in the plan card's thread.
 */
import { environmentOf } from '../../alerts/routing.js';
import { recordApproval } from '../../approvals/record.js';
import { readRemedyOffer, createRemedyOffer, type RemedyOffer } from '../../approvals/remedy-offers.js';
import { requiredApprovals } from '../../approvals/rules.js';
import type { ApprovalRecord } from '../../approvals/types.js';
import type { AdaptiveCard, CardAction, ChatContext } from '../../domain/chat.js';
import { describeDrift, planHash, type ActionPlan } from '../../domain/plan.js';
import { STEPS, answerFor, auditDecision, messageOf, newId, type ActionResult, type WorkflowActionsOptions } from '../actions.js';
import { renderApprovalForm } from '../cards.js';
import type { WorkflowProviders } from '../engine/providers.js';
import { errorText } from '../engine/errors.js';
import { parseAclText } from './acl.js';
import { planMaxLifetime, type BuiltPlan } from './plan-max-lifetime.js';
import { allowListOf, planRestrictTokens } from './plan-restrict.js';

export type WorkspaceRemedy = 'max-lifetime' | 'restrict-tokens';
export const REMEDY_VERB: Record<WorkspaceRemedy, string> = { 'max-lifetime': 'enforceMaxLifetime', 'restrict-tokens': 'restrictTokenCreation' };

export interface RemedyActionsOptions extends WorkflowActionsOptions {
  providers: WorkflowProviders;
}

/** Where the plan shown for an offer is kept, so "Approve" runs exactly what was shown (or says what changed). */
const shownKey = (offerId: string) => `remedy-plan:${offerId}`;

/** Builds the plan an offer stands for, from fresh reads (the offer's parameters were chosen by Keywarden, not a click). */
export async function planForOffer(options: RemedyActionsOptions, offer: RemedyOffer, signal?: AbortSignal): Promise<BuiltPlan> {
  const { config, store, clock, providers } = options;
  const base = { workspace: offer.subject, providers, store, now: clock.now(), signal, ...(typeof offer.parameters.rollbackOf === 'string' ? { rollbackOf: offer.parameters.rollbackOf } : {}) };
  if (offer.remedy === 'max-lifetime') {
    const days = typeof offer.parameters.days === 'number' ? offer.parameters.days : config.governance.workspaceControls.maxLifetimeDays;
    return planMaxLifetime({ ...base, days });
  }
  const target = typeof offer.parameters.restoreAcl === 'string' ? parseAclText(offer.parameters.restoreAcl) : allowListOf(config, offer.subject);
  if (!target) throw new Error(`no token allow-list is configured for ${offer.subject} — add governance.workspaceControls.tokenAllowList for it`);
  return planRestrictTokens({ ...base, target });
}

/** The requester of a restriction (who ran the command) may not approve it; Keywarden-made offers have none. */
function requesterOf(offer: RemedyOffer) {
  return offer.remedy === 'restrict-tokens' && offer.offeredBy?.aadObjectId ? { aadObjectId: offer.offeredBy.aadObjectId, name: offer.offeredBy.name } : undefined;
}

export function remedyPlanCard(options: RemedyActionsOptions, offer: RemedyOffer, built: BuiltPlan, notice?: string, approval?: ApprovalRecord): AdaptiveCard {
  const hash = planHash(built.plan);
  options.store.put('approvals', shownKey(offer.id), { plan: built.plan, planHash: hash });
  const required = requiredApprovals({ action: offer.remedy as WorkspaceRemedy, scope: offer.scope, environment: environmentOf(options.config, offer.scope), now: options.clock.now() }, options.config.approvals);
  const requester = requesterOf(offer);
  return renderApprovalForm({
    notice: notice ?? (built.blocker ? `Nothing to approve: ${built.blocker}.` : undefined),
    headline: built.plan.title + '?',
    facts: [...built.facts, ...(approval ? [{ title: 'Approved so far', value: approval.approvers.map((a) => a.name).join(', ') }] : []), ...(requester ? [{ title: 'Requested by', value: `${requester.name} (may not approve it)` }] : [])],
    plan: built.plan, planHash: hash,
    approvalsText: approval
      ? `${approval.approvers.length} of ${approval.required} approvals — another approver must confirm.`
      : required.required > 1 ? `Needs ${required.required} approvers: ${required.reasons.join('; ')}.` : 'One approver is enough.',
    askJustification: false, askOverride: false,
    confirmTitle: approval ? 'Confirm (another approver)' : 'Approve',
    confirmVerb: approval ? 'confirm' : REMEDY_VERB[offer.remedy as WorkspaceRemedy],
    confirmData: approval ? { approvalId: approval.id, nonce: approval.nonce } : { offerId: offer.id, nonce: offer.nonce, confirmed: true },
  });
}

/** A fresh offer like this one (its nonce lapsed): same remedy, subject and parameters. */
function renewOffer(options: RemedyActionsOptions, offer: RemedyOffer): RemedyOffer {
  return createRemedyOffer(options.store, options.clock, { remedy: offer.remedy, subject: offer.subject, scope: offer.scope, parameters: offer.parameters, ...(offer.offeredBy ? { offeredBy: offer.offeredBy } : {}) });
}

function remedyAction(remedy: WorkspaceRemedy, options: RemedyActionsOptions): CardAction {
  const verb = REMEDY_VERB[remedy];
  return {
    verb,
    async handle(data, ctx: ChatContext): Promise<ActionResult> {
      const { store, clock, config, authorizer, engine } = options;
      const offer = readRemedyOffer(store, data.offerId);
      if (!offer || offer.remedy !== remedy) {
        authorizer.refuse({ action: remedy, ctx, subject: String(offer?.subject ?? '(unknown offer)') }, { ok: false, code: 'bad-input', reason: 'the button names no offer Keywarden knows' });
        return { text: `This button names nothing I know. Ask again with /${remedy} <workspace>.` };
      }
      const confirmed = data.confirmed === true || data.confirmed === 'true';
      let built: BuiltPlan;
      try {
        built = await planForOffer(options, offer, AbortSignal.timeout(20_000));
      } catch (err) {
        return { text: `Could not plan this for ${offer.subject}: ${errorText(err)}.` };
      }
      const hash = planHash(built.plan);
      const requester = requesterOf(offer);
      const auth = await authorizer.authorize({
        action: remedy, ctx, subject: offer.subject,
        card: { conversationId: ctx.conversation.conversationId, tenantId: '', nonce: offer.nonce, nonceIssuedAt: offer.nonceIssuedAt },
        presentedNonce: data.nonce, skipJustification: true,
        stateRefusal: confirmed ? built.blocker : undefined,
        ...(confirmed && requester ? { requestedBy: requester.aadObjectId } : {}),
      });
      if (!auth.ok) {
        if (!auth.refresh) return { text: `Not done: ${auth.reason}.` };
        return { card: remedyPlanCard(options, renewOffer(options, offer), built, `This card was out of date: ${auth.reason}`) };
      }
      if (!confirmed) return { card: remedyPlanCard(options, offer, built) };

      // Approve runs the plan that was shown; if the workspace moved since, show the new plan and say what changed.
      const shown = store.get<{ plan: ActionPlan; planHash: string }>('approvals', shownKey(offer.id))?.value;
      if (!shown || shown.planHash !== hash) {
        const changes = shown ? describeDrift(shown.plan.facts, built.plan.facts) : [];
        return { card: remedyPlanCard(options, renewOffer(options, offer), built, `The plan changed since it was shown${changes.length ? `: ${changes.join('; ')}` : ''} — check the new one and approve again.`) };
      }
      const now = clock.now();
      const required = requiredApprovals({ action: remedy, scope: offer.scope, environment: environmentOf(config, offer.scope), now }, config.approvals);
      const outcome = recordApproval(store, {
        id: `remedy-approval:${offer.id}:${offer.nonce}`, action: remedy, subject: built.plan.subject, scope: offer.scope, nonce: offer.nonce,
        required: required.required, approver: { ...auth.approver, at: now }, plan: built.plan, planHash: hash,
        jobKind: remedy, steps: STEPS[remedy], jobId: newId(remedy === 'max-lifetime' ? 'mxl' : 'rst'),
        ...(requester ? { requestedBy: requester } : {}), message: messageOf(undefined, ctx), now,
      });
      auditDecision(options, outcome, ctx, { action: remedy, targets: { workspace: offer.subject, offerId: offer.id, ...built.plan.parameters }, requiredReasons: required.reasons });
      if (outcome.kind === 'started') engine.kick(outcome.job.id);
      return answerFor(outcome, {
        authorizer, action: remedy, ctx, subject: built.plan.subject,
        pendingCard: () => remedyPlanCard(options, offer, built, undefined, outcome.kind === 'pending' ? outcome.approval : undefined),
      });
    },
  };
}

export function workspaceControlActions(options: RemedyActionsOptions): CardAction[] {
  return [remedyAction('max-lifetime', options), remedyAction('restrict-tokens', options)];
}
