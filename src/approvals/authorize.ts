/**
 * Server-side authorization of every click. The card's data is untrusted: only the alert/request id and the
 * nonce are read from it, and both are checked against stored state. Every refusal is audited.
 */
import type { Clock } from '../clock.js';
import { MINUTE_MS } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { ChatContext } from '../domain/chat.js';
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';
import type { JobActor } from '../domain/job.js';
import { checkConversation, checkJustification, checkNonce, checkSelfApproval, checkTenant } from './rules.js';
import type { ApprovalAction, Refusal } from './types.js';

/** What authorization needs from Graph (GraphClient.isMemberOfAny satisfies it). */
export interface GroupMembershipLookup {
  isMemberOfAny(userId: string, groupIds: string[], options?: { signal?: AbortSignal }): Promise<boolean>;
}

/** Configured approver users, or members of configured Entra groups (resolved via Graph, cached for minutes). */
export class ApproverDirectory {
  private readonly cache = new Map<string, { member: boolean; at: number }>();

  constructor(private readonly options: {
    approvals: KeywardenConfig['approvals'];
    /** Who may also Acknowledge / Snooze (config.alerts.responders). */
    responders?: KeywardenConfig['alerts']['responders'];
    groups?: GroupMembershipLookup;
    clock: Clock;
  }) {}

  /** true / false, or 'unavailable' when group membership could not be checked (fails closed). */
  async isApprover(aadObjectId: string, signal?: AbortSignal): Promise<boolean | 'unavailable'> {
    const { users, groups } = this.options.approvals;
    return this.isMember('approver', aadObjectId, users, groups, signal);
  }

  /** Acknowledge / Snooze: approvers, and the configured responders. */
  async mayRespond(aadObjectId: string, signal?: AbortSignal): Promise<boolean | 'unavailable'> {
    const approver = await this.isApprover(aadObjectId, signal);
    if (approver === true) return true;
    const responders = this.options.responders ?? { users: [], groups: [] };
    const responder = await this.isMember('responder', aadObjectId, responders.users, responders.groups, signal);
    if (responder === true) return true;
    return approver === 'unavailable' || responder === 'unavailable' ? 'unavailable' : false;
  }

  /** Known without asking Graph (configured user, or a cached group answer): for card refresh lists. */
  knownResponder(aadObjectId: string): boolean {
    const responders = this.options.responders ?? { users: [], groups: [] };
    if (this.options.approvals.users.includes(aadObjectId) || responders.users.includes(aadObjectId)) return true;
    const now = this.options.clock.now();
    const ttl = this.options.approvals.groupCacheMinutes * MINUTE_MS;
    return ['approver', 'responder'].some((role) => {
      const hit = this.cache.get(`${role}:${aadObjectId}`);
      return Boolean(hit && hit.member && now - hit.at < ttl);
    });
  }

  private async isMember(role: string, aadObjectId: string, users: string[], groups: string[], signal?: AbortSignal): Promise<boolean | 'unavailable'> {
    if (users.includes(aadObjectId)) return true;
    if (groups.length === 0) return false;
    const now = this.options.clock.now();
    const key = `${role}:${aadObjectId}`;
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.options.approvals.groupCacheMinutes * MINUTE_MS) return hit.member;
    if (!this.options.groups) return 'unavailable';
    try {
      const member = await this.options.groups.isMemberOfAny(aadObjectId, groups, { signal: signal ?? AbortSignal.timeout(10_000) });
      this.cache.set(key, { member, at: now });
      return member;
    } catch {
      return 'unavailable';
    }
  }

  /** Forgets cached group answers (e.g. after a membership change in tests or via a command). */
  clear(): void {
    this.cache.clear();
  }
}

/** Approvals, plus the alert decisions that are not approvals of a plan. */
export type ClickVerb = ApprovalAction | 'acknowledge' | 'snooze';

export interface AuthorizeInput {
  action: ClickVerb;
  /** Acknowledge / Snooze: approvers or configured responders may decide (default: approvers only). */
  responders?: boolean;
  ctx: ChatContext;
  /** Credential id / request id / job id the click is about (audit subject). */
  subject: string;
  /** Where the card lives and the nonce it was issued with (from the stored alert/request, not from the card). */
  card: { conversationId: string; tenantId: string; nonce?: string; nonceIssuedAt?: number };
  /** The nonce the card's data presented (untrusted). */
  presentedNonce: unknown;
  /** Set when the alert's / request's current state no longer allows the action. */
  stateRefusal?: string;
  /** Entra object id of whoever requested the action (JIT): they cannot approve it. */
  requestedBy?: string;
  justification?: string;
  /** The justification is asked for on the next card (first click of Revoke): do not refuse for its absence yet. */
  skipJustification?: boolean;
  /** Only check tenant, conversation and nonce (e.g. asking for a JIT extension is not an approval). */
  memberOnly?: boolean;
}

