import { autoRotationText } from '../approvals/auto-rotation.js';
import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import { ChatDeliveryError, type AdaptiveCard, type ChatGateway, type MessageContent, type PostedMessage } from '../domain/chat.js';
import type { Logger } from '../logging/logger.js';
import type { Store, StoredRecord } from '../store/store.js';
import { alertMessage, renderDetailsCard, renderDigestCard } from './cards.js';
import { mentionsFor, mutateAlert, pushHistory } from './lifecycle.js';
import { markOwnerUnreachable, ownerNoticeContent, personalConversationOf } from './owners.js';
import { channelQueue, DONE_PREFIX, ensureOutboxIndex, entryOf, IndexCursor, OWNERS_QUEUE, queuePrefix } from './outbox-index.js';
import {
  backoffMs, claimEntry, finishedSince, isOutstanding, MAX_ATTEMPTS, pruneOutbox, settleEntry, ThreadPacer,
} from './pacing.js';
import { channelByKey, channelHealthId, isChannelDead, supportChannels, type SupportChannel } from './routing.js';
import type { AlertRecord, DeliveryHealth, OutboxEntry } from './types.js';

/**
 * Sends what the outbox holds, most urgent first, paced per thread, and records every post's activity id before the
 * send counts as done. Transient failures back off on the clock; a permanent one marks the channel dead until the
 * bot is reinstalled; "too large" shrinks the message; a post Teams gave no id for is re-posted on the next update.
 */

export interface AlertDeliveryOptions {
  /** True while a scan or a channel adoption is being applied: a drain in progress stops taking entries (its digest first). */
  holding?: () => boolean;
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  gateway: () => ChatGateway | undefined;
  pacer?: ThreadPacer;
  /** Called when a channel is found dead (app.ts's ConversationBook.markDead). */
  onChannelDead?: (conversationId: string, reason: string) => void;
  /** The action plan for a credential (workflows), posted after the details so a reviewer sees the exact operations. */
  planCard?: (alert: AlertRecord) => AdaptiveCard | undefined;
  /** MRIs of approvers/responders whose clients refresh the card when they open it. */
  refreshUserIds?: () => string[];
}

/** How often a drain prunes finished outbox entries. */
const PRUNE_EVERY_MS = 10 * 60_000;

export interface DrainReport {
  sent: number;
  failed: number;
  /** Entries still waiting (paced, backing off, or blocked on a dead/missing channel). */
  waiting: number;
  /** When the next waiting entry may go (undefined when nothing is waiting on time). */
  nextDueAt?: number;
}

/** 404 ConversationNotFound is sometimes transient in Teams; after this many in a row the channel counts as dead. */
const NOT_FOUND_STRIKES = 3;

type Outcome =
  | { kind: 'sent'; activityId?: string }
  | { kind: 'superseded' }
  | { kind: 'again' };

function baseThread(conversationId: string): string {
  return conversationId.replace(/;messageid=.*$/, '');
}

export class AlertDelivery {
  readonly pacer: ThreadPacer;
  private running: Promise<DrainReport> | undefined;
  private seeded = false;
  private indexed = false;
  private prunedAt = Number.NEGATIVE_INFINITY;
  private readonly log: Logger;

  constructor(private readonly options: AlertDeliveryOptions) {
    this.pacer = options.pacer ?? new ThreadPacer();
    this.log = options.logger.child({ component: 'alerts-delivery' });
  }

  /** Sends everything that may go now. One drain at a time per process; callers share a running one. */
  drain(): Promise<DrainReport> {
    this.running ??= this.drainOnce().finally(() => { this.running = undefined; });
    return this.running;
  }

