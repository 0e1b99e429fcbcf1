import type { Clock } from '../clock.js';
import { DAY_MS, MINUTE_MS } from '../clock.js';
import type { ApproverDirectory, ClickAuthorizer } from '../approvals/authorize.js';
import { autoRotationText } from '../approvals/auto-rotation.js';
import { refreshUserIds } from '../approvals/people.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { AdaptiveCard, CardAction, ChatContext } from '../domain/chat.js';
import { formatUtcDate } from '../domain/expiry.js';
import type { Logger } from '../logging/logger.js';
import type { Store, StoredRecord } from '../store/store.js';
import { renderAlertCard } from './cards.js';
import { actorOf, bumped, freshNonce, mentionsFor, mutateAlert, noteSnooze, pushHistory } from './lifecycle.js';
import { enqueue } from './pacing.js';
import type { AlertRecord, OutboxEntry } from './types.js';

/**
 * The alert card's own buttons: Details, Acknowledge, Snooze. Card data is untrusted: it only names an alert and a
 * nonce, and every click is checked against the stored alert (exists, same nonce, same tenant and conversation).
 */

export interface AlertActionsOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Asks delivery to send now (details go out as a thread reply). */
  kick: () => void;
  /** Server-side authorization of Acknowledge / Snooze (approvers or responders; identity, tenant, channel, nonce). */
  authorizer: () => ClickAuthorizer;
  /** Who may act (for refresh views and their userIds). */
  directory: () => ApproverDirectory;
}

type ActionResult = { card: AdaptiveCard } | { text: string };

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_REASON = 200;

function cardOf(alert: AlertRecord, options: AlertActionsOptions, notice?: string): { card: AdaptiveCard } {
  const now = options.clock.now();
  return {
    card: renderAlertCard(alert, now, {
      notice, mentions: mentionsFor(alert, options.config), snoozeMaxDays: options.config.alerts.snoozeMaxDays,
      refreshUserIds: refreshUserIds(options.store, options.directory()),
      autoRotation: autoRotationText(options.store, alert.credential, now),
    }),
  };
}

function baseId(id: string): string {
  return id.replace(/;messageid=.*$/, '');
}

/** Looks the clicked alert up and checks the click belongs to it; returns the answer when it does not. */
export function checkClick(
  data: Record<string, unknown>,
  ctx: ChatContext,
  options: AlertActionsOptions,
): { record: StoredRecord<AlertRecord> } | { answer: ActionResult } {
  const { alertId, nonce } = data;
  if (typeof alertId !== 'string' || typeof nonce !== 'string' || !ID_PATTERN.test(alertId) || !ID_PATTERN.test(nonce)) {
    return { answer: { text: 'This card does not name an alert I know. Ask me for a fresh one with /expiring.' } };
  }
  const record = options.store.get<AlertRecord>('alerts', alertId);
  if (!record) return { answer: { text: 'This alert no longer exists. Ask me for a fresh list with /expiring.' } };
  const alert = record.value;
  const message = alert.message;
  if (message && ctx.conversation.tenantId && message.tenantId && ctx.conversation.tenantId !== message.tenantId) {
    return { answer: { text: 'This card belongs to another tenant; I did nothing.' } };
  }
  if (message && baseId(ctx.conversation.conversationId) !== baseId(message.conversationId)) {
    return { answer: { text: 'This alert belongs to another conversation; use the card in the support channel.' } };
  }
  if (nonce !== alert.nonce) {
    return { answer: cardOf(alert, options, 'This card was out of date — here is the current state. Click again if you still want to act.') };
  }
  return { record };
}

function audit(options: AlertActionsOptions, action: string, alert: AlertRecord, ctx: ChatContext, details: Record<string, unknown> = {}): void {
  options.store.appendAudit({
    action, subject: alert.id, result: 'ok',
    actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name },
    details: { credentialId: alert.credentialId, ...details },
  });
}

/**
 * Acknowledge and Snooze are decisions: the clicker must be a signed-in approver or responder of the card's tenant,
 * in its channel, on a fresh card. Every refusal is audited; an out-of-date card is answered with the current one.
 */
