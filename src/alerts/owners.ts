import type { KeywardenConfig } from '../config/schema.js';
import type { ConversationTarget, MessageContent } from '../domain/chat.js';
import { formatExpiry } from '../domain/expiry.js';
import type { Store } from '../store/store.js';
import { KIND_LABELS, whereText } from './cards.js';
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

/** Queues the notice if it is due and not already claimed; returns whether it queued one. */
export function queueOwnerNotice(store: Store, config: KeywardenConfig, alert: AlertRecord, now: number): boolean {
  if (!config.alerts.ownerNotices || alert.state === 'resolved' || !isUrgent(alert.threshold, config)) return false;
  const owner = alert.credential.owner;
  if (!owner?.entraObjectId || owner.active === false) return false;
  if (ownerReachability(store, owner.entraObjectId)?.status === 'unreachable') return false;
  if (!claim(store, `${alert.credentialId}#owner#${alert.id}`, { alertId: alert.id, at: now })) return false;
  enqueue(store, `owner:${alert.id}`, {
    kind: 'owner-notice', alertId: alert.id, channel: alert.channel,
    user: { aadObjectId: owner.entraObjectId, name: owner.name },
    priority: urgencyPriority(alert.credential, now) + 1,
  }, now);
  return true;
}

/** The owner's personal conversation if they installed the bot; its service URL is the one to use. */
export function personalConversationOf(store: Store, aadObjectId: string): ConversationTarget | undefined {
  return store.list<{ target?: ConversationTarget; status?: string }>('conversations')
    .map((r) => r.value)
    .find((c) => c.target?.kind === 'personal' && c.target.userAadObjectId === aadObjectId && c.status !== 'removed')?.target;
}

export function ownerNoticeContent(alert: AlertRecord, now: number): MessageContent {
  const c = alert.credential;
  const what = `${KIND_LABELS[c.kind]} "${c.name}" (${whereText(c)})`;
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