  /** Resolves when a drain in progress (if any) has finished. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async drainOnce(): Promise<DrainReport> {
    const { store, clock, config } = this.options;
    const report: DrainReport = { sent: 0, failed: 0, waiting: 0 };
    const gateway = this.options.gateway();
    if (!gateway || !store.isOpen) return report;
    if (!this.indexed) {
      const added = await ensureOutboxIndex(store, clock.now());
      if (added > 0) this.log.info({ entries: added }, 'outbox entries from before the outbox index were indexed');
      this.indexed = true;
      if (!store.isOpen) return report;
    }
    // Pruning reads only the finished entries past their day: every few minutes is plenty.
    if (clock.now() - this.prunedAt >= PRUNE_EVERY_MS) {
      pruneOutbox(store, clock.now());
      this.prunedAt = clock.now();
    }
    const channels = supportChannels(config, store);
    // Channel health read once per channel until the next send (a send can mark its channel dead).
    let dead = new Map<string, boolean>();
    const isDead = (key: string): boolean => {
      if (!dead.has(key)) dead.set(key, isChannelDead(store, key));
      return dead.get(key)!;
    };
    if (!this.seeded) this.seedPacer(channels);
    const later = (at: number): void => {
      report.waiting++;
      report.nextDueAt = report.nextDueAt === undefined ? at : Math.min(report.nextDueAt, at);
    };
    // One queue per support channel and one for owner notices, each read a page at a time in send order and merged,
    // so entries go most urgent first across queues; a channel's queue is left once its thread is paced or dead.
    const queues = new Set([...new Set(channels.map((c) => channelQueue(c.key)))].map((q) => new IndexCursor(store, queuePrefix(q))));
    queues.add(new IndexCursor(store, queuePrefix(OWNERS_QUEUE)));
    const owners = [...queues].at(-1)!;
    for (;;) {
      // Pages are read as the drain goes: entries queued by an apply that started meanwhile wait for its digest.
      if (!store.isOpen || this.options.holding?.()) break;
      let cursor: IndexCursor | undefined;
      for (const q of queues) {
        const rank = q.rank();
        if (rank === undefined) queues.delete(q);
        else if (!cursor || rank < cursor.rank()!) cursor = q;
      }
      if (!cursor) break;
      const row = cursor.take()!;
      const now = clock.now();
      if (row.value.at > now) { later(row.value.at); continue; }
      const record = entryOf(store, row);
      if (!record || !isOutstanding(record.value, now)) continue;
      const entry = record.value;
      if (entry.dueAt > now) { later(entry.dueAt); continue; }
      const channel = channelByKey(entry.channel, channels);
      if (entry.kind !== 'owner-notice' && (!channel || isDead(channel.key))) {
        report.waiting++;
        queues.delete(cursor);
        continue;
      }
      const thread = entry.kind === 'owner-notice' ? `user:${entry.user?.aadObjectId}` : baseThread(channel!.target.conversationId);
      const slot = this.pacer.nextSlot(thread, now);
      if (slot > now) {
        later(slot);
        if (cursor !== owners) queues.delete(cursor);
        continue;
      }
      const claimed = claimEntry(store, record, now);
      if (!claimed) continue;
      this.pacer.record(thread, now);
      const result = await this.deliver(gateway, claimed, channel);
      dead = new Map();
      if (result === 'sent') report.sent++;
      else if (result === 'failed') report.failed++;
      else if (result === 'waiting') report.waiting++;
    }
    return report;
  }

  /** After a restart, remember the last hour's sends so the first drain does not burst past Teams' limits. */
  private seedPacer(channels: SupportChannel[]): void {
    this.seeded = true;
    const now = this.options.clock.now();
    for (const r of finishedSince(this.options.store, DONE_PREFIX, now - 3_600_000 + 1)) {
      const e = r.value;
      if (e.status !== 'sent') continue;
      const thread = e.kind === 'owner-notice' ? `user:${e.user}` : channelByKey(e.channel, channels)?.target.conversationId;
      if (thread) this.pacer.record(baseThread(thread), e.at);
    }
  }

