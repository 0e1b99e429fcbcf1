/**
 * Auto-rotation runs: after every scan, each active rule fires for each credential it selects whose expiry is within
 * the rule's days — through the same journaled rotation job a click starts (same plan, same drift checks, grace
 * window, Rollback and compensation), with the rule as its approval and the rule's approvers as its approvers.
 * The run is claimed with the job in one transaction (run record + job + subject lock), so a second scan or a second
 * replica never starts it twice. The job's thread is the credential's alert card: a run waits (bounded) for the card
 * to be posted. A credential the rule may not rotate gets a line on its card saying why, and an audit record.
 */
import { currentAlert, bumped, mutateAlert, pushHistory, queueCard, setAlertProgress } from '../../alerts/lifecycle.js';
import type { AlertRecord } from '../../alerts/types.js';
import { DAY_MS, MINUTE_MS, type Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential } from '../../domain/credential.js';
import { TERMINAL_STATES, type JobRecord } from '../../domain/job.js';
import { formatTime } from '../../domain/plan.js';
import { eachPage, scanViewOf, type ScanResult, type ScanView } from '../../domain/scan.js';
import type { Logger } from '../../logging/logger.js';
import type { Store } from '../../store/store.js';
import { newId, STEPS } from '../actions.js';
import { newJobRecord, type JobEngine } from '../engine/journal.js';
import { decide, type Decision } from './gate.js';
import { isSelected } from './rule-select.js';
import {
  activeRules, approverNames, readRule, readRun, ruleIdOf, ruleLabel, runId, runsOf, updateRun, type AutoRotationRule, type AutoRunRecord,
} from './runs-store.js';

export interface AutoRotationFireOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger?: Logger;
  engine: JobEngine;
  /** How long a due run waits for its credential's card (its thread) before it runs without one (default 15 min). */
  cardWaitMs?: number;
  /** Told after a run started (the announcer posts to the thread). */
  onStarted?: (run: AutoRunRecord) => void;
}

export type FireOutcome = 'started' | 'waiting' | 'skipped' | 'none';

const actorOf = (rule: AutoRotationRule) => ({ aadObjectId: rule.id, name: `auto-rotation ${ruleLabel(rule)}` });

export class AutoRotationFirer {
  constructor(private readonly o: AutoRotationFireOptions) {}

  /**
   * After a scan: every active rule × every credential it selects that is due (expires within the rule's days). Reads
   * only those, page by page, yielding between pages. Returns how many runs started.
   */
  async onScan(result: ScanResult): Promise<number> {
    const now = this.o.clock.now();
    const rules = activeRules(this.o.store, now);
    const view = scanViewOf(result);
    let started = 0;
    for (const rule of rules) {
      for await (const page of eachPage(dueCandidates(view, rule, now))) {
        // The same selection the rule's approvers saw (a Key Vault secret's tags select the credential it holds).
        for (const c of page.filter((x) => isSelected(view, rule.selector, x))) {
          try {
            if (this.handle(rule, c, now) === 'started') started += 1;
          } catch (err) {
            this.o.logger?.error({ err, rule: rule.id, credentialId: c.id }, 'auto-rotation could not evaluate a credential; the next scan tries again');
          }
        }
      }
    }
    return started;
  }

  /** Runs waiting for their card: they start once it is posted (or once the wait is over). */
  retryWaiting(): void {
    const now = this.o.clock.now();
    for (const rec of runsOf(this.o.store)) {
      const run = rec.value;
      if (run.state !== 'waiting-for-card') continue;
      const rule = readRule(this.o.store, run.ruleId);
      const alert = currentAlert(this.o.store, run.credentialId)?.value;
      if (!rule || !alert || !activeRules(this.o.store, now).some((r) => r.id === rule.id)) continue;
      try {
        this.handle(rule, alert.credential, now);
      } catch (err) {
        this.o.logger?.error({ err, run: rec.id }, 'auto-rotation could not start a waiting run; trying again');
      }
    }
  }