async function decisionAlert(verb: 'acknowledge' | 'snooze', data: Record<string, unknown>, ctx: ChatContext, options: AlertActionsOptions): Promise<{ current: AlertRecord } | { answer: ActionResult }> {
  const alertId = typeof data.alertId === 'string' && ID_PATTERN.test(data.alertId) ? data.alertId : undefined;
  const record = alertId ? options.store.get<AlertRecord>('alerts', alertId) : undefined;
  if (!record) {
    options.authorizer().refuse({ action: verb, ctx, subject: alertId ?? '(unknown alert)' }, { ok: false, code: 'bad-input', reason: 'the card names no alert Keywarden knows' });
    return { answer: { text: 'This card does not name an alert I know. Ask me for a fresh one with /expiring.' } };
  }
  const alert = record.value;
  const auth = await options.authorizer().authorize({
    action: verb, responders: true, ctx, subject: alert.id,
    card: { conversationId: alert.message?.conversationId ?? ctx.conversation.conversationId, tenantId: alert.message?.tenantId ?? '', nonce: alert.nonce, nonceIssuedAt: alert.nonceIssuedAt },
    presentedNonce: data.nonce,
  });
  if (!auth.ok) {
    if (!auth.refresh) return { answer: { text: `Not done: ${auth.reason}.` } };
    const now = options.clock.now();
    const fresh = freshNonce(options.store, alert.id, now, options.config.approvals.nonceTtlMinutes * MINUTE_MS) ?? alert;
    return { answer: cardOf(fresh, options, 'This card was out of date — here is the current state. Click again if you still want to act.') };
  }
  if (alert.state === 'resolved') return { answer: cardOf(alert, options, 'This alert is already resolved.') };
  return { current: alert };
}

/** The card after a click's write: the alert as written (then `onWritten` audits and logs), or as someone else just left it. */
function afterWrite(options: AlertActionsOptions, current: AlertRecord, written: StoredRecord<AlertRecord> | undefined, onWritten: (alert: AlertRecord) => void): ActionResult {
  const alert = written?.value ?? options.store.get<AlertRecord>('alerts', current.id)!.value;
  if (written) onWritten(alert);
  return cardOf(alert, options, written ? undefined : 'Someone else changed this alert a moment ago; here is its current state.');
}

/** The card the bot puts back for everyone is the delivered state: no separate PUT needed. */
function delivered(a: AlertRecord): AlertRecord {
  return { ...a, deliveredRevision: a.revision };
}

/** A reason typed into the card: control characters removed, required, bounded. */
export function parseReason(value: unknown, what: string): { reason: string } | { problem: string } {
  const reason = (typeof value === 'string' ? value : '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (!reason) return { problem: `${what} not set: say why (e.g. "rotation planned in CHG-1234").` };
  if (reason.length > MAX_REASON) return { problem: `${what} not set: keep the reason under ${MAX_REASON} characters.` };
  return { reason };
}

export function acknowledgeAction(options: AlertActionsOptions): CardAction {
  return {
    verb: 'acknowledge',
    async handle(data, ctx): Promise<ActionResult> {
      const opened = await decisionAlert('acknowledge', data, ctx, options);
      if ('answer' in opened) return opened.answer;
      const { current } = opened;
      const now = options.clock.now();
      if (current.acknowledged) return cardOf(current, options, `Already acknowledged by ${current.acknowledged.by.name}.`);
      const parsed = parseReason(data.ackReason, 'Acknowledgement');
      if ('problem' in parsed) return { text: parsed.problem };
      const by = actorOf(ctx.actor);
      const written = mutateAlert(options.store, current.id, (a) => {
        if (a.state === 'resolved' || a.acknowledged || a.nonce !== current.nonce) return undefined;
        return delivered(bumped({
          ...a, acknowledged: { by, at: now, reason: parsed.reason }, state: a.state === 'snoozed' ? 'snoozed' : 'acknowledged',
          history: pushHistory(a, { at: now, event: 'acknowledged', text: `acknowledged: ${parsed.reason}`, actor: by }),
        }, now));
      });
      return afterWrite(options, current, written, (alert) => {
        audit(options, 'alert.acknowledged', alert, ctx, { reason: parsed.reason });
        options.logger.info({ alertId: alert.id, by: by.aadObjectId }, 'alert acknowledged');
      });
    },
  };
}

/** Parses and checks the snooze form; the message says what to fix. */
export function parseSnooze(data: Record<string, unknown>, now: number, maxDays: number): { until: number; reason: string } | { problem: string } {
  const raw = typeof data.snoozeUntil === 'string' ? data.snoozeUntil.trim() : '';
  const latest = formatUtcDate(now + maxDays * DAY_MS);
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
  if (!m) return { problem: `Snooze not set: pick a date (YYYY-MM-DD) no later than ${latest}.` };
  const until = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(until) || formatUtcDate(until) !== raw) return { problem: `Snooze not set: "${raw.slice(0, 10)}" is not a real date; pick one no later than ${latest}.` };
  if (until <= now) return { problem: `Snooze not set: pick a date after today (${formatUtcDate(now)}), no later than ${latest}.` };
  if (raw > latest) return { problem: `Snooze not set: an alert can be snoozed for at most ${maxDays} days — pick ${latest} or earlier.` };
  const reason = parseReason(data.reason, 'Snooze');
  if ('problem' in reason) return { problem: 'Snooze not set: say why the alert can wait (e.g. "rotation planned in CHG-1234").' };
  return { until, reason: reason.reason };
}

