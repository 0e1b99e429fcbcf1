import { randomBytes } from 'node:crypto';
import type { KeywardenConfig } from '../config/schema.js';
import type { Credential, Finding } from '../domain/credential.js';
import { SEVERITY_ORDER } from '../domain/credential.js';
import { daysLeft, thresholdRank, type ExpiryThreshold } from '../domain/expiry.js';
import { sortableNumber } from '../store/sortable-key.js';
import type { Store, StoredRecord } from '../store/store.js';
import { ownersToReach } from './cards.js';
import { enqueue } from './pacing.js';
import type { AlertActor, AlertClaim, AlertHistoryEntry, AlertPointer, AlertRecord, AlertResolution } from './types.js';

/**
 * One alert's life in the store: created once per credential (claimed with a pointer record), raised once per
 * threshold (claimed with compare-and-set before anything is sent), snoozed, woken, resolved. Every change the card
 * shows bumps `revision` and queues one outbox entry per alert; the delivery renders the latest state when it sends.
 */

const HISTORY_LIMIT = 50;

export function newOpaqueId(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}

export function thresholdKey(t: ExpiryThreshold): string {
  return t === 'expired' ? 'expired' : `${t}d`;
}

/** True when `next` is a later (worse) warning than `current`. */
export function isWorse(next: ExpiryThreshold | null, current: ExpiryThreshold | null): boolean {
  if (next === null) return false;
  if (current === null) return true;
  return thresholdRank(next) > thresholdRank(current);
}

/** In the urgent band (≤ mentionAtDays, or expired): owners are @mentioned and snoozes give way. */
export function isUrgent(threshold: ExpiryThreshold | null, config: KeywardenConfig): boolean {
  return threshold !== null && (threshold === 'expired' || threshold <= config.alerts.mentionAtDays);
}

/** Findings that earn their own card (≥ config.alerts.cardSeverity); expiry ones are thresholds instead. */
export function cardFindings(findings: Finding[], config: KeywardenConfig): Finding[] {
  const floor = SEVERITY_ORDER.indexOf(config.alerts.cardSeverity);
  return findings.filter((f) => f.code !== 'expiring' && f.code !== 'expired' && SEVERITY_ORDER.indexOf(f.severity) >= floor);
}

/** Own card at or below cardAtDays, or with a severe finding; everything else lives in the digest. */
export function deservesCard(threshold: ExpiryThreshold | null, severe: Finding[], config: KeywardenConfig): boolean {
  if (severe.length > 0) return true;
  return threshold !== null && (threshold === 'expired' || threshold <= config.alerts.cardAtDays);
}

/** Lower goes first in the outbox: expired, then fewest days left; findings-only last. */
export function urgencyPriority(credential: Credential, now: number): number {
  const left = daysLeft(credential, now);
  return 200 + Math.max(-100, Math.min(900, left ?? 900));
}

export function pushHistory(alert: AlertRecord, entry: AlertHistoryEntry): AlertHistoryEntry[] {
  return [...alert.history, entry].slice(-HISTORY_LIMIT);
}

/** Compare-and-set loop on one alert. `change` returns the new value, or undefined for "nothing to do". */
export function mutateAlert(
  store: Store,
  alertId: string,
  change: (alert: AlertRecord) => AlertRecord | undefined,
): StoredRecord<AlertRecord> | undefined {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = store.get<AlertRecord>('alerts', alertId);
    if (!current) return undefined;
    const next = change(structuredClone(current.value));
    if (!next) return undefined;
    const written = store.compareAndSet<AlertRecord>('alerts', alertId, current.version, next);
    if (written) return written;
  }
  throw new Error(`alert ${alertId} kept changing under us for 20 attempts; another replica is looping — check the logs`);
}

/** A new revision: new nonce (older cards become "out of date"), card queued if it belongs in the channel. */
export function bumped(alert: AlertRecord, now: number): AlertRecord {
  return { ...alert, revision: alert.revision + 1, nonce: newOpaqueId(), nonceIssuedAt: now, updatedAt: now };
}

