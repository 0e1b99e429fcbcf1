/**
 * The "Move to a service principal" verb. The button sits on a credential's alert card ({ alertId, nonce }) or on
 * an offer made by /move-to-sp or the governance report ({ offerId, nonce }). First click: the plan card (exact
 * operations, plan hash, approvals needed) or the refusal with its reason; Approve on the plan card: the approval is
 * recorded the way Rotate's is (N-of-M through the shared Confirm verb) and the journaled job starts.
 */
import { setAlertProgress } from '../../alerts/lifecycle.js';
import { environmentOf } from '../../alerts/routing.js';
import type { AlertPointer, AlertRecord } from '../../alerts/types.js';
import { recordApproval } from '../../approvals/record.js';
import { readRemedyOffer, type RemedyOffer } from '../../approvals/remedy-offers.js';
import { requiredApprovals } from '../../approvals/rules.js';
import type { ApprovalRecord } from '../../approvals/types.js';
import type { AdaptiveCard, CardAction, ChatContext } from '../../domain/chat.js';
import type { Credential } from '../../domain/credential.js';
import { formatTime, planHash, type ActionPlan } from '../../domain/plan.js';
import { errorText } from '../engine/errors.js';
import type { WorkflowProviders } from '../engine/providers.js';
import { STEPS, answerFor, auditDecision, idOf, messageOf, newId, type ActionResult, type WorkflowActionsOptions } from '../actions.js';
import { renderApprovalForm } from '../cards.js';
import { moveBlocker, planMoveToSp, spNotReady, targetFor } from './plan.js';

export const MOVE_VERB = 'moveToServicePrincipal';

export interface MoveToSpOptions extends WorkflowActionsOptions {
  providers: WorkflowProviders;
  /** The credential as the latest scan saw it (for offers whose credential has no alert card). */
  scannedCredential(credentialId: string): Promise<Credential | undefined>;
}

/** What the button was rendered for: an alert card or a stored offer. */
interface Source {
  credential: Credential;
  alert?: AlertRecord;
  offer?: RemedyOffer;
  key: string;
  nonce: string;
  nonceIssuedAt: number;
  conversationId?: string;
  tenantId: string;
  /** Card data for Approve / Back (ids and nonce only). */
  data: Record<string, unknown>;
}

export type MoveCheck = { ok: true; plan: ActionPlan; hash: string } | { ok: false; reason: string };

/** Everything that can refuse a move before a plan is approvable: config, the token, the secret, the SP in the workspace. */
export async function checkMove(options: MoveToSpOptions, credential: Credential): Promise<MoveCheck> {
  const blocker = moveBlocker(credential, options.config);
  if (blocker) return { ok: false, reason: blocker };
  const sp = targetFor(options.config, credential.where.scope)!;
  let notReady: string | undefined;
  try {
    notReady = await spNotReady(options.providers.databricks(credential.where.scope), sp, AbortSignal.timeout(8_000));
  } catch (err) {
    return { ok: false, reason: `Keywarden could not check ${sp.name} in ${credential.where.scope}: ${errorText(err)} — try again in a minute` };
  }
  if (notReady) return { ok: false, reason: notReady };
  const plan = planMoveToSp(credential, { config: options.config, sp });
  return { ok: true, plan, hash: planHash(plan) };
}

/** The plan card: what happens, to whom, the hash, how many approvers, and Approve (or Confirm for the next approver). */
export function movePlanCard(input: {
  options: WorkflowActionsOptions; credential: Credential; plan: ActionPlan; hash: string; confirmData: Record<string, unknown>;
  cancelData?: Record<string, unknown>; approval?: ApprovalRecord; requestedBy?: string; notice?: string;
}): AdaptiveCard {
  const { options, credential: c, plan, approval } = input;
  const required = requiredApprovals({ action: 'move-to-sp', scope: c.where.scope, environment: environmentOf(options.config, c.where.scope), now: options.clock.now() }, options.config.approvals);
  const held = c.heldIn[0];
  const needs = required.required > 1 ? `Needs ${required.required} approvers: ${required.reasons.join('; ')}.` : 'One approver is enough.';
  return renderApprovalForm({
    notice: input.notice,
    headline: `Move ${c.name} to service principal ${String(plan.facts.newOwnerName)}?`,
    facts: [
      { title: 'Where', value: c.where.label }, { title: 'Token of', value: c.owner?.name ?? 'unknown' },
      { title: 'Pipeline secret', value: held ? `${held.vault}/${held.name}` : '—' },
      { title: 'Service principal', value: `${String(plan.facts.newOwnerName)} (${String(plan.facts.newOwnerApplicationId)})` },
      { title: 'Expires', value: formatTime(c.expiresAt) },
      ...(input.requestedBy ? [{ title: 'Requested by', value: input.requestedBy }] : []),
      ...(approval ? [{ title: 'Approved so far', value: approval.approvers.map((a) => a.name).join(', ') }] : []),
    ],
    plan, planHash: input.hash,
    approvalsText: approval
      ? `${approval.approvers.length} of ${approval.required} approvals: ${required.reasons.join('; ') || 'high-risk action'} — another approver must confirm.`
      : `${needs}${input.requestedBy ? ` The requester cannot approve.` : ''}`,
    askJustification: false, askOverride: false,
    confirmTitle: approval ? 'Confirm (second approver)' : 'Approve move',
    confirmVerb: approval ? 'confirm' : MOVE_VERB,
    confirmData: approval ? { approvalId: approval.id, nonce: approval.nonce } : input.confirmData,
    cancelData: approval ? undefined : input.cancelData,
  });
}