  /** One rule, one credential it selects. */
  handle(rule: AutoRotationRule, c: Credential, now: number): FireOutcome {
    const days = rule.trigger.days ?? 14;
    if (c.expiresAt === null || c.expiresAt === -1 || now < c.expiresAt - days * DAY_MS) return 'none';
    const run = readRun(this.o.store, ruleIdOf(rule), c.id)?.value;
    if (run?.pausedReason) return 'none';
    if (run && run.expiresAt === c.expiresAt && (run.state === 'running' || run.state === 'done')) return 'none';
    if (busyWith(this.o.store, c.id)) return 'none';
    const decision = decide(this.o.store, this.o.config, rule, c, now);
    if (decision.kind === 'skip') {
      this.skip(rule, c, decision, now);
      return 'skipped';
    }
    return this.start(rule, c, decision, run, now);
  }

  private start(rule: AutoRotationRule, c: Credential, decision: Extract<Decision, { kind: 'fire' }>, run: AutoRunRecord | undefined, now: number): FireOutcome {
    const { store } = this.o;
    const ruleId = ruleIdOf(rule);
    const alert = currentAlert(store, c.id)?.value;
    const message = alert?.message?.activityId ? alert.message : undefined;
    const waitingSince = run?.state === 'waiting-for-card' && run.expiresAt === c.expiresAt ? run.waitingSince ?? now : now;
    if (!message && alert?.channel && now - waitingSince < (this.o.cardWaitMs ?? 15 * MINUTE_MS)) {
      // The job's thread is the credential's card: have it posted first (a digest-only alert gets its card now).
      if (!alert.card) showCard(store, alert.id, now);
      updateRun(store, ruleId, c.id, (r) => (r.state === 'waiting-for-card' && r.expiresAt === c.expiresAt ? undefined
        : { ...r, ruleName: rule.template.ruleName, expiresAt: c.expiresAt, state: 'waiting-for-card', waitingSince, alertId: alert.id, lastResult: 'waiting for the credential card to be posted' }));
      return 'waiting';
    }
    const { plan, hash } = decision;
    const job = newJobRecord({
      id: newId('rot'), kind: plan.kind, subject: c.id, steps: STEPS[plan.kind], approvalId: rule.id, plan, planHash: hash,
      approvedBy: rule.approvers.map(({ aadObjectId, name }) => ({ aadObjectId, name })), requestedBy: actorOf(rule),
      ...(message ? { message } : {}), ...(alert ? { alertId: alert.id } : {}), now,
    });
    const started = store.transaction((): AutoRunRecord | undefined => {
      if (busyWith(store, c.id)) return undefined;
      const current = readRun(store, ruleId, c.id);
      const r = current?.value;
      if (r?.pausedReason || (r && r.expiresAt === c.expiresAt && (r.state === 'running' || r.state === 'done'))) return undefined;
      const next: AutoRunRecord = {
        ...(r ?? { ruleId, credentialId: c.id, attempts: 0 }),
        ruleName: rule.template.ruleName, expiresAt: c.expiresAt, state: 'running', lastRunAt: now, lastJobId: job.id, lastResult: 'running',
        attempts: (r?.attempts ?? 0) + 1, announced: [], approvedAs: decision.approvedAs,
        ...(alert ? { alertId: alert.id } : {}), ...(message ? { message } : {}),
        skipCode: undefined, skipReason: undefined, waitingSince: undefined,
      };
      const claimed = current ? store.compareAndSet('approvals', current.id, current.version, next) : store.insert('approvals', runId(ruleId, c.id), next);
      if (!claimed) return undefined;
      if (!store.insert<JobRecord>('jobs', job.id, job)) throw new Error(`job id ${job.id} already exists`);
      store.put('approvals', `active:${c.id}`, { jobId: job.id });
      return next;
    });
    if (!started) return 'none';
    store.appendAudit({
      action: 'autorotate.run', actor: actorOf(rule), subject: c.id, result: 'info',
      details: {
        ruleId, ruleName: rule.template.ruleName, rulePlanHash: rule.planHash, approvers: rule.approvers, jobId: job.id, planHash: hash,
        plan: plan.operations, before: plan.facts, trigger: rule.trigger, expiresAt: c.expiresAt, thread: Boolean(message),
      },
    });
    if (alert) setAlertProgress(store, alert.id, `Rotating automatically under ${ruleLabel(rule)} approved by ${approverNames(rule)} since ${formatTime(now)} (job ${job.id})`, now, { jobId: job.id });
    this.o.logger?.info({ rule: rule.id, credentialId: c.id, jobId: job.id, thread: Boolean(message) }, 'auto-rotation started a rotation under its rule');
    this.o.engine.kick(job.id);
    this.o.onStarted?.(started);
    return 'started';
  }

