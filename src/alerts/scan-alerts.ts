import type { KeywardenConfig } from '../config/schema.js';
import type { Credential, Finding } from '../domain/credential.js';
import { formatExpiry, thresholdFor, type ExpiryThreshold } from '../domain/expiry.js';
import type { JobRecord } from '../domain/job.js';
import { policyFor } from '../domain/policy.js';
import { credentialsInRotation, rotationText, type CredentialInRotation } from '../domain/rotation-state.js';
import { scanViewOf, yieldToLoop, type ScanResult, type ScanView } from '../domain/scan.js';
import type { Store } from '../store/store.js';
import { queueScanDigests } from './digest.js';
import { KIND_LABELS } from './cards.js';
import {
  bumped, cardFindings, claim, currentAlert, deservesCard, isUrgent, isWorse, mutateAlert, openAlert, pushHistory,
  queueCard, reopenAfterRollback, resolveAlert, thresholdKey, wake,
} from './lifecycle.js';
import { queueOwnerNotice } from './owners.js';
import { resolvedByDisappearance, resolvedInPlace, scopeUnseen } from './resolution.js';
import { routeFor, type SupportChannel } from './routing.js';
import type { AlertRecord, AlertResolution } from './types.js';

/**
 * Turns one ScanResult into alert changes: open, raise (claim first), resolve, and queue what must be sent.
 * Idempotent: the same scan applied twice, by one process or two, changes nothing the second time.
 */

export interface ScanAlertsOutcome {
  opened: string[];
  /** Alerts that crossed a threshold or got a severe finding in this scan (claimed here). */
  raised: string[];
  resolved: string[];
  /** Alerts that deserve a card but have no support channel to go to. */
  unrouted: string[];
  digests: string[];
}

