/** Cards for approvals and jobs (templates in cards/*.json; this file only shapes the data). */
import type { AdaptiveCard } from '../domain/chat.js';
import { renderCard } from '../cards/render.js';
import type { JitRequestRecord } from '../approvals/types.js';
import { formatTime, shortHash, type ActionPlan } from '../domain/plan.js';
import type { JobRecord } from '../domain/job.js';

const text = (items: string[]) => items.map((t) => ({ text: t }));

/** The plan as a card: what Details shows and what an approver approves. */
export function renderPlanCard(plan: ActionPlan, hash: string): AdaptiveCard {
  return renderCard('plan', {
    title: plan.title,
    operations: text(plan.operations.map((op, i) => `${i + 1}. ${op}`)),
    hasWarnings: (plan.warnings ?? []).length > 0,
    warnings: text(plan.warnings ?? []),
    planHash: shortHash(hash),
  });
}

const STEP_LABEL: Record<string, string> = { create: 'create', set: 'set (Key Vault)', test: 'test (verify)', finish: 'finish' };

function stepLines(job: JobRecord | undefined): string[] {
  if (!job) return [];
  return job.steps.map((s) => `${s.status === 'done' ? '✔' : s.status === 'started' ? '…' : s.status === 'failed' ? '✖' : '·'} ${STEP_LABEL[s.name] ?? s.name}${s.attempts > 1 ? ` (attempt ${s.attempts})` : ''}`);
}

export interface ProgressCardInput {
  plan: ActionPlan;
  planHash: string;
  approvers: Array<{ name: string }>;
  job?: JobRecord;
  /** "In progress", "Already running", "Rotated"... */
  headline: string;
  status: string;
  color?: 'Default' | 'Good' | 'Warning' | 'Attention' | 'Accent';
  /** Rollback / extension buttons (only while the offer is valid). */
  offer?: { kind: 'rollback' | 'extend'; data: Record<string, unknown>; maxHours?: number };
  /** Universal Actions refresh: Teams asks `verb` for a fresh card when a listed user (MRI) opens it. */
  refresh?: { verb: string; data: Record<string, unknown>; userIds: string[] };
}

export function renderProgressCard(input: ProgressCardInput): AdaptiveCard {
  const facts = [
    { title: 'Action', value: input.plan.title },
    { title: 'Approved by', value: input.approvers.map((a) => a.name).join(', ') || '—' },
    { title: 'Plan hash', value: shortHash(input.planHash) },
  ];
  if (input.job) facts.push({ title: 'Job', value: input.job.id });
  if (input.job?.dueAt && input.job.state === 'waiting') facts.push({ title: 'Next step at', value: formatTime(input.job.dueAt) });
  const steps = stepLines(input.job);
  const card = renderCard('job-progress', {
    headline: input.headline,
    color: input.color ?? 'Default',
    status: input.status,
    facts,
    hasSteps: steps.length > 0,
    steps: text(steps),
    canRollback: input.offer?.kind === 'rollback',
    canExtend: input.offer?.kind === 'extend',
    maxHours: input.offer?.maxHours ?? 1,
    actionData: input.offer?.data ?? {},
  });
  if (input.refresh) {
    // No approver seen yet: no userIds, so Teams refreshes for everyone in a small channel ([] would turn it off).
    const { verb, data, userIds } = input.refresh;
    card.refresh = { action: { type: 'Action.Execute', title: 'Refresh', verb, data }, ...(userIds.length ? { userIds: userIds.slice(0, 60) } : {}) };
  }
  return card;
}

/** The "Rotated and verified" card with its Rollback button (own nonce) and a refresh that keeps that nonce fresh. */
export function rollbackOfferCard(job: JobRecord, nonce: string, userIds: string[], headline = 'Rotated and verified', status?: string): AdaptiveCard {
  return renderProgressCard({
    plan: job.plan, planHash: job.planHash, approvers: job.approvedBy, job, color: 'Good', headline,
    status: status ?? `${job.waitingFor ?? ''}. Rollback puts the previous value back in Key Vault and revokes the new credential.`,
    offer: { kind: 'rollback', data: { jobId: job.id, nonce } },
    refresh: { verb: 'refreshOffer', data: { jobId: job.id }, userIds },
  });
}

export interface ApprovalFormInput {
  notice?: string;
  headline: string;
  facts: Array<{ title: string; value: string }>;
  plan: ActionPlan;
  planHash: string;
  approvalsText: string;
  askJustification: boolean;
  askOverride: boolean;
  confirmTitle: string;
  confirmVerb: string;
  confirmData: Record<string, unknown>;
  cancelData?: Record<string, unknown>;
}

/** Asks for what an approval still needs: a justification, a second approver, or an override reason. */
export function renderApprovalForm(input: ApprovalFormInput): AdaptiveCard {
  return renderCard('approval', {
    hasNotice: Boolean(input.notice), notice: input.notice ?? '',
    headline: input.headline,
    facts: input.facts,
    operations: text(input.plan.operations.map((op, i) => `${i + 1}. ${op}`)),
    hasWarnings: (input.plan.warnings ?? []).length > 0,
    warnings: text(input.plan.warnings ?? []),
    approvalsText: input.approvalsText,
    askJustification: input.askJustification,
    askOverride: input.askOverride,
    planHash: shortHash(input.planHash),
    confirmTitle: input.confirmTitle,
    confirmVerb: input.confirmVerb,
    confirmData: input.confirmData,
    canCancel: Boolean(input.cancelData),
    cancelData: input.cancelData ?? {},
  });
}

export function renderJitRequestCard(request: JitRequestRecord, plan: ActionPlan, options: { notice?: string; statusText: string; open: boolean; now: number }): AdaptiveCard {
  const extension = request.pendingExtension;
  return renderCard('jit-request', {
    hasNotice: Boolean(options.notice), notice: options.notice ?? '',
    headline: extension
      ? `Extension request: ${extension.hours} h more for JIT access ${request.requestId} in ${request.workspace}`
      : `Just-in-time access request ${request.requestId}: ${request.workspace} for ${request.hours} h`,
    facts: [
      { title: 'Requested by', value: extension ? extension.by.name : request.requestedBy.name },
      { title: 'Workspace', value: request.workspace },
      { title: 'Duration', value: `${request.hours} h${request.extensions.length ? ` (+${request.extensions.join(' h, +')} h extended)` : ''}` },
      { title: 'Node type', value: request.nodeType },
      { title: 'Max capacity', value: String(request.maxCapacity) },
      { title: 'Justification', value: request.justification ?? '(none given — the approver must give one)' },
    ],
    operations: text(plan.operations.map((op, i) => `${i + 1}. ${op}`)),
    statusText: options.statusText,
    askJustification: options.open && !request.justification,
    open: options.open,
    actionData: { requestId: request.requestId, nonce: request.nonce },
  });
}
