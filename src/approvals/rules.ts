/** Approval rules as pure functions (after Entra PIM: no self-approval, justification, N approvers, freshness). */
import { DAY_MS, MINUTE_MS } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { ChatContext } from '../domain/chat.js';
import type { ApprovalAction, Refusal } from './types.js';

type ApprovalsConfig = KeywardenConfig['approvals'];

export const MIN_JUSTIFICATION_LENGTH = 5;
export const MAX_JUSTIFICATION_LENGTH = 500;

/** The channel conversation id without Teams' thread suffix (";messageid=…"). */
export function baseConversationId(conversationId: string): string {
  const i = conversationId.indexOf(';messageid=');
  return i === -1 ? conversationId : conversationId.slice(0, i);
}

/** Who clicked must be a signed-in Entra user of the card's tenant. */
export function checkTenant(ctx: ChatContext, expectedTenantId: string): Refusal | undefined {
  if (!ctx.actor.aadObjectId) {
    return { ok: false, code: 'anonymous', reason: 'your Entra identity was not in the request, so Keywarden cannot check that you may approve; use Teams signed in with your work account' };
  }
  const tenant = ctx.actor.tenantId ?? ctx.conversation.tenantId;
  if (!tenant || tenant !== expectedTenantId) {
    return { ok: false, code: 'wrong-tenant', reason: `you are signed in to another tenant (${tenant ?? 'unknown'}); only users of tenant ${expectedTenantId} may approve actions on this card` };
  }
  return undefined;
}

/** The click must come from the conversation the card lives in, and that must be a configured support channel. */
export function checkConversation(ctx: ChatContext, cardConversationId: string, channels: KeywardenConfig['teams']['channels']): Refusal | undefined {
  const here = baseConversationId(ctx.conversation.conversationId);
  const card = baseConversationId(cardConversationId);
  if (here !== card) {
    return { ok: false, code: 'wrong-conversation', reason: 'this card belongs to another conversation; act on it in the channel where Keywarden posted it' };
  }
  if (channels.length > 0 && !channels.some((c) => baseConversationId(c.conversationId) === here)) {
    return { ok: false, code: 'wrong-conversation', reason: 'actions are only accepted in a configured support channel (teams.channels); this conversation is not one' };
  }
  return undefined;
}

/** The card's nonce must be the one issued last, and young enough. */
export function checkNonce(presented: unknown, expected: string | undefined, issuedAt: number | undefined, now: number, ttlMinutes: number): Refusal | undefined {
  if (typeof presented !== 'string' || !expected || presented !== expected) {
    return { ok: false, code: 'stale-card', reason: 'this card is out of date (it was replaced or already acted on); here is the current one', refresh: true };
  }
  if (issuedAt === undefined || now - issuedAt > ttlMinutes * MINUTE_MS) {
    return { ok: false, code: 'stale-card', reason: `this card is out of date (older than ${ttlMinutes} minutes); here is a refreshed card — check it and click again`, refresh: true };
  }
  return undefined;
}

export function checkSelfApproval(requesterId: string | undefined, approverId: string): Refusal | undefined {
  if (requesterId && requesterId === approverId) {
    return { ok: false, code: 'self-approval', reason: 'you requested this, so you cannot approve it; another approver must' };
  }
  return undefined;
}

/** Revoke and JIT need a reason a reviewer can read later. */
export function checkJustification(action: ApprovalAction, justification: string | undefined): Refusal | undefined {
  if (action !== 'revoke' && action !== 'jit') return undefined;
  const text = (justification ?? '').trim();
  if (text.length < MIN_JUSTIFICATION_LENGTH) {
    return { ok: false, code: 'justification-required', reason: `${action === 'revoke' ? 'a revoke' : 'a just-in-time token'} needs a justification (at least ${MIN_JUSTIFICATION_LENGTH} characters); type it in the card and click again` };
  }
  return undefined;
}

/** Card input is untrusted text: trimmed, bounded, control characters removed. */
export function cleanText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, MAX_JUSTIFICATION_LENGTH);
  return text.length > 0 ? text : undefined;
}

export interface RequiredApprovals {
  required: number;
  /** Why more than one approver is needed, one line each. */
  reasons: string[];
}

/**
 * How many distinct approvers an action needs: config.approvals.highRisk (action + scope, empty scopes = all),
 * and for a revoke of something used within revokeRecentUseDays, two — unless an override reason is given.
 */
export function requiredApprovals(input: {
  action: ApprovalAction;
  scope: string;
  environment?: string;
  lastUsedAt?: number | null;
  overrideReason?: string;
  now: number;
}, approvals: ApprovalsConfig): RequiredApprovals {
  let required = 1;
  const reasons: string[] = [];
  for (const rule of approvals.highRisk) {
    if (rule.action !== input.action) continue;
    const matches = rule.scopes.length === 0 || rule.scopes.includes(input.scope) || (input.environment !== undefined && rule.scopes.includes(input.environment));
    if (matches && rule.approvals > required) {
      required = rule.approvals;
      reasons.push(`${input.action} in ${input.scope} is high-risk: ${rule.approvals} approvers needed`);
    }
  }
  if (input.action === 'revoke' && recentlyUsed(input.lastUsedAt, input.now, approvals.revokeRecentUseDays) && !input.overrideReason) {
    if (required < 2) required = 2;
    reasons.push(`it was used within the last ${approvals.revokeRecentUseDays} days: a second approver (or an override reason) is needed`);
  }
  return { required, reasons };
}

export function recentlyUsed(lastUsedAt: number | null | undefined, now: number, days: number): boolean {
  return typeof lastUsedAt === 'number' && lastUsedAt > 0 && now - lastUsedAt <= days * DAY_MS;
}
