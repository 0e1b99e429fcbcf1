/**
 * Standing approvals: a plan template approved once (here: declared in config) that the engine runs later without a
 * click, whenever its trigger fires for something its selector picks and the concrete plan fits the template's limits.
 * Pipeline JIT is the first kind; auto-rotation rules are meant to reuse the same record (kind 'auto-rotation').
 * A concrete request that does not fit is never run automatically: it becomes an ordinary one-off card.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';
import type { JobActor } from '../domain/job.js';
import type { KeywardenConfig, PipelineCallerConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';

export type StandingApprovalKind = 'pipeline-jit' | 'auto-rotation';

export interface StandingApproval<Template = unknown> {
  /** `standing:<kind>:<name>`; stored in `approvals` under this id. */
  id: string;
  kind: StandingApprovalKind;
  /** Where it was declared: config today; `/rules` later. */
  source: 'config' | 'chat';
  /** What may run: for pipeline JIT, the workspaces, pool shape and maximum duration. */
  template: Template;
  /** Who or what it applies to (pipeline JIT: the caller's Entra object id; auto-rotation: credentials). */
  selector: StandingSelector;
  /** What starts a run (pipeline JIT: an authenticated API call). */
  trigger: { kind: 'api-call' | 'days-before-expiry'; days?: number };
  /** sha256 of kind + template + selector + trigger: changes whenever what was approved changes. */
  planHash: string;
  /** People who approved it (empty for config: the config change's review is the approval). */
  approvers: JobActor[];
  reviewBy?: number;
  /**
   * Config-declared ones are active, paused or revoked. Chat rules also pass through pending (waiting for approvers),
   * denied, replaced (a widened version was approved) and expired (past reviewBy without renewal).
   */
  state: StandingState;
  declaredAt: number;
  /** Chat-proposed approvals only (auto-rotation rules): who asked, the votes needed, and the card's nonce. */
  chat?: StandingChatState;
}

export type StandingState = 'active' | 'paused' | 'revoked' | 'pending' | 'denied' | 'replaced' | 'expired';

/** What a standing approval proposed in chat keeps besides the record itself. */
export interface StandingChatState {
  requestedBy: JobActor;
  /** Distinct approvers needed (N-of-M), and why more than one. */
  required: number;
  reasons: string[];
  /** Nonce of its buttons (plan card, /rules), checked like an alert card's. */
  nonce: string;
  nonceIssuedAt: number;
  /** The channel it was proposed in: its reminder goes there. */
  conversation: { conversationId: string; serviceUrl: string; tenantId: string };
  /** Id of the approval this one changes (widening or renewal); that one stays in force until this is approved. */
  replaces?: string;
  replacedBy?: string;
  approvedAt?: number;
  /** The last pause / resume / revoke / denial: who and when. */
  changedBy?: JobActor & { at: number };
  /** The renewal reminder, claimed once (its own nonce for the Renew button). */
  reminder?: { postedAt: number; nonce: string };
}

/**
 * What a standing approval applies to. Pipeline JIT: the caller. Auto-rotation: one credential (credentialIds) or a
 * selector — credential kind + scope (workspace / vault / app) + an optional tag — every field of which must match.
 */
export interface StandingSelector {
  callerObjectId?: string;
  credentialIds?: string[];
  kind?: 'databricks-pat' | 'keyvault-secret' | 'entra-password';
  scope?: string;
  tag?: { name: string; value?: string };
}

/** The template of an auto-rotation rule (id `standing:auto-rotation:<ruleId>`, trigger days-before-expiry). */
export interface AutoRotationTemplate {
  /** Name people use in chat ("R3"), unique among rules. */
  ruleName: string;
  /** Lifetime of each new credential. */
  lifetimeDays: number;
  /** How long the old credential keeps working after the new one is verified. */
  graceHours: number;
  /**
   * Per credential covered when approved: the plan facts a rotation would rely on (owner, Key Vault target...).
   * A credential whose facts changed since is never rotated automatically (it gets an ordinary card saying why).
   */
  approvedFacts?: Record<string, Record<string, string | number | boolean | null>>;
}

export const autoRotationRuleId = (ruleId: string): string => `standing:auto-rotation:${ruleId}`;

/** The template of a pipeline caller's JIT standing approval. */
export interface PipelineJitTemplate {
  callerName: string;
  workspaces: string[];
  vaults: string[];
  secretPrefix: string;
  maxHours: number;
  maxCapacity: number;
  nodeTypes: string[];
  /** UTC hours [from, to) when a request may run without a click. */
  hours: [number, number];
}

export function standingHash(a: Pick<StandingApproval<unknown>, 'kind' | 'template' | 'selector' | 'trigger'>): string {
  return createHash('sha256').update(canonicalJson({ kind: a.kind, template: a.template, selector: a.selector, trigger: a.trigger })).digest('hex');
}

export const pipelineStandingId = (callerName: string) => `standing:pipeline-jit:${callerName}`;

