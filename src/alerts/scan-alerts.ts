import { createHash } from 'node:crypto';
import type { KeywardenConfig } from '../config/schema.js';
import type { Credential, Finding } from '../domain/credential.js';
import { formatExpiry, thresholdFor, type ExpiryThreshold } from '../domain/expiry.js';
import type { JobRecord } from '../domain/job.js';
import { lockedJobs } from '../workflows/engine/open-jobs.js';
import { policyFor } from '../domain/policy.js';
import { credentialsInRotation, rotationText, type CredentialInRotation } from '../domain/rotation-state.js';
import { scanViewOf, type ScannedCredential, type ScanResult, type ScanView } from '../domain/scan.js';
import type { Store, StoredRecord } from '../store/store.js';
import { pagedIds } from '../store/paged-ids.js';
import { queueScanDigests } from './digest.js';
import { KIND_LABELS } from './cards.js';
import {
  bumped, cardFindings, claim, currentAlert, deservesCard, isUrgent, isWorse, mutateAlert, openAlert, pushHistory,
  queueCard, reopenAfterRollback, resolveAlert, thresholdKey, wake,
} from './lifecycle.js';
import { queueOwnerNotice } from './owners.js';
import { resolvedByDisappearance, resolvedInPlace, ScopeLookup, scopeUnseen } from './resolution.js';
import { routeFor, type SupportChannel } from './routing.js';
import type { AlertPointer, AlertRecord, AlertResolution } from './types.js';
import { isUnrouted, UnroutedTally } from './unrouted.js';
import { timeSlices } from './slices.js';

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


/** Credentials applied in one commit where the store can join transactions: well inside one slice. */
const BATCH_MS = 4;
const together = <R>(store: Store, fn: () => R): R => (store.commitTogether ? store.commitTogether(fn) : fn());

/**
 * Applies a scan in slices of a few milliseconds (a large estate never holds the bot's event loop): first the
 * credentials with findings or held in a secret (an alert whose stamp says nothing changed costs one small read),
 * then the other alerts: credentials that vanished, or that no longer have anything relevant.
 */
export async function applyScan(store: Store, config: KeywardenConfig, scan: ScanResult, channels: SupportChannel[]): Promise<ScanAlertsOutcome> {
  const now = scan.finishedAt;
  const view = scanViewOf(scan);
  const outcome: ScanAlertsOutcome = { opened: [], raised: [], resolved: [], unrouted: [], digests: [] };
  const newByChannel = new Map<string, Set<string>>();
  // The jobs holding a subject lock: those at work and those whose result is still being posted (open-jobs.ts).
  const jobs = lockedJobs(store);
  const inRotation = credentialsInRotation(jobs);
  reconcileJobs(store, jobs, inRotation, now);
  const slice = timeSlices();

  const ctx: ApplyContext = { store, config, scan, channels, now, outcome, newByChannel, inRotation, paged: scan.view !== undefined, settings: JSON.stringify(config.alerts) };
  // The alerts the walk over relevant credentials saw as current: the second pass need not read them.
  const walked = new Set<string>();
  for (const page of view.pages({ relevantOnly: true, pageSize: 100 })) {
    for (let next = 0; next < page.length;) {
      // A few milliseconds of credentials commit together: on SQLite the commit, not the work, was most of the cost.
      next = together(store, () => {
        const until = performance.now() + BATCH_MS;
        let i = next;
        do {
          const { credential, findings } = page[i++]!;
          const alertId = applyCredential(ctx, credential, findings, view);
          if (alertId) walked.add(alertId);
        } while (i < page.length && performance.now() < until);
        return i;
      });
      await slice();
    }
  }
  // Stored rows hand over only the relevant credentials (findings, or held in a secret); in memory every one is.
  const channelKeys = new Set(channels.map((c) => c.key));
  const unrouted = new UnroutedTally();
  const vanished: AlertRecord[] = [];
  const relevant = (seen: ScannedCredential): boolean => !ctx.paged || seen.findings.length > 0 || seen.credential.heldIn.length > 0;
  for (const alertId of pagedIds(store, 'alerts')) {
    await slice();
    if (walked.has(alertId)) continue;
    const alert = store.get<AlertRecord>('alerts', alertId)?.value;
    if (!alert || alert.state === 'resolved') continue;
    const seen = view.get(alert.credentialId);
    if (seen) {
      // Seen without anything relevant: its findings went away (the walk above had the relevant ones).
      if (!relevant(seen)) applyCredential(ctx, seen.credential, seen.findings, view);
      continue;
    }
    // Unknown while its scope failed; else it vanished from a scope that scanned cleanly: replaced or removed.
    if (scopeUnseen(alert.credential, scan)) {
      if (isUnrouted(alert, channelKeys)) unrouted.add(alert.id);
      continue;
    }
    vanished.push(alert);
  }
  // Grouped by scope: each scope is looked through once for heirs and twins, then forgotten.
  const scopes = new ScopeLookup(view, slice);
  const scopeOf = (a: AlertRecord): string => `${a.credential.kind}|${a.credential.where.scope}`;
  vanished.sort((a, b) => (scopeOf(a) < scopeOf(b) ? -1 : scopeOf(a) > scopeOf(b) ? 1 : 0));
  let group = '';
  for (const alert of vanished) {
    if (scopeOf(alert) !== group) scopes.clear();
    group = scopeOf(alert);
    if (resolveAlert(store, alert.id, await resolvedByDisappearance(alert.credential, scan, now, scopes))) outcome.resolved.push(alert.id);
    await slice();
  }
  for (const id of outcome.unrouted) unrouted.add(id);
  unrouted.save(store, now);

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
  /** The scan reads stored rows (a credential's holders are found through its heldIn). */
  paged: boolean;
  /** The alerts' settings as JSON, part of every stamp. */
  settings: string;
}