export function snoozeAction(options: AlertActionsOptions): CardAction {
  return {
    verb: 'snooze',
    async handle(data, ctx): Promise<ActionResult> {
      const opened = await decisionAlert('snooze', data, ctx, options);
      if ('answer' in opened) return opened.answer;
      const { current } = opened;
      const now = options.clock.now();
      const parsed = parseSnooze(data, now, options.config.alerts.snoozeMaxDays);
      if ('problem' in parsed) return { text: parsed.problem };
      const by = actorOf(ctx.actor);
      // The snooze and its wake key commit together: a snoozed alert always has its key.
      const written = options.store.transaction(() => {
        const w = mutateAlert(options.store, current.id, (a) => {
          if (a.state === 'resolved' || a.nonce !== current.nonce) return undefined;
          return delivered(bumped({
            ...a, state: 'snoozed',
            snooze: { until: parsed.until, reason: parsed.reason, by, at: now, threshold: a.threshold },
            history: pushHistory(a, { at: now, event: 'snoozed', text: `snoozed until ${formatUtcDate(parsed.until)}: ${parsed.reason}`, actor: by }),
          }, now));
        });
        if (w) noteSnooze(options.store, w.id, parsed.until);
        return w;
      });
      return afterWrite(options, current, written, (alert) => {
        audit(options, 'alert.snoozed', alert, ctx, { until: parsed.until, reason: parsed.reason });
        options.logger.info({ alertId: alert.id, until: parsed.until }, 'alert snoozed');
      });
    },
  };
}

/**
 * Universal Actions `refresh`: Teams asks for the card when a listed approver/responder opens it. A view only — no
 * state changes except a new nonce when the shown one is past half its life, so the next click acts at once. People
 * who may not act get the card as it is (their clicks would be refused anyway).
 */
export function refreshAlertAction(options: AlertActionsOptions): CardAction {
  return {
    verb: 'refreshAlert',
    view: true,
    async handle(data, ctx): Promise<ActionResult> {
      const alertId = typeof data.alertId === 'string' && ID_PATTERN.test(data.alertId) ? data.alertId : undefined;
      const alert = alertId ? options.store.get<AlertRecord>('alerts', alertId)?.value : undefined;
      if (!alert) return { text: 'This alert no longer exists. Ask me for a fresh list with /expiring.' };
      const tenant = ctx.actor.tenantId ?? ctx.conversation.tenantId;
      const sameTenant = Boolean(tenant) && (!alert.message?.tenantId || alert.message.tenantId === tenant);
      const mayAct = Boolean(ctx.actor.aadObjectId) && sameTenant && alert.state !== 'resolved'
        && (await options.directory().mayRespond(ctx.actor.aadObjectId!)) === true;
      if (!mayAct) return cardOf(alert, options);
      const halfLife = (options.config.approvals.nonceTtlMinutes * MINUTE_MS) / 2;
      return cardOf(freshNonce(options.store, alert.id, options.clock.now(), halfLife) ?? alert, options);
    },
  };
}

export function detailsAction(options: AlertActionsOptions): CardAction {
  return {
    verb: 'details',
    async handle(data, ctx): Promise<ActionResult> {
      const checked = checkClick(data, ctx, options);
      if ('answer' in checked) return checked.answer;
      const alert = checked.record.value;
      const now = options.clock.now();
      const id = `details:${alert.id}`;
      const previous = options.store.get<OutboxEntry>('outbox', id)?.value;
      if (previous && (previous.status === 'pending' || previous.status === 'sending')) return { text: 'The details are on their way to this card\'s thread.' };
      if (previous?.status === 'sent' && (previous.sentAt ?? 0) > now - 60_000) return { text: 'The details were posted in this card\'s thread a moment ago.' };
      if (!alert.channel) return { text: 'This alert has no support channel to post the details in.' };
      enqueue(options.store, id, { kind: 'details', alertId: alert.id, channel: alert.channel, priority: 5 }, now);
      options.store.appendAudit({ action: 'alert.details', subject: alert.id, result: 'info', actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name } });
      options.kick();
      return { text: 'Posting the details (facts, findings with fixes, consumers, history) in this card\'s thread.' };
    },
  };
}

export function alertCardActions(options: AlertActionsOptions): CardAction[] {
  return [detailsAction(options), acknowledgeAction(options), snoozeAction(options), refreshAlertAction(options)];
}