/** The standing approval a pipeline caller's config entry declares. */
export function pipelineStandingApproval(caller: PipelineCallerConfig, config: KeywardenConfig, now: number): StandingApproval<PipelineJitTemplate> {
  const template: PipelineJitTemplate = {
    callerName: caller.name, workspaces: [...caller.workspaces], vaults: [...caller.vaults], secretPrefix: caller.secretPrefix,
    maxHours: caller.limits.maxHours, maxCapacity: caller.limits.maxCapacity,
    nodeTypes: caller.limits.nodeTypes.length ? [...caller.limits.nodeTypes] : [config.workflows.jit.defaultNodeType],
    hours: [caller.limits.hours[0], caller.limits.hours[1]],
  };
  const base = { kind: 'pipeline-jit' as const, template, selector: { callerObjectId: caller.objectId.toLowerCase() }, trigger: { kind: 'api-call' as const } };
  return { id: pipelineStandingId(caller.name), source: 'config', ...base, planHash: standingHash(base), approvers: [], state: 'active', declaredAt: now };
}

/** The concrete request a trigger produced, as the template sees it. */
export interface PipelineJitRequest {
  workspace: string;
  hours: number;
  maxCapacity: number;
  nodeType: string;
  /** UTC hour of day of the request. */
  hourOfDay: number;
}

/** Why a concrete request is outside its standing approval, one line each (empty = it fits). */
export function outsidePipelineTemplate(t: PipelineJitTemplate, r: PipelineJitRequest): string[] {
  const out: string[] = [];
  if (!t.workspaces.includes(r.workspace)) out.push(`workspace ${r.workspace} is not one of ${t.workspaces.join(', ') || '(none)'}`);
  if (r.hours > t.maxHours) out.push(`${r.hours} h is longer than the ${t.maxHours} h allowed`);
  if (r.maxCapacity > t.maxCapacity) out.push(`pool capacity ${r.maxCapacity} is above the ${t.maxCapacity} allowed`);
  if (!t.nodeTypes.includes(r.nodeType)) out.push(`node type ${r.nodeType} is not one of ${t.nodeTypes.join(', ')}`);
  const [from, to] = t.hours;
  const inHours = from <= to ? r.hourOfDay >= from && r.hourOfDay < to : r.hourOfDay >= from || r.hourOfDay < to;
  if (!inHours) out.push(`${String(r.hourOfDay).padStart(2, '0')}:00 UTC is outside the allowed hours ${from}:00–${to}:00 UTC`);
  return out;
}

/**
 * Writes the declared standing approvals to the store; a new or changed one is audited (so config-declared approvals
 * are visible in /audit like any other), one no longer declared is marked revoked.
 */
export function syncStandingApprovals(store: Store, declared: StandingApproval[]): void {
  const ids = new Set(declared.map((d) => d.id));
  for (const approval of declared) {
    const existing = store.get<StandingApproval>('approvals', approval.id)?.value;
    if (existing && existing.planHash === approval.planHash && existing.state === approval.state) continue;
    store.put('approvals', approval.id, approval);
    store.appendAudit({
      action: existing ? 'standing-approval.changed' : 'standing-approval.declared', actor: { name: `Keywarden (${approval.source})` },
      subject: approval.id, result: 'info',
      details: { kind: approval.kind, template: approval.template, selector: approval.selector, trigger: approval.trigger, planHash: approval.planHash, previousPlanHash: existing?.planHash },
    });
  }
  for (const rec of store.list<StandingApproval>('approvals', { prefix: 'standing:' })) {
    if (ids.has(rec.id) || rec.value.state === 'revoked' || rec.value.source !== 'config') continue;
    store.put('approvals', rec.id, { ...rec.value, state: 'revoked' });
    store.appendAudit({ action: 'standing-approval.revoked', actor: { name: 'Keywarden (config)' }, subject: rec.id, result: 'info', details: { reason: 'no longer declared in config', planHash: rec.value.planHash } });
  }
}

/** What a selector needs to know about a credential (a subset of the domain Credential). */
export interface SelectableCredential {
  id: string;
  kind: string;
  where: { scope: string };
  attributes: Record<string, string | number | boolean | null>;
}

/**
 * True when every field the selector sets matches the credential. A tag matches an attribute `tag:<name>` (Key Vault
 * tags, Entra/Databricks labels mapped by the providers); without a value, the tag only has to be present.
 */
export function selectorMatches(selector: StandingSelector, c: SelectableCredential): boolean {
  if (selector.credentialIds && !selector.credentialIds.includes(c.id)) return false;
  if (selector.kind && selector.kind !== c.kind) return false;
  if (selector.scope && selector.scope !== c.where.scope) return false;
  if (selector.tag) {
    const value = c.attributes[`tag:${selector.tag.name}`];
    if (value === undefined || value === null) return false;
    if (selector.tag.value !== undefined && String(value) !== selector.tag.value) return false;
  }
  return Boolean(selector.credentialIds || selector.kind || selector.scope || selector.tag);
}
