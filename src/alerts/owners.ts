import type { KeywardenConfig } from '../config/schema.js';
import type { ConversationTarget, MessageContent } from '../domain/chat.js';
import { formatExpiry } from '../domain/expiry.js';
import type { Store } from '../store/store.js';
import { kindLabel, ownersToReach, whereText } from './cards.js';
import { claim, isUrgent, urgencyPriority } from './lifecycle.js';
import { enqueue } from './pacing.js';
import { ownerHealthId } from './routing.js';
import type { AlertRecord, DeliveryHealth } from './types.js';

/**
 * Personal-chat notices to a credential's owner (config.alerts.ownerNotices), once per alert when it enters the
 * urgent band. An owner Teams cannot reach (no personal install, 403, 404) is recorded and reported, not retried.
 */

export function ownerReachability(store: Store, aadObjectId: string): DeliveryHealth | undefined {
  return store.get<DeliveryHealth>('deliveries', ownerHealthId(aadObjectId))?.value;
}

/** Queues one notice per reachable owner if due and not already claimed; returns whether it queued any. */
export function queueOwnerNotice(store: Store, config: KeywardenConfig, alert: AlertRecord, now: number): boolean {
  if (!config.alerts.ownerNotices || alert.state === 'resolved' || !isUrgent(alert.threshold, config)) return false;
  let queued = false;
  ownersToReach(alert.credential).forEach((owner, i) => {
    if (ownerReachability(store, owner.aadObjectId)?.status === 'unreachable') return;
    // The first owner keeps the ids notices always had; co-owners (Entra apps) get their own.
    const who = i === 0 ? '' : `:${owner.aadObjectId}`;
    if (!claim(store, `${alert.credentialId}#owner${who}#${alert.id}`, { alertId: alert.id, at: now })) return;
    enqueue(store, `owner:${alert.id}${who}`, {
      kind: 'owner-notice', alertId: alert.id, channel: alert.channel,
      user: { aadObjectId: owner.aadObjectId, name: owner.name },
      priority: urgencyPriority(alert.credential, now) + 1,
    }, now);
    queued = true;
  });
  return queued;
}

/** The owner's personal conversation if they installed the bot; its service URL is the one to use. */
export function personalConversationOf(store: Store, aadObjectId: string): ConversationTarget | undefined {
  return store.list<{ target?: ConversationTarget; status?: string }>('conversations')
    .map((r) => r.value)
    .find((c) => c.target?.kind === 'personal' && c.target.userAadObjectId === aadObjectId && c.status !== 'removed')?.target;
}

export function ownerNoticeContent(alert: AlertRecord, now: number): MessageContent {
  const c = alert.credential;
  const what = `${kindLabel(c)} "${c.name}" (${whereText(c)})`;
  const when = alert.threshold === 'expired' ? `has expired (${formatExpiry(c.expiresAt, now)})` : `expires ${formatExpiry(c.expiresAt, now)}`;
  return {
    text: `Your ${what} ${when}. Pipelines that use it will fail when it expires. `
      + 'Rotate it (or ask in the support channel, where the alert card has a Rotate button when Keywarden can rotate it).',
  };
}

/** Marks an owner unreachable after a permanent failure (reported in readiness; new notices skip them). */
export function markOwnerUnreachable(store: Store, aadObjectId: string, code: string, message: string, now: number): void {
  store.put<DeliveryHealth>('deliveries', ownerHealthId(aadObjectId), {
    target: `owner ${aadObjectId}`, status: 'unreachable', code, message, since: now,
  });
}

/** A personal install by the owner makes them reachable again. */
export function markOwnerReachable(store: Store, aadObjectId: string, now: number): void {
  const current = ownerReachability(store, aadObjectId);
  if (current?.status === 'unreachable') {
    store.put<DeliveryHealth>('deliveries', ownerHealthId(aadObjectId), { target: current.target, status: 'ok', since: now });
  }
}