/** Queues the alert's card for delivery when it has (or should have) one in a channel. */
export function queueCard(store: Store, alert: AlertRecord, now: number, priorityOverride?: number): void {
  if (!alert.channel) return;
  if (!alert.card && !alert.message) return;
  if (alert.state === 'resolved' && !alert.message) return;
  const priority = priorityOverride ?? (alert.state === 'resolved' ? 10 : urgencyPriority(alert.credential, now));
  enqueue(store, `card:${alert.id}`, { kind: 'alert-card', alertId: alert.id, channel: alert.channel, priority }, now);
}

/**
 * A card's nonce older than `maxAgeMs` is replaced (same card, new nonce; older copies become "out of date").
 * Returns the alert as it is now — with the nonce another click or refresh just issued, if one did.
 */
export function freshNonce(store: Store, alertId: string, now: number, maxAgeMs: number): AlertRecord | undefined {
  const done = mutateAlert(store, alertId, (a) => (now - a.nonceIssuedAt > maxAgeMs ? { ...a, nonce: newOpaqueId(), nonceIssuedAt: now } : undefined));
  return done?.value ?? store.get<AlertRecord>('alerts', alertId)?.value;
}

/** Takes a claim; false when it already existed (another scan, retry or replica got there first). */
export function claim(store: Store, id: string, value: AlertClaim): boolean {
  return store.insert<AlertClaim>('alert-claims', id, value) !== undefined;
}

/** The credential's current (unresolved) alert, if any. */
export function currentAlert(store: Store, credentialId: string): StoredRecord<AlertRecord> | undefined {
  const pointer = store.get<AlertPointer>('alert-claims', credentialId)?.value;
  if (!pointer?.alertId) return undefined;
  const alert = store.get<AlertRecord>('alerts', pointer.alertId);
  return alert && alert.value.state !== 'resolved' ? alert : undefined;
}

/**
 * Opens the credential's alert, or returns the one another replica opened at the same moment: the pointer record
 * `alert-claims/<credentialId>` is claimed with insert (or compare-and-set from a resolved generation).
 */
export function openAlert(
  store: Store, credential: Credential, channel: string | undefined, now: number,
  first: { shape?: (alert: AlertRecord) => AlertRecord | undefined; seen?: (alert: AlertRecord) => string | undefined } = {},
): { record: StoredRecord<AlertRecord>; created: boolean } {
  for (let attempt = 0; attempt < 10; attempt++) {
    const existing = currentAlert(store, credential.id);
    if (existing) return { record: existing, created: false };
    const id = newOpaqueId();
    const opened: AlertRecord = {
      id, credentialId: credential.id, credential, findings: [], threshold: null, card: false, state: 'open',
      nonce: newOpaqueId(), nonceIssuedAt: now, channel, revision: 0, deliveredRevision: 0,
      history: [{ at: now, event: 'opened', text: 'alert opened' }], createdAt: now, updatedAt: now,
    };
    // A new alert is written once as it is after this scan (not opened, then raised), its stamp on the pointer.
    const alert = first.shape?.(opened) ?? opened;
    const seen = first.seen?.(alert);
    const claimed: AlertPointer = seen ? { alertId: id, seen } : { alertId: id };
    const won = store.transaction(() => {
      const pointer = store.get<AlertPointer>('alert-claims', credential.id);
      const ok = pointer
        ? isFree(store, pointer.value) && store.compareAndSet<AlertPointer>('alert-claims', credential.id, pointer.version, claimed)
        : store.insert<AlertPointer>('alert-claims', credential.id, claimed);
      if (!ok) return undefined;
      return store.insert<AlertRecord>('alerts', id, alert);
    });
    if (won) return { record: won, created: true };
  }
  throw new Error(`could not open an alert for ${credential.id}: the claim kept changing — check for a looping replica`);
}

/** A pointer is free after resolution (also when a crash left it pointing at a resolved alert). */
function isFree(store: Store, pointer: AlertPointer): boolean {
  if (pointer.alertId === null) return true;
  const alert = store.get<AlertRecord>('alerts', pointer.alertId);
  return !alert || alert.value.state === 'resolved';
}