async function sourceOf(options: MoveToSpOptions, data: Record<string, unknown>): Promise<Source | undefined> {
  const { store } = options;
  const alertId = idOf(data.alertId);
  if (alertId) {
    const alert = store.get<AlertRecord>('alerts', alertId)?.value;
    if (!alert) return undefined;
    return {
      credential: alert.credential, alert, key: `alert:${alert.id}`, nonce: alert.nonce, nonceIssuedAt: alert.nonceIssuedAt,
      conversationId: alert.message?.conversationId, tenantId: alert.message?.tenantId ?? '', data: { alertId: alert.id, nonce: alert.nonce },
    };
  }
  const offer = readRemedyOffer(store, data.offerId);
  if (!offer || offer.remedy !== 'move-to-sp') return undefined;
  // The credential's own card (if it has one) is the one the job reports to and updates.
  const pointer = store.get<AlertPointer>('alert-claims', offer.subject)?.value;
  const alert = pointer?.alertId ? store.get<AlertRecord>('alerts', pointer.alertId)?.value : undefined;
  const credential = alert?.credential ?? await options.scannedCredential(offer.subject);
  if (!credential) return undefined;
  return {
    credential, offer, ...(alert ? { alert } : {}), key: `offer:${offer.id}`, nonce: offer.nonce, nonceIssuedAt: offer.nonceIssuedAt,
    tenantId: '', data: { offerId: offer.id, nonce: offer.nonce },
  };
}

export function moveToSpAction(options: MoveToSpOptions): CardAction {
  return {
    verb: MOVE_VERB,
    async handle(data, ctx: ChatContext): Promise<ActionResult> {
      const { store, clock, config, authorizer } = options;
      const source = await sourceOf(options, data);
      if (!source) {
        authorizer.refuse({ action: 'move-to-sp', ctx, subject: idOf(data.alertId) ?? idOf(data.offerId) ?? '(unknown)' }, { ok: false, code: 'bad-input', reason: 'the card names no alert or offer Keywarden knows' });
        return { text: 'This card does not name a credential I know. Ask me again with /move-to-sp <credential>.' };
      }
      const c = source.credential;
      const now = clock.now();
      const requester = source.offer?.offeredBy?.aadObjectId ? { aadObjectId: source.offer.offeredBy.aadObjectId, name: source.offer.offeredBy.name } : undefined;
      const auth = await authorizer.authorize({
        action: 'move-to-sp', ctx, subject: c.id,
        card: { conversationId: source.conversationId ?? ctx.conversation.conversationId, tenantId: source.tenantId, nonce: source.nonce, nonceIssuedAt: source.nonceIssuedAt },
        presentedNonce: data.nonce, requestedBy: requester?.aadObjectId, skipJustification: true,
        stateRefusal: source.alert?.state === 'resolved' && !source.offer ? `this alert is already resolved (${source.alert.resolution?.text ?? 'no longer needed'})` : undefined,
      });
      if (!auth.ok) return { text: `Not done: ${auth.reason}.` };
      const checked = await checkMove(options, c);
      if (!checked.ok) {
        authorizer.refuse({ action: 'move-to-sp', ctx, subject: c.id }, { ok: false, code: 'state', reason: checked.reason });
        return { text: `Cannot move ${c.name} to a service principal: ${checked.reason}.` };
      }
      const { plan, hash } = checked;
      const form = (approval?: ApprovalRecord) => movePlanCard({
        options, credential: c, plan, hash, approval, requestedBy: source.offer?.offeredBy?.name,
        confirmData: { ...source.data, confirmed: true }, cancelData: source.offer ? undefined : source.data,
      });
      if (data.confirmed !== true && data.confirmed !== 'true') return { card: form() };

      const workspace = c.where.scope;
      const required = requiredApprovals({ action: 'move-to-sp', scope: workspace, environment: environmentOf(config, workspace), now }, config.approvals);
      const outcome = recordApproval(store, {
        id: `move:${source.key}:${source.nonce}`, action: 'move-to-sp', subject: c.id, scope: workspace, nonce: source.nonce,
        required: required.required, approver: { ...auth.approver, at: now }, plan, planHash: hash, jobKind: 'move-to-sp',
        steps: STEPS['move-to-sp'], jobId: newId('mov'), alertId: source.alert?.id, requestedBy: requester,
        message: messageOf(source.offer ? undefined : source.alert?.message, ctx), now,
      });
      auditDecision(options, outcome, ctx, { action: 'move-to-sp', targets: { credentialId: c.id, tokenId: c.nativeId, workspace, servicePrincipal: plan.facts.newOwnerApplicationId }, requiredReasons: required.reasons });
      if (outcome.kind === 'started') {
        if (source.alert) setAlertProgress(store, source.alert.id, `Move to ${String(plan.facts.newOwnerName)} started by ${auth.approver.name} at ${formatTime(now)} (job ${outcome.job.id})`, now, { jobId: outcome.job.id, shownByClick: !source.offer });
        options.engine.kick(outcome.job.id);
      }
      return answerFor(outcome, { authorizer, action: 'move-to-sp', ctx, subject: c.id, pendingCard: () => form(outcome.kind === 'pending' ? outcome.approval : undefined) });
    },
  };
}