export type AuthorizeResult = { ok: true; approver: JobActor } | Refusal;

export class ClickAuthorizer {
  constructor(private readonly options: {
    config: KeywardenConfig;
    directory: ApproverDirectory;
    store: Store;
    clock: Clock;
    logger?: Logger;
  }) {}

  /** Who approves and who responds (shared with the refresh lists). */
  get directory(): ApproverDirectory {
    return this.options.directory;
  }

  async authorize(input: AuthorizeInput): Promise<AuthorizeResult> {
    const refusal = await this.check(input);
    if (refusal) {
      this.refuse(input, refusal);
      return refusal;
    }
    return { ok: true, approver: { aadObjectId: input.ctx.actor.aadObjectId!, name: input.ctx.actor.name } };
  }

  /** Audits a refusal decided elsewhere (e.g. "already running") with the same shape. */
  refuse(input: Pick<AuthorizeInput, 'action' | 'ctx' | 'subject'>, refusal: Refusal): void {
    this.options.store.appendAudit({
      action: 'approval.refused',
      actor: { aadObjectId: input.ctx.actor.aadObjectId, name: input.ctx.actor.name },
      subject: input.subject,
      result: 'refused',
      details: {
        verb: input.action,
        code: refusal.code,
        reason: refusal.reason,
        tenantId: input.ctx.actor.tenantId ?? input.ctx.conversation.tenantId,
        conversationId: input.ctx.conversation.conversationId,
      },
    });
    this.options.logger?.info({ subject: input.subject, code: refusal.code, actor: input.ctx.actor.aadObjectId }, 'click refused');
  }

  private async check(input: AuthorizeInput): Promise<Refusal | undefined> {
    const { config } = this.options;
    const now = this.options.clock.now();
    const configuredTenant = config.bot.tenantId ?? config.azure.tenantId ?? config.entra.tenantId;
    const expectedTenant = input.card.tenantId || configuredTenant || '';
    const tenant = checkTenant(input.ctx, expectedTenant);
    if (tenant) return tenant;
    if (configuredTenant && configuredTenant !== expectedTenant) {
      return { ok: false, code: 'wrong-tenant', reason: `this card was posted in tenant ${expectedTenant}, but Keywarden serves tenant ${configuredTenant}` };
    }
    const conversation = checkConversation(input.ctx, input.card.conversationId, config.teams.channels);
    if (conversation) return conversation;
    if (input.memberOnly) {
      return checkNonce(input.presentedNonce, input.card.nonce, input.card.nonceIssuedAt, now, config.approvals.nonceTtlMinutes)
        ?? (input.stateRefusal ? { ok: false, code: 'state', reason: input.stateRefusal } : undefined);
    }
    const directory = this.options.directory;
    const id = input.ctx.actor.aadObjectId!;
    const approver = input.responders ? await directory.mayRespond(id) : await directory.isApprover(id);
    if (approver === 'unavailable') {
      return { ok: false, code: 'directory-unavailable', reason: 'Keywarden could not check your approver group membership in Entra right now; try again in a minute' };
    }
    if (!approver) {
      return input.responders
        ? { ok: false, code: 'not-approver', reason: `${input.ctx.actor.name || 'you'} may not ${input.action} alerts: that is for approvers (approvals.users / approvals.groups) and responders (alerts.responders.users / alerts.responders.groups)` }
        : { ok: false, code: 'not-approver', reason: `${input.ctx.actor.name} is not an approver for Keywarden actions (approvals.users / approvals.groups); ask an approver to click` };
    }
    const nonce = checkNonce(input.presentedNonce, input.card.nonce, input.card.nonceIssuedAt, now, config.approvals.nonceTtlMinutes);
    if (nonce) return nonce;
    if (input.stateRefusal) return { ok: false, code: 'state', reason: input.stateRefusal };
    const self = checkSelfApproval(input.requestedBy, input.ctx.actor.aadObjectId!);
    if (self) return self;
    if (input.action === 'acknowledge' || input.action === 'snooze') return undefined;
    return input.skipJustification ? undefined : checkJustification(input.action, input.justification);
  }
}
