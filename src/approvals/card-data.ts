/**
 * Card data is untrusted input: each verb names the keys it reads (ids, nonce, the card's own inputs). Any other key
 * is dropped before the handler sees it — so no click can choose a workflow parameter the approved plan does not
 * already contain — and every dropped key is written to the audit log (names only, never values).
 */
import type { CardAction, ChatContext } from '../domain/chat.js';
import type { Store } from '../store/store.js';

const SUBJECT_KEYS = ['alertId', 'approvalId', 'jobId', 'requestId', 'ruleId', 'offerId'] as const;
const SAFE_ID = /^[A-Za-z0-9_:-]{1,128}$/;
const MAX_KEYS_AUDITED = 20;

/** Splits card data into the accepted keys and the names of the ignored ones. */
export function splitCardData(data: Record<string, unknown>, accepted: readonly string[]): { data: Record<string, unknown>; ignored: string[] } {
  const kept: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (accepted.includes(key)) kept[key] = value;
    else ignored.push(key);
  }
  return { data: kept, ignored };
}

/** A key name as the audit log keeps it: bounded, printable. */
function keyName(key: string): string {
  return key.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}

export function auditIgnoredData(store: Store, verb: string, data: Record<string, unknown>, ignored: string[], ctx: ChatContext): void {
  const subject = SUBJECT_KEYS.map((k) => data[k]).find((v): v is string => typeof v === 'string' && SAFE_ID.test(v)) ?? '(card)';
  store.appendAudit({
    action: 'card.data-ignored',
    actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name },
    subject,
    result: 'info',
    details: {
      verb,
      keys: ignored.slice(0, MAX_KEYS_AUDITED).map(keyName).sort(),
      ...(ignored.length > MAX_KEYS_AUDITED ? { more: ignored.length - MAX_KEYS_AUDITED } : {}),
      conversationId: ctx.conversation.conversationId,
    },
  });
}

/** The same verb, seeing only `accepted` keys of its card data; anything else is audited as ignored. */
export function acceptingOnly(action: CardAction, accepted: readonly string[], store: Store): CardAction {
  return {
    ...action,
    async handle(data, ctx) {
      const split = splitCardData(data, accepted);
      if (split.ignored.length > 0) auditIgnoredData(store, action.verb, data, split.ignored, ctx);
      return action.handle(split.data, ctx);
    },
  };
}

/** The keys each card verb reads; everything else in a click's data is ignored and audited. */
export const CARD_DATA_KEYS: Record<string, readonly string[]> = {
  rotate: ['alertId', 'nonce', 'confirmed'],
  revoke: ['alertId', 'nonce', 'confirmed', 'justification', 'overrideReason'],
  confirm: ['approvalId', 'nonce', 'justification', 'overrideReason'],
  cancelAction: ['alertId', 'nonce', 'justification', 'overrideReason'],
  rollback: ['jobId', 'nonce'],
  refreshOffer: ['jobId', 'nonce'],
  details: ['alertId', 'nonce'],
  acknowledge: ['alertId', 'nonce', 'ackReason'],
  snooze: ['alertId', 'nonce', 'snoozeUntil', 'reason'],
  refreshAlert: ['alertId', 'nonce'],
  jitApprove: ['requestId', 'nonce', 'justification'],
  jitDeny: ['requestId', 'nonce', 'justification'],
  jitExtend: ['jobId', 'nonce', 'hours'],

  // Auto-rotation rules (src/workflows/autorotate/)
  autoRotate: ['alertId', 'nonce'],
  approveRule: ['ruleId', 'nonce', 'justification'],
  denyRule: ['ruleId', 'nonce', 'justification'],
  pauseRule: ['ruleId', 'nonce'],
  resumeRule: ['ruleId', 'nonce'],
  revokeRule: ['ruleId', 'nonce'],
  renewRule: ['ruleId', 'nonce'],

  // Governance remedies: buttons on a credential card carry alertId, the others an offer (approvals/remedy-offers.ts)
  moveToServicePrincipal: ['alertId', 'offerId', 'nonce'],
  enforceMaxLifetime: ['offerId', 'nonce'],
  restrictTokenCreation: ['offerId', 'nonce'],
  retireUnused: ['offerId', 'nonce'],
  revokeOnDemand: ['offerId', 'nonce', 'justification', 'overrideReason'],
};

/** Wraps every verb that has a key list (verbs without one are passed through unchanged). */
export function withCardDataKeys(actions: CardAction[], store: Store): CardAction[] {
  return actions.map((a) => (CARD_DATA_KEYS[a.verb] ? acceptingOnly(a, CARD_DATA_KEYS[a.verb]!, store) : a));
}