  /** Why the rule did not rotate it: on its card (once per reason) and in the audit log. */
  private skip(rule: AutoRotationRule, c: Credential, decision: Extract<Decision, { kind: 'skip' }>, now: number): void {
    const { store } = this.o;
    const ruleId = ruleIdOf(rule);
    const written = updateRun(store, ruleId, c.id, (r) => (r.state === 'skipped' && r.skipReason === decision.reason && r.expiresAt === c.expiresAt ? undefined
      : { ...r, ruleName: rule.template.ruleName, expiresAt: c.expiresAt, state: 'skipped', skipCode: decision.code, skipReason: decision.reason, lastResult: `skipped: ${decision.reason}` }));
    if (!written) return;
    store.appendAudit({
      action: 'autorotate.skipped', actor: actorOf(rule), subject: c.id, result: 'refused',
      details: { ruleId, ruleName: rule.template.ruleName, rulePlanHash: rule.planHash, code: decision.code, reason: decision.reason, expiresAt: c.expiresAt },
    });
    const alert = currentAlert(store, c.id)?.value;
    if (alert && !alert.progress?.jobId) showCard(store, alert.id, now, `Not rotated automatically under ${ruleLabel(rule)}: ${decision.reason}`);
    this.o.logger?.info({ rule: rule.id, credentialId: c.id, code: decision.code }, `auto-rotation skipped: ${decision.reason}`);
  }
}

/** The scan's credentials a rule may fire for now: its kind and scope (or its ids), expiring within its days. */
function* dueCandidates(view: ScanView, rule: AutoRotationRule, now: number): Iterable<Credential[]> {
  const { selector } = rule;
  if (selector.credentialIds) {
    yield selector.credentialIds.map((id) => view.get(id)?.credential).filter((c): c is Credential => c !== undefined);
    return;
  }
  // Due credentials by expiry; kind and scope together narrow them further through the (kind, scope) index.
  const where = {
    expiresBefore: now + (rule.trigger.days ?? 14) * DAY_MS + 1,
    ...(selector.kind && selector.scope !== undefined ? { kind: selector.kind, scope: selector.scope } : {}),
  };
  for (const page of view.pages({ where, pageSize: 500 })) yield page.map((r) => r.credential);
}

/** A job still acting on the credential (a click's rotation, or a run of another rule). */
function busyWith(store: Store, credentialId: string): JobRecord | undefined {
  const lock = store.get<{ jobId: string }>('approvals', `active:${credentialId}`)?.value;
  const job = lock ? store.get<JobRecord>('jobs', lock.jobId)?.value : undefined;
  return job && !TERMINAL_STATES.includes(job.state) ? job : undefined;
}

/** Gives the alert its own card (a digest-only alert too), optionally with a status line; queued for delivery. */
export function showCard(store: Store, alertId: string, now: number, line?: string): AlertRecord | undefined {
  const done = mutateAlert(store, alertId, (a) => {
    if (a.state === 'resolved' || (a.card && (line === undefined || a.progress?.text === line))) return undefined;
    const next = bumped({ ...a, card: true, ...(line ? { progress: { text: line, at: now } } : {}) }, now);
    return line ? { ...next, history: pushHistory(a, { at: now, event: 'auto-rotation', text: line }) } : next;
  });
  if (done) queueCard(store, done.value, now, 10);
  return done?.value;
}