/**
 * What a scan tells an alert, under the alerts' settings (a changed cardAtDays or cardSeverity must be applied):
 * equal stamps mean applying the credential again changes nothing.
 */
function stampOf(ctx: ApplyContext, credential: Credential, own: Finding[], threshold: ExpiryThreshold | null, route: string, held: Credential | undefined): string {
  return createHash('sha256').update(ctx.settings + JSON.stringify([credential, own, threshold, route, held?.id ?? null])).digest('base64url').slice(0, 24);
}

/** Records the stamp on the credential's pointer once its alert took the scan in (lost races just leave it unstamped). */
function markSeen(store: Store, credentialId: string, alertId: string, stamp: string): void {
  const pointer = store.get<AlertPointer>('alert-claims', credentialId);
  if (pointer?.value.alertId !== alertId || pointer.value.seen === stamp) return;
  store.compareAndSet<AlertPointer>('alert-claims', credentialId, pointer.version, { alertId, seen: stamp });
}

/**
 * One credential: open, raise (claim first), resolve, and queue what must be sent. Returns the id of the alert that
 * was current for it, if any. What it reads first decides cheaply whether there is anything to do at all.
 */
function applyCredential(ctx: ApplyContext, credential: Credential, findings: Finding[], view: ScanView): string | undefined {
  const { store, config, now, channels, inRotation } = ctx;
  // One card per chain: a secret holding a scanned credential shows its findings on that credential's card.
  const held = credential.kind === 'keyvault-secret' && credential.holds && credential.holds !== credential.id ? view.get(credential.holds)?.credential : undefined;
  // Stored rows list a credential's holders in its heldIn: without any, there is nothing to look up.
  const holders = ctx.paged && credential.heldIn.length === 0 ? [] : view.holders(credential.id);
  const own = [...findings, ...holders.flatMap((h) => h.findings)];
  const threshold = thresholdOf(credential, config, now);
  const rotation = inRotation.get(credential.id);
  const route = routeFor(credential, channels, config)?.key;
  const pointer = store.get<AlertPointer>('alert-claims', credential.id)?.value;
  const stamp = route && !rotation && pointer?.alertId ? stampOf(ctx, credential, own, threshold, route, held) : undefined;
  // The same facts as when its alert last took them in: nothing to open, raise, resolve or send.
  if (stamp && pointer?.seen === stamp) return pointer.alertId!;
  const severe = cardFindings(own, config);
  // No alert, and nothing that would open one.
  if (!pointer?.alertId && (held || credential.enabled === false || rotation || (threshold === null && severe.length === 0))) return undefined;

  // One transaction per credential: its claims, alert, outbox entries and stamp commit together. A store that runs it
  // again after a conflict gets fresh effects each time.
  const { current, effects } = store.transaction(() => {
    const effects: Effects = { outcome: { opened: [], raised: [], resolved: [], unrouted: [], digests: [] }, newByChannel: new Map() };
    const facts: Facts = { credential, own, held, threshold, severe, rotation, route, stamp };
    return { current: applyChange({ ...ctx, ...effects }, facts), effects };
  });
  const { outcome, newByChannel } = ctx;
  outcome.opened.push(...effects.outcome.opened);
  outcome.raised.push(...effects.outcome.raised);
  outcome.resolved.push(...effects.outcome.resolved);
  outcome.unrouted.push(...effects.outcome.unrouted);
  for (const [channel, ids] of effects.newByChannel) {
    const set = newByChannel.get(channel) ?? new Set<string>();
    for (const id of ids) set.add(id);
    newByChannel.set(channel, set);
  }
  return current;
}

interface Effects {
  outcome: ScanAlertsOutcome;
  newByChannel: Map<string, Set<string>>;
}

