/**
 * A plan is what the approver approves: the exact operations in words, plus the facts they were based on.
 * Its hash is stored with the approval and checked again right before the job acts, so a credential that
 * changed between the click and the execution is never acted on blindly.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import type { JobFacts, JobKind } from './job.js';

export interface ActionPlan {
  kind: JobKind;
  /** Credential id or JIT request id. */
  subject: string;
  /** One line for the card header, e.g. "Rotate PAT adf-etl in ws-prod". */
  title: string;
  /** The before-state the plan relies on; re-read from the clouds and compared at execution. */
  facts: JobFacts;
  /** Choices made at approval (lifetime, grace hours, TTL...). */
  parameters: JobFacts;
  /** The exact operations, in the order they run, in words a reviewer can check. */
  operations: string[];
  /** Why the action may be refused or is limited (e.g. user-owned PATs cannot be created by API). */
  warnings?: string[];
}

/** sha256 of the plan's kind, subject, facts and parameters (the words are derived from them). */
export function planHash(plan: Pick<ActionPlan, 'kind' | 'subject' | 'facts' | 'parameters'>): string {
  return createHash('sha256')
    .update(canonicalJson({ kind: plan.kind, subject: plan.subject, facts: plan.facts, parameters: plan.parameters }))
    .digest('hex');
}

/** A value only known when the job runs, in words Teams shows (it drops "<…>" as markup). */
export function filledInLater(what: string): string {
  return `[${what}, filled in when the job runs]`;
}

/** Short form for cards and messages. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

/** What changed between the approved facts and the facts read just now, one line each. Empty = no drift. */
export function describeDrift(approved: JobFacts, current: JobFacts, labels: Record<string, string> = {}): string[] {
  const keys = new Set([...Object.keys(approved), ...Object.keys(current)]);
  const changes: string[] = [];
  for (const key of [...keys].sort()) {
    const before = approved[key] ?? null;
    const after = current[key] ?? null;
    if (before === after) continue;
    const label = labels[key] ?? key;
    changes.push(`${label} was ${formatFact(key, before)} when approved and is now ${formatFact(key, after)}`);
  }
  return changes;
}

function formatFact(key: string, value: string | number | boolean | null): string {
  if (value === null) return 'absent';
  if (typeof value === 'number' && /At$|Time$/i.test(key)) return value === -1 ? 'never' : new Date(value).toISOString();
  return JSON.stringify(value);
}

/** Thrown when the real state no longer matches the approved plan; the job stops without acting. */
export class PlanDriftError extends Error {
  override readonly name = 'PlanDriftError';
  readonly code = 'PLAN_DRIFT';
  readonly statusCode = 409;
  constructor(readonly changes: string[]) {
    super(`the credential changed since the plan was approved: ${changes.join('; ')} — review the new state and approve again`);
  }
}

/** Formats epoch ms as "2026-05-04 12:00 UTC" for plans and messages. */
export function formatTime(epochMs: number | null | undefined): string {
  if (epochMs === null || epochMs === undefined) return 'unknown';
  if (epochMs === -1) return 'never';
  return new Date(epochMs).toISOString().replace('T', ' ').replace(/:\d\d\.\d{3}Z$/, ' UTC');
}

/** "1 d", "36 h", "90 d". */
export function formatDuration(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours >= 48 && Number.isInteger(hours / 24)) return `${hours / 24} d`;
  if (hours >= 1) return `${Math.round(hours * 10) / 10} h`;
  return `${Math.round(ms / 60_000)} min`;
}
