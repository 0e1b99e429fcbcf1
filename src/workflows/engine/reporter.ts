/**
 * Tells people what a job did: replies in the card's thread (audit entries are already written by the engine),
 * updates the alert (progress, resolution → the alerts outbox re-renders the card), and offers Rollback during a
 * rotation's grace window and Extend while JIT access is live.
 */
import { reopenAfterRollback, resolveAlert, setAlertProgress } from '../../alerts/lifecycle.js';
import { releaseSubject } from '../../approvals/record.js';
import type { ActionOffer, JitRequestRecord } from '../../approvals/types.js';
import type { Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { ChatGateway, MessageContent, PostedMessage } from '../../domain/chat.js';
import type { Store } from '../../store/store.js';
import { newNonce } from '../actions.js';
import { renderProgressCard, rollbackOfferCard } from '../cards.js';
import { refreshUserIds } from '../../approvals/people.js';
import type { JobEvent } from './journal.js';
import { jitRequestKey } from '../jit/jit-actions.js';
import type { JobRecord } from '../../domain/job.js';

export interface JobReporterOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  chat: () => ChatGateway | undefined;
}

function ensureOffer(options: JobReporterOptions, job: JobRecord, kind: ActionOffer['kind']): ActionOffer {
  const id = `offer:${job.id}`;
  const existing = options.store.get<ActionOffer>('approvals', id)?.value;
  if (existing && existing.kind === kind) return existing;
  const now = options.clock.now();
  const offer: ActionOffer = {
    id, kind, jobId: job.id, nonce: newNonce(), nonceIssuedAt: now,
    conversationId: job.message?.conversationId ?? '', tenantId: job.message?.tenantId ?? '', createdAt: now,
  };
  options.store.put('approvals', id, offer);
  return offer;
}

function rememberOfferMessage(store: Store, offerId: string, message: PostedMessage): void {
  const rec = store.get<ActionOffer>('approvals', offerId);
  if (rec && !rec.value.message) store.compareAndSet('approvals', offerId, rec.version, { ...rec.value, message });
}

function dropOffer(store: Store, jobId: string): void {
  const rec = store.get('approvals', `offer:${jobId}`);
  if (rec) store.delete('approvals', rec.id, rec.version);
}

/** Rotations, and moves to a service principal (a rotation with a new owner): both offer Rollback in the grace window. */
const isRotation = (job: JobRecord) => job.kind === 'rotate-pat' || job.kind === 'rotate-entra' || job.kind === 'move-to-sp';