  private async deliver(gateway: ChatGateway, claimed: StoredRecord<OutboxEntry>, channel: SupportChannel | undefined): Promise<'sent' | 'failed' | 'waiting' | 'skipped'> {
    const { store, clock } = this.options;
    const entry = claimed.value;
    try {
      const outcome = await this.send(gateway, claimed, channel);
      const now = clock.now();
      if (outcome.kind === 'superseded') {
        settleEntry(store, claimed, { status: 'superseded', sentAt: now });
        return 'skipped';
      }
      if (outcome.kind === 'again') {
        settleEntry(store, claimed, { status: 'pending', attempts: 0, dueAt: now });
        return 'sent';
      }
      settleEntry(store, claimed, { status: 'sent', sentAt: now, ...(outcome.activityId ? { activityId: outcome.activityId } : {}) });
      if (channel) this.markChannelOk(channel);
      return 'sent';
    } catch (err) {
      return this.failed(claimed, channel, err, entry);
    }
  }

  private async send(gateway: ChatGateway, claimed: StoredRecord<OutboxEntry>, channel: SupportChannel | undefined): Promise<Outcome> {
    const entry = claimed.value;
    switch (entry.kind) {
      case 'alert-card': return this.sendAlertCard(gateway, entry, channel!);
      case 'digest': {
        const posted = await gateway.post(channel!.target, { card: renderDigestCard(entry.digest!, { maxRows: entry.maxRows }) });
        this.log.info({ channel: channel!.key, scanId: entry.digest!.scanId, activityId: posted.activityId }, 'digest posted');
        return { kind: 'sent', activityId: posted.activityId };
      }
      case 'details': {
        const alert = this.options.store.get<AlertRecord>('alerts', entry.alertId!)?.value;
        if (!alert) return { kind: 'superseded' };
        const content: MessageContent = { card: renderDetailsCard(alert, this.options.clock.now()) };
        const posted = alert.message?.activityId
          ? await gateway.replyInThread(alert.message, content)
          : await gateway.post(channel!.target, content);
        const plan = alert.message?.activityId ? this.options.planCard?.(alert) : undefined;
        if (plan) await gateway.replyInThread(alert.message!, { card: plan });
        return { kind: 'sent', activityId: posted.activityId };
      }
      case 'owner-notice': return this.sendOwnerNotice(gateway, entry, channel);
    }
  }

  /** Post once, then PUT the same activity; the message ref is stored before the send counts as done. */
  private async sendAlertCard(gateway: ChatGateway, entry: OutboxEntry, channel: SupportChannel): Promise<Outcome> {
    const { store, clock, config } = this.options;
    const alert = store.get<AlertRecord>('alerts', entry.alertId!)?.value;
    if (!alert) return { kind: 'superseded' };
    if (alert.deliveredRevision >= alert.revision) return { kind: 'superseded' };
    if (!alert.message && (alert.state === 'resolved' || !alert.card)) return { kind: 'superseded' };
    const now = clock.now();
    const rendered = alert.revision;
    const content = alertMessage(alert, now, {
      mentions: mentionsFor(alert, config), snoozeMaxDays: config.alerts.snoozeMaxDays, compact: entry.maxRows !== undefined,
      refreshUserIds: this.options.refreshUserIds?.(),
      autoRotation: autoRotationText(store, alert.credential, now),
    });
    let posted: PostedMessage | undefined;
    if (alert.message?.activityId) {
      await gateway.update(alert.message, content);
    } else {
      // First post, or the previous post came back without an id (nothing to PUT): post the current state anew.
      posted = await gateway.post(channel.target, content);
    }
    const op = posted ? (alert.message ? 'reposted' : 'posted') : 'updated';
    const stored = mutateAlert(store, alert.id, (a) => ({
      ...a,
      ...(posted ? { message: { conversationId: posted.conversationId, serviceUrl: posted.serviceUrl, tenantId: posted.tenantId, ...(posted.activityId ? { activityId: posted.activityId } : {}) } } : {}),
      deliveredRevision: Math.max(a.deliveredRevision, rendered),
      history: pushHistory(a, { at: now, event: op, text: `card ${op}${posted && !posted.activityId ? ' (Teams returned no message id; the next change is posted anew)' : ''}` }),
      updatedAt: now,
    }));
    this.log.info({ alertId: alert.id, op, activityId: posted?.activityId ?? alert.message?.activityId, revision: rendered }, `alert card ${op}`);
    // A change that landed while we were sending needs one more send.
    if (stored && stored.value.revision > rendered) return { kind: 'again' };
    return { kind: 'sent', activityId: posted?.activityId ?? alert.message?.activityId };
  }

