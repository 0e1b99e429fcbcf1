/**
 * What people hear about automatic runs, in the credential card's thread: that a rule started a rotation, that it
 * rotated (with the evidence), or — when the job failed after its bounded retries and compensation — an escalation
 * that @mentions the rule's approvers with the runway left, after which the rule is paused for that credential until
 * a person acts (a rotation by hand, or a renewed rule). Driven from the job records on a timer, so a restart between
 * the job's end and the message still posts it (once: each message is marked on the run record after it is sent).
 */
import { currentAlert, setAlertProgress } from '../../alerts/lifecycle.js';
import type { Clock } from '../../clock.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../clock.js';
import type { ChatGateway, MessageContent } from '../../domain/chat.js';
import { TERMINAL_STATES, type JobRecord } from '../../domain/job.js';
import { formatDuration, formatTime, shortHash } from '../../domain/plan.js';
import type { Logger } from '../../logging/logger.js';
import type { Store } from '../../store/store.js';
import { shortVersion, tail } from '../engine/keyvault-steps.js';
import { lastDoneJob } from '../engine/open-jobs.js';
import { approverNames, readRule, runsOf, updateRun, type AutoRotationRule, type AutoRunRecord } from './runs-store.js';

export interface AutoRotationAnnouncerOptions {
  store: Store;
  clock: Clock;
  logger?: Logger;
  chat: () => ChatGateway | undefined;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** "2 d 4 h", "5 h 10 min", "expired 3 h ago". */
export function runwayText(expiresAt: number, now: number): string {
  if (!(expiresAt > 0)) return 'it has no expiry date';
  const ms = expiresAt - now;
  const span = (x: number) => (x >= DAY_MS ? `${Math.floor(x / DAY_MS)} d ${Math.floor((x % DAY_MS) / HOUR_MS)} h` : `${Math.floor(x / HOUR_MS)} h ${Math.floor((x % HOUR_MS) / MINUTE_MS)} min`);
  return ms <= 0 ? `it expired ${span(-ms)} ago (${formatTime(expiresAt)})` : `it expires in ${span(ms)} (${formatTime(expiresAt)})`;
}

const expiryOf = (job: JobRecord): number => num(job.plan.facts.expiryTime ?? job.plan.facts.expiresAt);
const nounOf = (job: JobRecord): string => (job.kind === 'rotate-pat' ? 'token' : 'client secret');
const ruleWords = (rule: AutoRotationRule | undefined, run: AutoRunRecord): string => `rule ${rule?.template.ruleName ?? run.ruleName ?? run.ruleId}`;

export function startedText(job: JobRecord, rule: AutoRotationRule | undefined, run: AutoRunRecord, now: number): string {
  const days = rule?.trigger.days;
  const grace = num(job.plan.parameters.graceHours);
  return `Rotating automatically under ${ruleWords(rule, run)} approved by ${rule ? approverNames(rule) : job.approvedBy.map((a) => a.name).join(' and ')}`
    + `${days ? ` (it fires ${days} d before expiry; ${runwayText(expiryOf(job), now)})` : ''}. Job ${job.id}, plan ${shortHash(job.planHash)}: ${job.plan.title}; `
    + `the old ${nounOf(job)} is removed ${grace > 0 ? `${formatDuration(grace * HOUR_MS)} after` : 'right after'} the new one is verified (Rollback is offered until then).`;
}

/** The evidence of a finished automatic rotation. */
export function rotatedText(job: JobRecord, rule: AutoRotationRule | undefined, run: AutoRunRecord): string {
  const f = job.facts;
  const p = job.plan.facts;
  const isPat = job.kind === 'rotate-pat';
  const newId = isPat ? f.newTokenId : f.newKeyId;
  const newExpiry = num(isPat ? f.newTokenExpiry : f.newKeyExpiry);
  const old = isPat ? p.tokenId : p.keyId;
  const goneAt = num(isPat ? f.oldRevokedAt : f.oldRemovedAt);
  return `Rotated automatically under ${ruleWords(rule, run)} approved by ${rule ? approverNames(rule) : job.approvedBy.map((a) => a.name).join(' and ')}. `
    + `Evidence: job ${job.id}, plan ${shortHash(job.planHash)}${rule ? `, rule plan ${shortHash(rule.planHash)}` : ''}; new ${nounOf(job)} ${tail(str(newId))}`
    + `${newExpiry > 0 ? ` (expires ${formatTime(newExpiry)})` : ''}, Key Vault ${str(p.vault)}/${str(p.secret)} version ${shortVersion(f.kvVersion)}, `
    + `verified at ${formatTime(num(f.verifiedAt))}; old ${nounOf(job)} ${tail(str(old))} ${isPat ? 'revoked' : 'removed'} at ${formatTime(goneAt)} after the grace window.`;
}

export function escalationText(job: JobRecord, rule: AutoRotationRule | undefined, run: AutoRunRecord, now: number): MessageContent {
  const people = (rule?.approvers ?? job.approvedBy).filter((a) => a.aadObjectId && !a.aadObjectId.startsWith('standing:'));
  const mentions = people.map((a) => ({ aadObjectId: a.aadObjectId, name: a.name }));
  const step = job.error?.step;
  const attempts = step ? job.steps.find((s) => s.name === step)?.attempts ?? 1 : 1;
  const undo = job.state === 'compensated' ? 'what it created was undone and the old credential still works'
    : job.state === 'cancelled' ? 'nothing was changed' : `undoing it FAILED (${job.compensation?.error ?? 'unknown'}) — check the credential by hand`;
  const who = mentions.map((m) => `<at>${m.name}</at>`).join(' ');
  const text = `${who ? `${who} ` : ''}Automatic rotation under ${ruleWords(rule, run)} failed${step ? ` at ${step} after ${attempts} attempt${attempts === 1 ? '' : 's'}` : ''}: `
    + `${job.error?.message ?? job.state}. ${undo[0]!.toUpperCase()}${undo.slice(1)}; ${runwayText(expiryOf(job), now)}. `
    + `${ruleWords(rule, run)[0]!.toUpperCase()}${ruleWords(rule, run).slice(1)} is paused for this credential until someone acts: rotate it by hand with Rotate on its card (that clears the pause), or renew the rule. Job ${job.id}.`;
  return { text, ...(mentions.length ? { mentions } : {}) };
}

export class AutoRotationAnnouncer {
  private running = false;