export function createJobReporter(options: JobReporterOptions): (event: JobEvent) => Promise<void> {
  const { store, clock } = options;

  const post = async (job: JobRecord, content: MessageContent): Promise<PostedMessage | undefined> => {
    if (!job.message) return undefined;
    const chat = options.chat();
    if (!chat) throw new Error('no Teams gateway is attached yet; the update will be posted when the job reports again');
    return chat.replyInThread(job.message, content, { signal: AbortSignal.timeout(30_000) });
  };

  /** The rotation ended without a rollback: its offer card loses the Rollback button (the old credential is gone). */
  const withdrawRollback = async (job: JobRecord, offer: ActionOffer | undefined, text: string): Promise<void> => {
    if (!offer?.message?.activityId || offer.kind !== 'rollback' || job.state === 'cancelled') return;
    const chat = options.chat();
    if (!chat) return;
    const status = job.state === 'done'
      ? `${text}. Rollback is no longer possible: the old credential is revoked.`
      : `${text}. Rollback is no longer offered.`;
    await chat.update(offer.message, { card: renderProgressCard({
      plan: job.plan, planHash: job.planHash, approvers: job.approvedBy, job, color: job.state === 'done' ? 'Good' : 'Attention',
      headline: job.state === 'done' ? `${job.kind === 'move-to-sp' ? 'Moved' : 'Rotated'} — grace window over` : `${job.kind === 'move-to-sp' ? 'Move' : 'Rotation'} ended`, status,
    }) }, { signal: AbortSignal.timeout(30_000) });
  };

  return async (event) => {
    const job = event.job;
    const now = clock.now();
    const by = job.approvedBy[0];
    if (event.type === 'milestone') {
      const { mentions, card } = event.milestone;
      let content: MessageContent = { text: event.milestone.text, ...(mentions?.length ? { mentions } : {}), ...(card ? { card } : {}) };
      let offer: ActionOffer | undefined;
      if (isRotation(job) && event.milestone.key === 'verified') {
        const revokeAt = job.facts.graceUntil;
        const rotation = typeof revokeAt === 'number' ? { revokeAt, noun: job.kind === 'rotate-entra' ? 'client secret' as const : 'token' as const } : undefined;
        if (job.alertId) resolveAlert(store, job.alertId, { kind: 'rotated', text: event.milestone.text, at: now, by, ...(rotation ? { rotation } : {}) });
        offer = ensureOffer(options, job, 'rollback');
        // A job without a thread (a pipeline's, the CLI's) posts nothing: its card is not worth rendering.
        if (!job.message) return;
        content = {
          text: event.milestone.text,
          card: rollbackOfferCard(job, offer.nonce, refreshUserIds(store), job.kind === 'move-to-sp' ? 'Moved to a service principal and verified' : undefined),
        };
      } else if (job.kind === 'jit' && event.milestone.key.startsWith('ready:') && !job.plan.facts.pipelineRunId && job.message) {
        const offer = ensureOffer(options, job, 'extend');
        content = {
          text: event.milestone.text,
          card: renderProgressCard({
            plan: job.plan, planHash: job.planHash, approvers: job.approvedBy, job, color: 'Good',
            headline: 'Just-in-time access is ready', status: event.milestone.text,
            offer: { kind: 'extend', data: { jobId: job.id, nonce: offer.nonce }, maxHours: options.config.workflows.jit.maxHours },
          }),
        };
      }
      const posted = await post(job, content);
      // Remember where the Rollback button is, so it can be taken away when the grace window ends.
      if (offer && posted?.activityId) rememberOfferMessage(store, offer.id, posted);
      return;
    }

    // Finished: withdraw offers, update the alert / request, say so in the thread, then free the subject. The lock
    // is freed last: while it is held, the engine posts a result that did not reach the thread again (announce.ts).
    const offer = store.get<ActionOffer>('approvals', `offer:${job.id}`)?.value;
    dropOffer(store, job.id);
    if (job.kind === 'rollback' && typeof job.plan.facts.rotationJobId === 'string') dropOffer(store, job.plan.facts.rotationJobId);
    if (job.alertId) {
      if (job.state === 'done' && isRotation(job)) resolveAlert(store, job.alertId, { kind: 'rotated', text: event.text, at: now, by });
      else if (job.state === 'done' && job.kind === 'revoke') resolveAlert(store, job.alertId, { kind: 'revoked', text: event.text, at: now, by });
      else if (job.state === 'done' && job.kind === 'rollback') reopenAfterRollback(store, job.alertId, { text: event.text, at: now, by });
      else if (job.state !== 'done') setAlertProgress(store, job.alertId, `${job.plan.title}: ${event.text}`, now);
    }
    if (job.kind === 'jit' && typeof job.plan.facts.requestId === 'string') {
      const rec = store.get<JitRequestRecord>('approvals', jitRequestKey(job.plan.facts.requestId));
      if (rec && rec.value.state === 'active') store.compareAndSet('approvals', rec.id, rec.version, { ...rec.value, state: 'ended', nonce: newNonce() });
    }
    await post(job, { text: event.text, ...(event.card ? { card: event.card } : {}) });
    if (isRotation(job)) await withdrawRollback(job, offer, event.text).catch(() => undefined);
    releaseSubject(store, job.subject, job.id);
  };
}