  private async sendOwnerNotice(gateway: ChatGateway, entry: OutboxEntry, channel: SupportChannel | undefined): Promise<Outcome> {
    const { store, clock } = this.options;
    const alert = store.get<AlertRecord>('alerts', entry.alertId!)?.value;
    if (!alert || alert.state === 'resolved' || !entry.user) return { kind: 'superseded' };
    const personal = personalConversationOf(store, entry.user.aadObjectId);
    const via = personal ?? channel?.target ?? supportChannels(this.options.config, store)[0]?.target;
    if (!via) throw new ChatDeliveryError('no service URL known to reach the owner — install Keywarden in a team or configure teams.channels', 'not-in-roster', undefined, true);
    const posted = await gateway.sendToUser({ aadObjectId: entry.user.aadObjectId, tenantId: via.tenantId, serviceUrl: via.serviceUrl }, ownerNoticeContent(alert, clock.now()));
    mutateAlert(store, alert.id, (a) => ({ ...a, history: pushHistory(a, { at: clock.now(), event: 'owner-notified', text: `personal notice sent to ${entry.user!.name}` }) }));
    return { kind: 'sent', activityId: posted.activityId };
  }

  private failed(claimed: StoredRecord<OutboxEntry>, channel: SupportChannel | undefined, err: unknown, entry: OutboxEntry): 'failed' | 'waiting' {
    const { store, clock } = this.options;
    const now = clock.now();
    const chat = err instanceof ChatDeliveryError ? err : undefined;
    const code = chat?.code ?? 'transient';
    const message = (err as Error)?.message ?? String(err);
    const lastError = { code, message, at: now };

    if (code === 'too-large') {
      // Shrink and try again at once: fewer digest rows, a compact alert card; give up when nothing is left to cut.
      const rows = entry.maxRows ?? (entry.kind === 'digest' ? 10 : 8);
      if (rows > 0 && entry.kind !== 'owner-notice') {
        settleEntry(store, claimed, { status: 'pending', maxRows: Math.floor(rows / 2), dueAt: now, lastError });
        this.log.warn({ kind: entry.kind, rows: Math.floor(rows / 2) }, 'Teams said the message is too large; sending a smaller one');
        return 'waiting';
      }
    }
    if (entry.kind === 'owner-notice' && entry.user && (chat?.permanent || code === 'conversation-not-found')) {
      markOwnerUnreachable(store, entry.user.aadObjectId, code, message, now);
      settleEntry(store, claimed, { status: 'failed', lastError });
      this.log.warn({ owner: entry.user.aadObjectId, code }, 'owner could not be reached in a personal chat; recorded, not retried (they need to install Keywarden personally)');
      return 'failed';
    }
    const channelGone = code === 'not-in-roster' || code === 'unauthorized'
      || (code === 'conversation-not-found' && entry.attempts + 1 >= NOT_FOUND_STRIKES);
    if (channelGone && channel) {
      this.markChannelDead(channel, code, message);
      // Keep the entry: it goes out once the bot is reinstalled there.
      settleEntry(store, claimed, { status: 'pending', attempts: 0, dueAt: now, lastError });
      return 'waiting';
    }
    if (code === 'conversation-not-found' && entry.kind === 'alert-card' && entry.attempts + 1 >= 2) this.forgetCardMessage(entry.alertId!);
    if (chat?.permanent) {
      settleEntry(store, claimed, { status: 'failed', lastError });
      this.log.error({ kind: entry.kind, code, entryId: claimed.id }, `could not deliver an alert message and will not retry: ${message}`);
      return 'failed';
    }
    if (code === 'throttled') {
      // Teams counts differently than we thought (another replica, a restart): give the thread a rest.
      const thread = entry.kind === 'owner-notice' ? `user:${entry.user?.aadObjectId}` : channel ? baseThread(channel.target.conversationId) : undefined;
      if (thread) this.pacer.holdUntil(thread, now + 30_000);
    }
    const attempts = entry.attempts + 1;
    if (attempts >= MAX_ATTEMPTS) {
      settleEntry(store, claimed, { status: 'failed', attempts, lastError });
      this.log.error({ kind: entry.kind, code, attempts }, `gave up delivering an alert message after ${attempts} attempts: ${message}`);
      return 'failed';
    }
    const dueAt = now + backoffMs(attempts, claimed.id);
    settleEntry(store, claimed, { status: 'pending', attempts, dueAt, lastError });
    this.log.warn({ kind: entry.kind, code, attempts, retryInMs: dueAt - now }, 'alert message not delivered; retrying later');
    return 'waiting';
  }

