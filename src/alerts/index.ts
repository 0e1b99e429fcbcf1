import type { Keywarden, KeywardenModule, ReadinessCheck, ConversationBook } from '../app.js';
import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { ChatGateway, ConversationTarget, InstallationEvent, Reply } from '../domain/chat.js';
import { bindCommand, howToBindText, unbindCommand } from '../commands/bind.js';
import { isApprover as isConfiguredApprover, type ApproverCheck } from '../commands/scan.js';
import type { ScanListener, ScanResult } from '../domain/scan.js';
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';
import { ApproverDirectory, ClickAuthorizer } from '../approvals/authorize.js';
import { withCardDataKeys } from '../approvals/card-data.js';
import { notingClickers, refreshUserIds } from '../approvals/people.js';
import { alertCardActions } from './actions.js';
import { AlertDelivery, type AlertDeliveryOptions, type DrainReport } from './delivery.js';
import { resolveAlert, setAlertProgress, snoozeKeysReady, wakeSnoozed } from './lifecycle.js';
import { markOwnerReachable } from './owners.js';
import type { ThreadPacer } from './pacing.js';
import { channelBinding, channelHealth, isChannelDead, setChannelBinding, supportChannels, type SupportChannel } from './routing.js';
import { applyScan, routeWaitingAlerts, type ScanAlertsOutcome } from './scan-alerts.js';
import { timeSlices } from './slices.js';
import { queueScanDigests } from './digest.js';
import { recountUnrouted, unroutedCount } from './unrouted.js';
import { countKeys, FAILED_PREFIX, fromTime, QUEUED_PREFIX } from './outbox-index.js';
import type { AlertRecord, AlertResolution, DeliveryHealth } from './types.js';

/** /readyz counts outbox entries up to this many (ids only); past it, it says "more than". */
const PROBE_CAP = 1_000;

export { renderAlertCard, renderDigestCard, renderDetailsCard, isRotatable } from './cards.js';
export type { AlertRecord, AlertState, AlertMessageRef, AlertResolution, AlertHistoryEntry } from './types.js';
export { resolveAlert, setAlertProgress, mutateAlert, queueCard } from './lifecycle.js';

/**
 * The alerts as a Keywarden module: listens to scans, owns the Details / Acknowledge / Snooze verbs, reports the
 * support channels in /readyz, and runs a drain loop (on the injected clock) that sends the outbox.
 */

export interface AlertsModuleOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Subscribed at creation, unsubscribed at stop. */
  scanner?: { onScan(listener: ScanListener): () => void };
  /** The action plan card for an alert's credential (from workflows), posted with Details. */
  planCard?: AlertDeliveryOptions['planCard'];
  /** Told what each scan did to alerts (metrics). */
  onOutcome?: (outcome: ScanAlertsOutcome) => void;
  /** app.ts's conversation book: dead channels are marked there too. */
  conversations?: Pick<ConversationBook, 'markDead'>;
  gateway?: ChatGateway;
  pacer?: ThreadPacer;
  /** Longest pause of the drain loop when nothing is due (real ms; default 15 s). */
  idleMs?: number;
  /**
   * Who may Acknowledge / Snooze, asked at click time (the workflows module's directory, with Entra groups).
   * Default: configured users only (approvals.users, alerts.responders.users); groups fail closed.
   */
  approvers?: () => { directory: ApproverDirectory; authorizer: ClickAuthorizer } | undefined;
  /** Who may /bind a channel (default: config.approvals.users). */
  isApprover?: ApproverCheck;
}

export interface AlertsModule extends KeywardenModule {
  readonly onScan: (result: ScanResult) => Promise<ScanAlertsOutcome>;
  readonly delivery: AlertDelivery;
  /** Sends whatever may go now (paced); returns when the next send is due. */
  drain(): Promise<DrainReport>;
  /** Wakes snoozes that ended, then drains. The drain loop calls this. */
  tick(): Promise<DrainReport>;
  resolve(alertId: string, resolution: AlertResolution): AlertRecord | undefined;
  setProgress(alertId: string, text: string | undefined): AlertRecord | undefined;
  channels(): SupportChannel[];
}