/** Marks the alert resolved (buttons go, the card says what happened) and frees the credential for a new alert. */
export function resolveAlert(store: Store, alertId: string, resolution: AlertResolution): StoredRecord<AlertRecord> | undefined {
  const now = resolution.at;
  // One transaction: a pointer left on a resolved alert would keep its stamp, and a scan would skip the credential.
  const done = store.transaction(() => {
    const resolved = mutateAlert(store, alertId, (a) => {
      if (a.state === 'resolved') return undefined;
      const { snooze: _s, progress: _p, ...rest } = a;
      return bumped({
        ...rest, state: 'resolved', resolution,
        history: pushHistory(a, { at: now, event: 'resolved', text: resolution.text, actor: resolution.by }),
      }, now);
    });
    if (!resolved) return undefined;
    const pointer = store.get<AlertPointer>('alert-claims', resolved.value.credentialId);
    if (pointer?.value.alertId === alertId) store.compareAndSet<AlertPointer>('alert-claims', resolved.value.credentialId, pointer.version, { alertId: null });
    return resolved;
  });
  if (!done) return undefined;
  store.appendAudit({
    action: 'alert.resolved', subject: alertId, result: 'info', actor: resolution.by,
    details: { credentialId: done.value.credentialId, kind: resolution.kind },
  });
  queueCard(store, done.value, now);
  return done;
}

/**
 * A rotation of the alert's credential was rolled back: the old credential is the current one again, so the alert
 * the rotation resolved opens again (Rotate is offered again) and its card says what happened. When another alert
 * for the credential is open meanwhile, this one stays resolved and says it was rolled back.
 */
export function reopenAfterRollback(store: Store, alertId: string, info: { text: string; at: number; by?: AlertActor }): StoredRecord<AlertRecord> | undefined {
  const now = info.at;
  const done = store.transaction(() => {
    const current = store.get<AlertRecord>('alerts', alertId);
    const a = current?.value;
    if (!current || !a || a.state !== 'resolved' || a.resolution?.kind !== 'rotated') return undefined;
    const entry = { at: now, event: 'rolled-back', text: info.text, actor: info.by };
    const pointer = store.get<AlertPointer>('alert-claims', a.credentialId);
    const claimed = pointer
      ? isFree(store, pointer.value) && store.compareAndSet<AlertPointer>('alert-claims', a.credentialId, pointer.version, { alertId })
      : store.insert<AlertPointer>('alert-claims', a.credentialId, { alertId });
    if (!claimed) {
      const resolution: AlertResolution = { kind: 'rolled-back', text: `${info.text} — the credential's current state is on its newer card`, at: now, ...(info.by ? { by: info.by } : {}) };
      return store.compareAndSet<AlertRecord>('alerts', alertId, current.version, bumped({ ...a, resolution, history: pushHistory(a, entry) }, now));
    }
    const { resolution: _r, ...rest } = a;
    return store.compareAndSet<AlertRecord>('alerts', alertId, current.version, bumped({
      ...rest, state: a.acknowledged ? 'acknowledged' : 'open', rolledBack: info, history: pushHistory(a, entry),
    }, now));
  });
  if (!done) return undefined;
  store.appendAudit({
    action: 'alert.reopened', subject: alertId, result: 'info', actor: info.by,
    details: { credentialId: done.value.credentialId, reason: 'rollback' },
  });
  queueCard(store, done.value, now, 10);
  return done;
}

/**
 * For workflows: a progress line on the card ("Rotation started by Alex …"), delivered as an in-place update.
 * `jobId` marks a running job (the card then offers no second action); `shownByClick` says the click's own answer
 * already replaced the card for everyone, so the outbox must not put the alert card back over it.
 */
export function setAlertProgress(
  store: Store, alertId: string, text: string | undefined, now: number,
  options: { jobId?: string; shownByClick?: boolean } = {},
): StoredRecord<AlertRecord> | undefined {
  const done = mutateAlert(store, alertId, (a) => {
    if (a.state === 'resolved') return undefined;
    const { progress: _p, ...rest } = a;
    const next = bumped(text ? { ...rest, progress: { text, at: now, ...(options.jobId ? { jobId: options.jobId } : {}) } } : rest, now);
    return options.shownByClick ? { ...next, deliveredRevision: next.revision } : next;
  });
  if (done && !options.shownByClick) queueCard(store, done.value, now, 10);
  return done;
}