  constructor(private readonly o: AutoRotationAnnouncerOptions) {}

  /** One pass over the runs: post what is due, settle finished runs, lift pauses a person resolved. */
  async tick(): Promise<void> {
    if (this.running || !this.o.store.isOpen) return;
    this.running = true;
    try {
      for (const rec of runsOf(this.o.store)) {
        try {
          await this.visit(rec.value);
        } catch (err) {
          this.o.logger?.warn({ err, run: rec.id }, 'auto-rotation could not report a run; will try again');
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async visit(run: AutoRunRecord): Promise<void> {
    const { store } = this.o;
    if (run.pausedReason) return this.maybeResume(run);
    if (!run.lastJobId || run.state === 'skipped' || run.state === 'waiting-for-card') return;
    if (run.state !== 'running' && (run.announced ?? []).includes('finished')) return;
    const job = store.get<JobRecord>('jobs', run.lastJobId)?.value;
    if (!job) return;
    const rule = readRule(store, run.ruleId);
    const announced = run.announced ?? [];
    if (run.message && !announced.includes('started')) {
      await this.post(run, { text: startedText(job, rule, run, this.o.clock.now()) });
      this.mark(run, 'started');
    }
    if (!TERMINAL_STATES.includes(job.state)) return;
    if (run.state === 'running') this.settle(run, job, rule);
    if (!announced.includes('finished')) {
      const content = job.state === 'done' ? { text: rotatedText(job, rule, run) } : escalationText(job, rule, run, this.o.clock.now());
      await this.post(run, content);
      this.mark(run, 'finished');
    }
  }

  /** The run's outcome on its record (before anything is posted: a chat outage must not keep the rule firing). */
  private settle(run: AutoRunRecord, job: JobRecord, rule: AutoRotationRule | undefined): void {
    const { store } = this.o;
    const now = this.o.clock.now();
    const ok = job.state === 'done';
    const reason = ok ? undefined : `the automatic rotation failed (job ${job.id}: ${job.error?.message ?? job.state})`;
    const written = updateRun(store, run.ruleId, run.credentialId, (r) => (r.state !== 'running' || r.lastJobId !== job.id ? undefined : {
      ...r, state: ok ? 'done' : 'failed', lastResult: ok ? `rotated (job ${job.id})` : `failed: ${job.error?.message ?? job.state}`,
      ...(reason ? { pausedReason: reason, pausedAt: now, ...(rule ? { pausedUnderPlanHash: rule.planHash } : {}) } : {}),
    }));
    if (!written) return;
    const actor = { aadObjectId: `standing:auto-rotation:${run.ruleId}`, name: `auto-rotation rule ${run.ruleName ?? run.ruleId}` };
    const details = { ruleId: run.ruleId, ruleName: run.ruleName, jobId: job.id, planHash: job.planHash, state: job.state, facts: job.facts, error: job.error?.message };
    if (ok) {
      store.appendAudit({ action: 'autorotate.done', actor, subject: run.credentialId, result: 'ok', details });
      return;
    }
    store.appendAudit({ action: 'autorotate.failed', actor, subject: run.credentialId, result: 'failed', details });
    store.appendAudit({ action: 'autorotate.paused', actor, subject: run.credentialId, result: 'info', details: { ...details, reason, approvers: rule?.approvers } });
    const alert = currentAlert(store, run.credentialId)?.value;
    if (alert) setAlertProgress(store, alert.id, `Automatic rotation under rule ${run.ruleName ?? run.ruleId} failed (job ${job.id}); the rule is paused for this credential — rotate it by hand`, now);
  }

  /** A person rotated the credential by hand after the pause, or the rule was renewed: the rule may fire again. */
  private maybeResume(run: AutoRunRecord): void {
    const { store } = this.o;
    const rule = readRule(store, run.ruleId);
    const renewed = Boolean(rule && run.pausedUnderPlanHash && rule.planHash !== run.pausedUnderPlanHash);
    // The last rotation of the credential to finish done (a pointer, not a read of every job): by hand and after the pause.
    const byHand = renewed ? undefined : (['rotate-pat', 'rotate-entra'] as const).map((kind) => lastDoneJob(store, kind, run.credentialId))
      .find((j) => j !== undefined && !j.approvalId.startsWith('standing:') && j.createdAt >= (run.pausedAt ?? 0));
    if (!renewed && !byHand) return;
    const why = renewed ? `${ruleWords(rule, run)} was renewed` : `rotated by hand by ${byHand!.approvedBy.map((a) => a.name).join(' and ')} (job ${byHand!.jobId})`;
    const written = updateRun(store, run.ruleId, run.credentialId, (r) => (r.pausedReason ? { ...r, pausedReason: undefined, pausedAt: undefined, pausedUnderPlanHash: undefined, lastResult: `resumed: ${why}` } : undefined));
    if (written) store.appendAudit({ action: 'autorotate.resumed', actor: { name: 'Keywarden' }, subject: run.credentialId, result: 'info', details: { ruleId: run.ruleId, why } });
  }

  private async post(run: AutoRunRecord, content: MessageContent): Promise<void> {
    if (!run.message) return;
    const chat = this.o.chat();
    if (!chat) throw new Error('Teams is not connected yet; the message is posted when it is');
    await chat.replyInThread(run.message, content, { signal: AbortSignal.timeout(30_000) });
  }

  private mark(run: AutoRunRecord, key: string): void {
    updateRun(this.o.store, run.ruleId, run.credentialId, (r) => (r.lastJobId !== run.lastJobId || (r.announced ?? []).includes(key) ? undefined : { ...r, announced: [...(r.announced ?? []), key] }));
    run.announced = [...(run.announced ?? []), key];
  }
}