/** What applyCredential read about a credential. */
interface Facts {
  credential: Credential;
  own: Finding[];
  held: Credential | undefined;
  threshold: ExpiryThreshold | null;
  severe: Finding[];
  rotation: CredentialInRotation | undefined;
  route: string | undefined;
  stamp: string | undefined;
}

function applyChange(ctx: ApplyContext, facts: Facts): string | undefined {
  const { store, config, scan, channels, now, outcome, newByChannel } = ctx;
  const { credential, own, held, threshold, severe, rotation, route, stamp } = facts;
  {
    let existing = currentAlert(store, credential.id);
    const current = existing?.value.id;
    const quiet = quietReason(credential, held, rotation, now);
    if (quiet === 'wait') return current;
    if (quiet) {
      const done = existing && (resolvedInPlace(existing.value.credential, credential, now) ?? quiet);
      if (existing && done && resolveAlert(store, existing.value.id, done)) outcome.resolved.push(existing.value.id);
      return current;
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
    if (!existing && threshold === null && severe.length === 0) return current;

    // One claim per threshold and per severe finding of an alert: false when another scan or replica took it first.
    const claimThreshold = (id: string): boolean => claim(store, `${credential.id}#${thresholdKey(threshold!)}#${id}`, { alertId: id, at: now, scanId: scan.id });
    const claimFinding = (id: string, f: Finding): boolean => claim(store, `${credential.id}#finding:${f.code}#${id}`, { alertId: id, at: now, scanId: scan.id });
    // Routed and not in a rotation: the next scan with the same facts may skip it.
    const seenStamp = route && !rotation ? () => stamp ?? stampOf(ctx, credential, own, threshold, route, held) : undefined;
    let written: StoredRecord<AlertRecord> | undefined;
    let raisedThreshold = false;
    let newSevere: Finding[] = [];
    if (!existing) {
      // A new alert: everything this scan raises is new, and no one else can hold claims on an alert not yet written.
      const opened = openAlert(store, credential, route, now, {
        shape: (a) => raise(a, threshold !== null, severe),
        seen: (a) => (seenStamp && a.state !== 'resolved' ? seenStamp() : undefined),
      });
      existing = opened.record;
      if (opened.created) {
        outcome.opened.push(existing.value.id);
        written = opened.record;
        raisedThreshold = threshold !== null;
        newSevere = severe;
        if (raisedThreshold) claimThreshold(existing.value.id);
        for (const f of newSevere) claimFinding(existing.value.id, f);
      }
    }
    const alertId = existing.value.id;

    if (!written) {
      // Claim each new threshold and each new severe finding before anything can be sent for it.
      raisedThreshold = isWorse(threshold, existing.value.threshold) && claimThreshold(alertId);
      const knownSevere = new Set(cardFindings(existing.value.findings, config).map((f) => f.code));
      newSevere = severe.filter((f) => !knownSevere.has(f.code) && claimFinding(alertId, f));
      written = mutateAlert(store, alertId, (a) => raise(a, raisedThreshold, newSevere));
    }

    /** The alert after this scan: its credential and findings, a worse threshold or new severe findings, its card. */
    function raise(a: AlertRecord, raisedThreshold: boolean, newSevere: Finding[]): AlertRecord | undefined {
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
    }
    const alert = written?.value ?? store.get<AlertRecord>('alerts', alertId)?.value;
    if (!alert) return current;

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
    if (seenStamp && alert.state !== 'resolved') markSeen(store, credential.id, alertId, seenStamp());
    return current ?? alertId;
  }
}

/**
 * Gives unrouted alerts a channel once one exists (a channel was configured or the bot was installed), a few
 * milliseconds of alerts at a time; returns the routed alerts by channel, and counts those still waiting.
 */
export async function routeWaitingAlerts(store: Store, config: KeywardenConfig, channels: SupportChannel[], now: number): Promise<Map<string, Set<string>>> {
  const routed = new Map<string, Set<string>>();
  const known = new Set(channels.map((c) => c.key));
  const waiting = new UnroutedTally();
  const slice = timeSlices();
  for (const id of pagedIds(store, 'alerts')) {
    await slice();
    const alert = store.get<AlertRecord>('alerts', id)?.value;
    // Not yet posted, and no channel (or one that is no longer configured).
    if (!alert || alert.state === 'resolved' || alert.message || (alert.channel && known.has(alert.channel))) continue;
    const route = routeFor(alert.credential, channels, config)?.key;
    const done = route ? mutateAlert(store, id, (a) => (a.message || a.channel === route ? undefined : { ...a, channel: route, updatedAt: now })) : undefined;
    if (done) {
      routed.set(route!, (routed.get(route!) ?? new Set()).add(id));
      if (done.value.card && done.value.revision > done.value.deliveredRevision) queueCard(store, done.value, now);
    } else if (!route && isUnrouted(alert, known)) {
      waiting.add(id);
    }
  }
  waiting.save(store, now);
  return routed;
}