/**
 * Each snooze leaves a key `snooze:<until>:<alertId>` in alert-claims, written with the snooze (actions.ts), so a
 * drain tick reads the keys whose time has come (usually none: one small read) instead of every alert. A key the alert
 * moved past (woken early, resolved, snoozed again) is dropped when its time comes.
 */
const SNOOZE_PREFIX = 'snooze:';
interface SnoozeKey { alertId: string; until: number }
/** Marks a store whose snoozed alerts all have their keys; stores from before get them once (snoozeKeysReady). */
const SNOOZE_KEYS_MARKER = 'alerts:snooze-keys-v1';
/** What the previous version kept instead: the earliest snooze end. */
const OLD_NEXT_WAKE = 'alerts:next-wake';

/** A snooze of `alertId` until `until` was written (call in the same transaction). */
export function noteSnooze(store: Store, alertId: string, until: number): void {
  store.put<SnoozeKey>('alert-claims', `${SNOOZE_PREFIX}${sortableNumber(until)}:${alertId}`, { alertId, until });
}

const keyedStores = new WeakSet<Store>();

/**
 * Gives the snoozed alerts of a store from before the keys their keys, once: pages through the alerts (the only whole
 * read left, once per store; the previous version read them all whenever a snooze ended), then leaves a marker.
 */
export async function snoozeKeysReady(store: Store, now: number, pageSize = 200): Promise<void> {
  if (keyedStores.has(store)) return;
  if (!store.get('settings', SNOOZE_KEYS_MARKER)) {
    let after: string | undefined;
    for (;;) {
      if (!store.isOpen) return;
      const page = store.list<AlertRecord>('alerts', { limit: pageSize, ...(after !== undefined ? { after } : {}) });
      if (page.length === 0) break;
      after = page.at(-1)!.id;
      for (const r of page) if (r.value.state === 'snoozed' && r.value.snooze) noteSnooze(store, r.id, r.value.snooze.until);
      await new Promise((resolve) => setImmediate(resolve));
    }
    store.insert('settings', SNOOZE_KEYS_MARKER, { at: now });
    store.delete('settings', OLD_NEXT_WAKE);
  }
  keyedStores.add(store);
}

/** Ends snoozes whose date has passed; the card is updated to its current state. */
export function wakeSnoozed(store: Store, now: number): string[] {
  const woken: string[] = [];
  for (;;) {
    const page = store.list<SnoozeKey>('alert-claims', { prefix: SNOOZE_PREFIX, limit: 50 });
    for (const key of page) {
      if (key.value.until > now) return woken;
      const done = mutateAlert(store, key.value.alertId, (a) => (a.state === 'snoozed' && a.snooze && a.snooze.until <= now ? wake(a, now, 'snooze ended') : undefined));
      if (done) {
        woken.push(done.id);
        queueCard(store, done.value, now);
      }
      // After the wake: a crash in between leaves the key, and the next pass finds the alert awake and drops it.
      store.delete('alert-claims', key.id, key.version);
    }
    if (page.length < 50) return woken;
  }
}

export function wake(alert: AlertRecord, now: number, why: string): AlertRecord {
  const { snooze: _s, ...rest } = alert;
  return bumped({
    ...rest, state: alert.acknowledged ? 'acknowledged' : 'open',
    history: pushHistory(alert, { at: now, event: 'woken', text: why }),
  }, now);
}

/** Who gets @mentioned on an urgent card: the owner when Teams can reach them, else configured approvers by object id. */
export function mentionsFor(alert: AlertRecord, config: KeywardenConfig): Array<{ aadObjectId: string; name: string }> {
  if (!isUrgent(alert.threshold, config) || alert.state === 'resolved') return [];
  const owners = ownersToReach(alert.credential);
  if (owners.length > 0) return owners;
  const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  return config.approvals.users.filter((u) => guid.test(u)).slice(0, 5).map((u) => ({ aadObjectId: u, name: 'Keywarden approver' }));
}

export function actorOf(a: { name?: string; aadObjectId?: string }): AlertActor {
  return { name: a.name || 'someone', ...(a.aadObjectId ? { aadObjectId: a.aadObjectId } : {}) };
}