export function createAlertsModule(options: AlertsModuleOptions): AlertsModule {
  const { config, store, clock } = options;
  const log = options.logger.child({ component: 'alerts' });
  let gateway = options.gateway;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let unsubscribe: (() => void) | undefined;

  const ownDirectory = new ApproverDirectory({ approvals: config.approvals, responders: config.alerts.responders, clock });
  const own = { directory: ownDirectory, authorizer: new ClickAuthorizer({ config, directory: ownDirectory, store, clock, logger: log }) };
  const approvers = () => options.approvers?.() ?? own;

  // While a scan or an adoption is applied in slices nothing is sent, so its digest still goes before its cards.
  let applying = 0;
  const delivery = new AlertDelivery({
    holding: () => applying > 0,
    config, store, clock, logger: options.logger, gateway: () => gateway, pacer: options.pacer,
    onChannelDead: (conversationId, reason) => options.conversations?.markDead(conversationId, reason),
    planCard: options.planCard,
    refreshUserIds: () => refreshUserIds(store, approvers().directory),
  });

  const tick = async (): Promise<DrainReport> => {
    if (!store.isOpen || applying > 0) return { sent: 0, failed: 0, waiting: 0 };
    await snoozeKeysReady(store, clock.now());
    if (!store.isOpen) return { sent: 0, failed: 0, waiting: 0 };
    wakeSnoozed(store, clock.now());
    return delivery.drain();
  };

  // The loop sleeps in real time but decides on the clock, so tests that move the clock see sends at once after a kick.
  const schedule = (delayMs: number): void => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { void loop(); }, Math.max(10, delayMs));
    timer.unref();
  };
  const loop = async (): Promise<void> => {
    timer = undefined;
    let report: DrainReport | undefined;
    try {
      report = await tick();
    } catch (err) {
      log.error({ err }, 'alert drain failed; trying again shortly');
    }
    const idle = options.idleMs ?? 15_000;
    const wait = report?.nextDueAt !== undefined ? Math.min(idle, report.nextDueAt - clock.now()) : idle;
    schedule(wait);
  };
  const kick = (): void => {
    if (!stopped && gateway) schedule(0);
  };

  const onScan = async (result: ScanResult): Promise<ScanAlertsOutcome> => {
    applying += 1;
    let outcome: ScanAlertsOutcome;
    try {
      outcome = await applyScan(store, config, result, supportChannels(config, store));
    } finally {
      applying -= 1;
    }
    if (outcome.raised.length || outcome.resolved.length || outcome.opened.length) {
      log.info({ scanId: result.id, opened: outcome.opened.length, raised: outcome.raised.length, resolved: outcome.resolved.length, digests: outcome.digests.length }, 'alerts updated from scan');
    }
    if (outcome.unrouted.length > 0) {
      log.warn({ scanId: result.id, alerts: outcome.unrouted.length }, 'alerts have no support channel: configure teams.channels (with a default), or have an approver type /bind in a team channel where Keywarden is installed');
    }
    kick();
    return outcome;
  };
  if (options.scanner) unsubscribe = options.scanner.onScan((r) => onScan(r).then((o) => { options.onOutcome?.(o); }));

  const isApprover: ApproverCheck = options.isApprover ?? ((actor) => isConfiguredApprover(actor, config.approvals));

  /** A channel that is (again) a support channel: revive it if it was dead, and send it what was waiting. */
  const adoptChannel = async (conv: ConversationTarget): Promise<void> => {
    const now = clock.now();
    const channels = supportChannels(config, store);
    const base = conv.conversationId.replace(/;messageid=.*$/, '');
    for (const ch of channels) {
      if (!isChannelDead(store, ch.key)) continue;
      const health = channelHealth(store, ch.key);
      const sameTeam = Boolean(ch.target.teamId && conv.teamId && ch.target.teamId === conv.teamId);
      const sameConversation = ch.target.conversationId === base || health?.conversationId === base;
      const unknownTeam = !ch.target.teamId && ch.target.tenantId === conv.tenantId;
      if (sameConversation || sameTeam || unknownTeam) delivery.reviveChannel(ch);
    }
    // Read in slices, sent after: the channel's digest goes ahead of its cards.
    applying += 1;
    try {
      const routed = await routeWaitingAlerts(store, config, supportChannels(config, store), now);
      const count = [...routed.values()].reduce((n, ids) => n + ids.size, 0);
      if (count > 0) {
        log.info({ alerts: count }, 'alerts waiting for a support channel now have one');
        // The channel missed the scan's digest: it gets one now, ahead of the per-credential cards.
        await queueScanDigests(store, config, routed, `install-${now}`, now);
      }
    } finally {
      applying -= 1;
    }
    kick();
  };

  const onInstallation = async (event: InstallationEvent): Promise<Reply | void> => {
    if (event.action !== 'add') return;
    const conv = event.conversation;
    if (conv.kind === 'personal') {
      if (conv.userAadObjectId) markOwnerReachable(store, conv.userAadObjectId, clock.now());
      return;
    }
    if (conv.kind !== 'channel') return;
    if (config.teams.channels.length > 0) {
      await adoptChannel(conv);
      if (supportChannels(config, store).some((c) => c.target.conversationId === conv.conversationId.replace(/;messageid=.*$/, ''))) return;
      return { kind: 'text', text: `${config.bot.name} is installed here, but credential alerts go to the configured support channels (teams.channels); ask an admin to add this channel there.` };
    }
    if (channelBinding(store, conv.conversationId)?.status === 'bound') {
      await adoptChannel(conv);
      return;
    }
    // Installing never binds in production: anyone may install an app in their own team. The sandbox lets an approver's
    // install bind, so the tour works without typing /bind (and the sandbox is anonymous anyway).
    const actor = event.actor;
    if (config.mode === 'sandbox' && actor?.aadObjectId && (await isApprover(actor))) {
      setChannelBinding(store, { target: conv, status: 'bound', by: { aadObjectId: actor.aadObjectId, name: actor.name }, via: 'sandbox-install', now: clock.now() });
      log.warn({ conversationId: conv.conversationId, by: actor.name }, 'SANDBOX: an approver installed Keywarden in a channel, so it became a support channel without /bind (production requires /bind)');
      await adoptChannel(conv);
      return { kind: 'text', text: `Sandbox: ${actor.name || 'you'} ${actor.name ? 'is' : 'are'} an approver, so this channel is now a support channel (in production an approver types "/bind" here). Credential alerts arrive here.` };
    }
    log.info({ conversationId: conv.conversationId, teamId: conv.teamId }, 'installed in a channel that is not a support channel; an approver can /bind it');
    return { kind: 'text', text: howToBindText(config.bot.name) };
  };

  const readiness: ReadinessCheck[] = [
    {
      name: 'channels',
      check: () => {
        if (!store.isOpen) return { ok: false, detail: 'store is closed' };
        const channels = supportChannels(config, store);
        const problems: string[] = [];
        for (const ch of channels) {
          const h = channelHealth(store, ch.key);
          if (h?.status === 'dead') problems.push(`support channel ${ch.name} is unreachable (${h.code}) since ${new Date(h.since ?? 0).toISOString()} — reinstall Keywarden in that team; waiting alerts are sent then`);
        }
        // Counted by the last scan or channel change: the probe never lists the alerts.
        const unrouted = unroutedCount(store, channels);
        if (unrouted > 0) {
          problems.push(`${unrouted} alert${unrouted === 1 ? '' : 's'} have no support channel — set teams.channels with a default (teams.defaultChannel or a channel without routes), or have an approver type "@Keywarden /bind" in a standard team channel where Keywarden is installed`);
        }
        if (problems.length > 0) return { ok: false, detail: problems.join('; ') };
        if (channels.length === 0) return { ok: true, detail: 'no support channel yet — configure teams.channels, or have an approver type "/bind" in a standard team channel where Keywarden is installed' };
        return { ok: true, detail: `${channels.length} support channel${channels.length === 1 ? '' : 's'}: ${channels.map((c) => c.name).join(', ')}` };
      },
    },
    {
      name: 'alert-delivery',
      check: () => {
        if (!store.isOpen) return { ok: false, detail: 'store is closed' };
        const since = clock.now() - 24 * 3_600_000;
        // Counted from the outbox index (ids only, capped): the probe never reads the outbox itself.
        const backlog = countKeys(store, QUEUED_PREFIX, PROBE_CAP + 1);
        const failed = countKeys(store, FAILED_PREFIX, PROBE_CAP + 1, fromTime(FAILED_PREFIX, since));
        const owners = store.list<DeliveryHealth>('deliveries', { prefix: 'owner:' }).filter((r) => r.value.status === 'unreachable').length;
        const shown = (n: number): string => (n > PROBE_CAP ? `more than ${PROBE_CAP}` : String(n));
        const parts = [`${shown(backlog)} waiting to send`];
        if (failed) parts.push(`${shown(failed)} failed in the last 24 h (see the log)`);
        if (owners) parts.push(`${owners} owner${owners === 1 ? '' : 's'} unreachable in personal chat (they need to install Keywarden personally)`);
        return { ok: true, detail: parts.join('; ') };
      },
    },
  ];

  return {
    name: 'alerts',
    cardActions: notingClickers(withCardDataKeys(alertCardActions({
      config, store, clock, logger: log, kick, authorizer: () => approvers().authorizer, directory: () => approvers().directory,
    }), store), { store, clock, directory: () => approvers().directory }),
    commands: [bindCommand({ config, store, clock, isApprover, onBound: adoptChannel }), unbindCommand({ config, store, clock, isApprover, onBound: adoptChannel })],
    readiness,
    onScan,
    delivery,
    drain: () => delivery.drain(),
    tick,
    resolve(alertId, resolution) {
      const done = resolveAlert(store, alertId, resolution);
      kick();
      return done?.value;
    },
    setProgress(alertId, text) {
      const done = setAlertProgress(store, alertId, text, clock.now());
      kick();
      return done?.value;
    },
    channels: () => supportChannels(config, store),
    attachChat(chat) {
      gateway = chat;
      kick();
    },
    onInstallation,
    start() {
      stopped = false;
      schedule(0);
      // The configured channels may have changed since the last count: count anew, in slices, in the background.
      if (store.isOpen) {
        void recountUnrouted(store, supportChannels(config, store), clock.now(), timeSlices())
          .catch((err: unknown) => log.warn({ err }, 'could not count the alerts waiting for a support channel; /readyz shows the last count'));
      }
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      unsubscribe?.();
      await delivery.idle();
    },
  };
}

/** For the composition root: `keywarden.extend(alertsModuleFor(keywarden, { scanner }))`. */
export function alertsModuleFor(keywarden: Keywarden, extra: Pick<AlertsModuleOptions, 'scanner' | 'pacer' | 'idleMs' | 'onOutcome' | 'planCard' | 'isApprover' | 'approvers'> = {}): AlertsModule {
  return createAlertsModule({
    config: keywarden.config, store: keywarden.store, clock: keywarden.clock, logger: keywarden.logger,
    conversations: keywarden.conversations, gateway: keywarden.chat, ...extra,
  });
}
