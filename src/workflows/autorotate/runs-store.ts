/**
 * What auto-rotation remembers per (rule, credential): record `autorun:<ruleId>:<credentialId>` in `approvals`, read by
 * `/rules` (the rules side) and written only here, by compare-and-set, so two scans or two replicas never start two runs.
 * One run per credential expiry: a run record for the current expiry means "already handled".
 */
import {
  autoRunKey, isRuleActive, listAutoRotationRules, readAutoRotationRule, ruleIdOf, type AutoRotationRule, type AutoRotationRun,
} from '../../approvals/auto-rotation.js';
import type { PostedMessage } from '../../domain/chat.js';
import type { Store, StoredRecord } from '../../store/store.js';

export { ruleIdOf, type AutoRotationRule };

/**
 * The shared shape (/rules reads ruleId, credentialId, lastRunAt, lastJobId, lastResult — in words: "running",
 * "rotated (job …)", "failed: …", "skipped: …" — attempts, and pausedReason: set after a failed automatic run, the rule
 * does not fire for this credential until a person acts), plus this side's bookkeeping.
 */
export interface AutoRunRecord extends AutoRotationRun {
  ruleName?: string;
  /** The credential expiry this record's run is for. */
  expiresAt?: number | null;
  state?: 'waiting-for-card' | 'running' | 'done' | 'failed' | 'skipped';
  skipCode?: string;
  skipReason?: string;
  /** First seen waiting for its alert card (the job's thread). */
  waitingSince?: number;
  alertId?: string;
  message?: PostedMessage;
  /** Thread messages posted for lastJobId ('started', 'finished'). */
  announced?: string[];
  pausedAt?: number;
  /** The rule's plan hash when it was paused: a renewed rule (new hash) clears the pause. */
  pausedUnderPlanHash?: string;
  /** For a credential a rule run created: the credential the rule's approval covered (its approved facts apply). */
  approvedAs?: string;
}

export const runId = autoRunKey;

export function readRun(store: Store, ruleId: string, credentialId: string): StoredRecord<AutoRunRecord> | undefined {
  return store.get<AutoRunRecord>('approvals', runId(ruleId, credentialId));
}

export function runsOf(store: Store, ruleId?: string): Array<StoredRecord<AutoRunRecord>> {
  return store.list<AutoRunRecord>('approvals', { prefix: ruleId ? `autorun:${ruleId}:` : 'autorun:' });
}

/**
 * Compare-and-set loop on one run record. `change` gets the current record (or a fresh one) and returns the new one, or
 * undefined for "nothing to do". Returns the stored result, or undefined when nothing was written.
 */
export function updateRun(store: Store, ruleId: string, credentialId: string, change: (run: AutoRunRecord, existed: boolean) => AutoRunRecord | undefined): AutoRunRecord | undefined {
  const id = runId(ruleId, credentialId);
  for (let attempt = 0; attempt < 10; attempt++) {
    const current = store.get<AutoRunRecord>('approvals', id);
    const next = change(current ? structuredClone(current.value) : { ruleId, credentialId, attempts: 0 }, Boolean(current));
    if (!next) return undefined;
    const written = current ? store.compareAndSet('approvals', id, current.version, next) : store.insert('approvals', id, next);
    if (written) return written.value;
  }
  throw new Error(`auto-rotation run ${id} kept changing under us; another replica is looping — check the logs`);
}

/** Rules that may fire now: in force (approved, not paused/revoked/replaced, before their review date). */
export function activeRules(store: Store, now: number): AutoRotationRule[] {
  return listAutoRotationRules(store).filter((r) => r.trigger.kind === 'days-before-expiry' && isRuleActive(r, now));
}

export const readRule = readAutoRotationRule;

/** "Alex Wilber and Megan Bowen", "A, B and C". */
export function approverNames(rule: Pick<AutoRotationRule, 'approvers'>): string {
  const names = rule.approvers.map((a) => a.name);
  if (names.length <= 1) return names[0] ?? 'nobody';
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

export const ruleLabel = (rule: AutoRotationRule): string => `rule ${rule.template.ruleName}`;