function thresholdOf(credential: Credential, config: KeywardenConfig, now: number): ExpiryThreshold | null {
  const rules = policyFor(config.policy, credential.kind, credential.where.scope);
  return thresholdFor(credential, rules.thresholdsDays, now);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The resolution a rotation in its grace window (or being rolled back) shows: Keywarden is already handling it. */
function rotationResolution(r: CredentialInRotation, now: number): AlertResolution {
  return { kind: 'rotated', text: rotationText(r), at: now, ...(r.revokeAt !== undefined ? { rotation: { revokeAt: r.revokeAt, noun: r.noun } } : {}) };
}

/**
 * Why a scanned credential raises nothing of its own: a Key Vault secret whose card is the held credential's, a
 * disabled credential, or an old credential Keywarden's rotation revokes itself at the end of the grace window.
 */
function quietReason(credential: Credential, held: Credential | undefined, rotation: CredentialInRotation | undefined, now: number): AlertResolution | 'wait' | undefined {
  if (held) return { kind: 'merged', text: `shown on the card of ${KIND_LABELS[held.kind]} ${held.name} in ${held.where.label}, which this secret holds`, at: now };
  if (credential.enabled === false) return { kind: 'disabled', text: `${KIND_LABELS[credential.kind]} is disabled`, at: now };
  // While a rollback runs, the rotation's alert is about to reopen: neither resolve nor raise anything meanwhile.
  if (rotation?.state === 'rolling-back') return 'wait';
  if (rotation) return rotationResolution(rotation, now);
  return undefined;
}

/**
 * Reads the jobs: a rotation's grace window, once known, shows on the alert it resolved ("old token revoked at …");
 * a rollback whose report was lost (crash) still reopens its alert.
 */
function reconcileJobs(store: Store, jobs: JobRecord[], inRotation: Map<string, CredentialInRotation>, now: number): void {
  for (const r of inRotation.values()) {
    if (r.state !== 'grace' || !r.alertId || r.revokeAt === undefined) continue;
    const done = mutateAlert(store, r.alertId, (a) => (a.state === 'resolved' && a.resolution?.kind === 'rotated' && !a.resolution.rotation
      ? bumped({ ...a, resolution: { ...a.resolution, rotation: { revokeAt: r.revokeAt!, noun: r.noun } } }, now)
      : undefined));
    if (done) queueCard(store, done.value, now);
  }
  for (const job of jobs) {
    if (job.kind !== 'rollback' || job.state !== 'done' || !job.alertId || inRotation.has(job.subject)) continue;
    const alert = store.get<AlertRecord>('alerts', job.alertId)?.value;
    if (alert?.state !== 'resolved' || alert.resolution?.kind !== 'rotated' || alert.resolution.at > (job.finishedAt ?? now)) continue;
    reopenAfterRollback(store, job.alertId, { text: `rotation rolled back (job ${job.id})`, at: now, ...(job.approvedBy[0] ? { by: job.approvedBy[0] } : {}) });
  }
}


/**
 * Applies a scan page by page (yielding between pages, so a large estate never holds the bot's event loop): the
 * credentials with findings or held in a secret, then those with an open alert that had neither.
 */
export async function applyScan(store: Store, config: KeywardenConfig, scan: ScanResult, channels: SupportChannel[]): Promise<ScanAlertsOutcome> {
  const now = scan.finishedAt;
  const view = scanViewOf(scan);
  const outcome: ScanAlertsOutcome = { opened: [], raised: [], resolved: [], unrouted: [], digests: [] };
  const newByChannel = new Map<string, Set<string>>();
  const jobs = store.list<JobRecord>('jobs').map((r) => r.value);
  const inRotation = credentialsInRotation(jobs);
  reconcileJobs(store, jobs, inRotation, now);

  // Credentials that vanished from a scope that scanned cleanly: replaced or removed.
  const alerted = new Set<string>();
  // By id, a record at a time: the alerts grow with the estate, so neither all records nor one long loop.
  const alertIds = store.listIds('alerts');
  for (let i = 0; i < alertIds.length; i++) {
    if (i > 0 && i % 200 === 0) await yieldToLoop();
    const alert = store.get<AlertRecord>('alerts', alertIds[i]!)?.value;
    if (!alert || alert.state === 'resolved') continue;
    if (view.get(alert.credentialId)) {
      alerted.add(alert.credentialId);
      continue;
    }
    if (scopeUnseen(alert.credential, scan)) continue;
    if (resolveAlert(store, alert.id, resolvedByDisappearance(alert.credential, scan, now))) outcome.resolved.push(alert.id);
  }
  await yieldToLoop();

  const ctx: ApplyContext = { store, config, scan, channels, now, outcome, newByChannel, inRotation };
  for (const page of view.pages({ relevantOnly: true, pageSize: 200 })) {
    for (const { credential, findings } of page) {
      alerted.delete(credential.id);
      applyCredential(ctx, credential, findings, view);
    }
    await yieldToLoop();
  }
  let count = 0;
  for (const id of alerted) {
    const seen = view.get(id);
    if (seen) applyCredential(ctx, seen.credential, seen.findings, view);
    if (++count % 200 === 0) await yieldToLoop();
  }

  outcome.digests = await queueScanDigests(store, config, newByChannel, scan.id, now);
  return outcome;
}

interface ApplyContext {
  store: Store;
  config: KeywardenConfig;
  scan: ScanResult;
  channels: SupportChannel[];
  now: number;
  outcome: ScanAlertsOutcome;
  newByChannel: Map<string, Set<string>>;
  inRotation: Map<string, CredentialInRotation>;
}

/** One credential: open, raise (claim first), resolve, and queue what must be sent. */
function applyCredential(ctx: ApplyContext, credential: Credential, findings: Finding[], view: ScanView): void {
  const { store, config, scan, channels, now, outcome, newByChannel, inRotation } = ctx;
  // One card per chain: a secret holding a scanned credential shows its findings on that credential's card.
  const held = credential.kind === 'keyvault-secret' && credential.holds && credential.holds !== credential.id ? view.get(credential.holds)?.credential : undefined;
  {
    const own = [...findings, ...view.holders(credential.id).flatMap((h) => h.findings)];
    const threshold = thresholdOf(credential, config, now);
    const severe = cardFindings(own, config);
    let existing = currentAlert(store, credential.id);
    const quiet = quietReason(credential, held, inRotation.get(credential.id), now);
    if (quiet === 'wait') return;
    if (quiet) {
      const done = existing && (resolvedInPlace(existing.value.credential, credential, now) ?? quiet);
      if (existing && done && resolveAlert(store, existing.value.id, done)) outcome.resolved.push(existing.value.id);
      return;
    }

    if (existing) {
      const done = resolvedInPlace(existing.value.credential, credential, now)
        ?? (threshold === null && severe.length === 0 && existing.value.threshold === null
          ? { kind: 'extended' as const, text: 'the findings that raised this alert no longer apply', at: now }
          : undefined);
      if (done) {
        if (resolveAlert(store, existing.value.id, done)) outcome.resolved.push(existing.value.id);
        existing = undefined;
      }
    }
    if (!existing && threshold === null && severe.length === 0) return;

    const route = routeFor(credential, channels, config)?.key;
    if (!existing) {
      const opened = openAlert(store, credential, route, now);
      existing = opened.record;
      if (opened.created) outcome.opened.push(existing.value.id);
    }
    const alertId = existing.value.id;

    // Claim each new threshold and each new severe finding before anything can be sent for it.
    const raisedThreshold = isWorse(threshold, existing.value.threshold)
      && claim(store, `${credential.id}#${thresholdKey(threshold!)}#${alertId}`, { alertId, at: now, scanId: scan.id });
    const knownSevere = new Set(cardFindings(existing.value.findings, config).map((f) => f.code));
    const newSevere = severe.filter((f) => !knownSevere.has(f.code)
      && claim(store, `${credential.id}#finding:${f.code}#${alertId}`, { alertId, at: now, scanId: scan.id }));

    const written = mutateAlert(store, alertId, (a) => {
      if (a.state === 'resolved') return undefined;
      let next: AlertRecord = { ...a, credential, findings: own };
      if (!next.message && route && next.channel !== route) next.channel = route;
      let visible = false;
      if (raisedThreshold && isWorse(threshold, a.threshold)) {
        next.threshold = threshold;
        next.history = pushHistory(next, { at: now, event: 'threshold', text: `crossed the ${thresholdKey(threshold!)} threshold (expires ${formatExpiry(credential.expiresAt, now)})` });
        visible = true;
      }
      for (const f of newSevere) {
        next.history = pushHistory(next, { at: now, event: 'finding', text: `${f.severity} finding: ${f.message}` });
        visible = true;
      }
      const deserves = deservesCard(next.threshold, severe, config);
      if (deserves && !next.card) {
        next.card = true;
        visible = true;
      }
      if (visible && next.card) {
        if (next.state === 'snoozed' && next.snooze) {
          if (next.snooze.until <= now) return wake(next, now, 'snooze ended');
          // A snooze holds routine escalation back; a worse threshold in the urgent band wakes it early.
          const wakes = raisedThreshold && isUrgent(threshold, config) && isWorse(threshold, next.snooze.threshold);
          if (wakes) return wake(next, now, `woken early: crossed the ${thresholdKey(threshold!)} threshold`);
          next.history = pushHistory(next, { at: now, event: 'held', text: `not shown while snoozed until the snooze ends` });
          next.updatedAt = now;
          return next;
        }
        return bumped(next, now);
      }
      if (sameJson(a.credential, next.credential) && sameJson(a.findings, next.findings) && a.channel === next.channel
        && a.threshold === next.threshold && a.card === next.card && a.history.length === next.history.length) {
        return undefined;
      }
      next = { ...next, updatedAt: now };
      return next;
    });
    const alert = written?.value ?? store.get<AlertRecord>('alerts', alertId)?.value;
    if (!alert) return;

    if (raisedThreshold || newSevere.length > 0) {
      outcome.raised.push(alertId);
      if (alert.channel) {
        const set = newByChannel.get(alert.channel) ?? new Set<string>();
        set.add(alertId);
        newByChannel.set(alert.channel, set);
      }
      if (raisedThreshold) queueOwnerNotice(store, config, alert, now);
    }
    if (written && written.value.revision > written.value.deliveredRevision) queueCard(store, written.value, now);
    if (alert.card && !alert.message && alert.state !== 'resolved' && !channels.some((c) => c.key === alert.channel)) outcome.unrouted.push(alertId);
  }

}

/** Gives unrouted alerts a channel once one exists (a channel was configured or the bot was installed). */
export function routeWaitingAlerts(store: Store, config: KeywardenConfig, channels: SupportChannel[], now: number): string[] {
  const routed: string[] = [];
  const known = new Set(channels.map((c) => c.key));
  for (const r of store.list<AlertRecord>('alerts')) {
    // Not yet posted, and no channel (or one that is no longer configured).
    if (r.value.state === 'resolved' || r.value.message || (r.value.channel && known.has(r.value.channel))) continue;
    const route = routeFor(r.value.credential, channels, config)?.key;
    if (!route) continue;
    const done = mutateAlert(store, r.id, (a) => (a.message || a.channel === route ? undefined : { ...a, channel: route, updatedAt: now }));
    if (done) {
      routed.push(r.id);
      if (done.value.card && done.value.revision > done.value.deliveredRevision) queueCard(store, done.value, now);
    }
  }
  return routed;
}