  /** The card itself seems gone (updates answer 404): post the current state anew next time. */
  private forgetCardMessage(alertId: string): void {
    const now = this.options.clock.now();
    mutateAlert(this.options.store, alertId, (a) => {
      if (!a.message?.activityId) return undefined;
      const { activityId: _gone, ...message } = a.message;
      return { ...a, message, updatedAt: now, history: pushHistory(a, { at: now, event: 'card-missing', text: 'Teams could not find the card to update; it will be posted anew' }) };
    });
  }

  private markChannelDead(channel: SupportChannel, code: string, message: string): void {
    const { store, clock } = this.options;
    const current = store.get<DeliveryHealth>('deliveries', channelHealthId(channel.key))?.value;
    if (current?.status === 'dead') return;
    store.put<DeliveryHealth>('deliveries', channelHealthId(channel.key), {
      target: `support channel ${channel.name}`, status: 'dead', code, message, since: clock.now(), conversationId: channel.target.conversationId,
    });
    store.appendAudit({ action: 'alerts.channel.dead', subject: channel.key, result: 'failed', details: { code } });
    this.options.onChannelDead?.(channel.target.conversationId, code);
    this.log.error({ channel: channel.key, code }, `support channel ${channel.name} is unreachable (${code}); alerts wait in the outbox until Keywarden is reinstalled there`);
  }

  private markChannelOk(channel: SupportChannel): void {
    const { store } = this.options;
    const current = store.get<DeliveryHealth>('deliveries', channelHealthId(channel.key));
    if (current && current.value.status !== 'ok') {
      store.compareAndSet<DeliveryHealth>('deliveries', channelHealthId(channel.key), current.version, { target: current.value.target, status: 'ok', since: this.options.clock.now() });
    }
  }

  /** A reinstall (or any successful re-install event) makes a dead channel usable again. */
  reviveChannel(channel: SupportChannel): boolean {
    const { store, clock } = this.options;
    const current = store.get<DeliveryHealth>('deliveries', channelHealthId(channel.key));
    if (current?.value.status !== 'dead') return false;
    store.compareAndSet<DeliveryHealth>('deliveries', channelHealthId(channel.key), current.version, { target: current.value.target, status: 'ok', since: clock.now() });
    store.appendAudit({ action: 'alerts.channel.revived', subject: channel.key, result: 'info' });
    this.log.info({ channel: channel.key }, `support channel ${channel.name} is reachable again; sending the waiting alerts`);
    return true;
  }
}
