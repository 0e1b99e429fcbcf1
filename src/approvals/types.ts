/** Approvals: who approved what, under which plan. Owned by src/approvals; stored in the `approvals` collection. */
import type { PostedMessage } from '../domain/chat.js';
import type { ActionPlan } from '../domain/plan.js';
import type { JobActor } from '../domain/job.js';

export const APPROVAL_ACTIONS = [
  'rotate', 'revoke', 'jit', 'rollback',
  /** A standing auto-rotation rule (issue 11): approved like a rotation of what it covers. */
  'auto-rotate',
  /** Governance remedies (issue 13). */
  'move-to-sp', 'max-lifetime', 'restrict-tokens', 'retire-unused',
] as const;
export type ApprovalAction = (typeof APPROVAL_ACTIONS)[number];

export interface ApproverVote extends JobActor {
  at: number;
  justification?: string;
}

export interface ApprovalRecord {
  /** `alert:<alertId>:<nonce>`, `jit:<requestId>:<nonce>` or `rollback:<jobId>`: one approval per card state. */
  id: string;
  action: ApprovalAction;
  /** Credential id, JIT request id, or the rotation job id being rolled back. */
  subject: string;
  /** Workspace / vault / app scope, matched against config.approvals.highRisk. */
  scope: string;
  alertId?: string;
  requestId?: string;
  /** The card nonce this approval consumed. */
  nonce: string;
  /** pending = waiting for more approvers (N-of-M); approved = a job exists; refused = denied. */
  state: 'pending' | 'approved' | 'denied';
  required: number;
  approvers: ApproverVote[];
  requestedBy?: JobActor;
  plan: ActionPlan;
  planHash: string;
  justification?: string;
  /** Given instead of a second approver for revoking a recently used credential. */
  overrideReason?: string;
  jobId?: string;
  /** Card to update and whose thread gets the result. */
  message?: PostedMessage;
  createdAt: number;
  decidedAt?: number;
}

/** Rollback / extension buttons offered in a job's thread: their own nonce, checked like a card's. */
export interface ActionOffer {
  id: string;
  kind: 'rollback' | 'extend';
  jobId: string;
  nonce: string;
  nonceIssuedAt: number;
  conversationId: string;
  tenantId: string;
  /** Message holding the offer's buttons (to update when it lapses). */
  message?: PostedMessage;
  createdAt: number;
}

/** A JIT request made with `/jit`, waiting for an approver. Stored in `approvals` as `jitreq:<requestId>`. */
export interface JitRequestRecord {
  id: string;
  requestId: string;
  workspace: string;
  hours: number;
  nodeType: string;
  maxCapacity: number;
  justification?: string;
  requestedBy: JobActor & { tenantId?: string };
  conversation: { conversationId: string; serviceUrl: string; tenantId: string };
  nonce: string;
  nonceIssuedAt: number;
  state: 'requested' | 'approved' | 'denied' | 'active' | 'ended';
  /** The job that created (and will tear down) the PAT and pool. */
  jobId?: string;
  /** Extensions granted so far (hours), bounded by config.workflows.jit.maxHours in total. */
  extensions: number[];
  /** An extension someone asked for, waiting for a (new) approval. */
  pendingExtension?: { hours: number; by: JobActor; at: number };
  message?: PostedMessage;
  /** Secret names chosen by the requester (a pipeline), instead of jit-<id>-token / -pool. */
  secrets?: { vault: string; tokenSecret: string; poolSecret: string };
  /** Set when a pipeline asked (POST /api/jit) outside its standing approval. */
  pipeline?: { caller: string; callerObjectId: string; runId: string; grantId: string };
  /** Who denied it, and why (shown to the pipeline polling GET /api/jit/{id}). */
  deniedBy?: JobActor;
  denyReason?: string;
  createdAt: number;
}

export type RefusalCode =
  | 'anonymous'
  | 'wrong-tenant'
  | 'wrong-conversation'
  | 'not-approver'
  | 'directory-unavailable'
  | 'stale-card'
  | 'state'
  | 'self-approval'
  | 'already-approved-by-you'
  | 'justification-required'
  | 'bad-input';

export interface Refusal {
  ok: false;
  code: RefusalCode;
  /** Shown to the clicker and written to the audit log; never a secret. */
  reason: string;
  /** The card is out of date: answer with a refreshed card. */
  refresh?: boolean;
}
