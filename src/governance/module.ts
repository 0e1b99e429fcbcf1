/**
 * The governance report as a Keywarden module: `/governance` on demand, and a report posted in each support channel
 * after the first scan following install and then every `governance.report.everyDays` — each with its trend since
 * the channel's previous report and remedy buttons (offers) that lead to the remedies' plan cards.
 */
import type { Keywarden, KeywardenModule } from '../app.js';
import { DAY_MS, MINUTE_MS } from '../clock.js';
import { supportChannels, type SupportChannel } from '../alerts/routing.js';
import { createRemedyOffer, pruneRemedyOffers } from '../approvals/remedy-offers.js';
import type { AdaptiveCard, ChatCommand, ChatGateway, InstallationEvent, Reply } from '../domain/chat.js';
import type { ScanResult } from '../domain/scan.js';
import type { Scanner } from '../scanner/scanner.js';
import { REMEDY_VERBS, renderGovernanceCard, type RemedyButton } from './card.js';
import { buildGovernanceReport, type GovernanceReport, type PreviousReport } from './report.js';

/** Per channel, in `settings`: the last report posted there (its counts are the next report's baseline). */
interface ChannelReportState {
  channel: string;
  last?: PreviousReport;
  /** A post in flight (claimed); another one may start only after this is older than PENDING_MS. */
  pendingSince?: number;
}

const PENDING_MS = 10 * MINUTE_MS;
const FIRST_HEADING = '🛡️ Governance report (the first for this channel)';
const stateId = (channelKey: string): string => `governance:report:${channelKey}`;

export const GOVERNANCE_USAGE = '/governance';

export interface GovernanceModule extends KeywardenModule {
  /** Posts the reports that are due after this scan (exposed for tests and the bench). */
  reportAfterScan(scan: ScanResult): Promise<string[]>;
}

export function governanceModuleFor(k: Keywarden, scanner: Scanner): GovernanceModule {
  const { config, store, clock } = k;
  const settings = config.governance.report;
  const log = k.logger.child({ component: 'governance' });
  let gateway: ChatGateway | undefined = k.chat;
  let unsubscribe: (() => void) | undefined;

  const buttonsFor = (report: GovernanceReport): RemedyButton[] => report.remedies.slice(0, settings.maxButtons).map((r) => {
    const offer = createRemedyOffer(store, clock, { remedy: r.remedy, subject: r.subject, scope: r.scope, parameters: {}, offeredBy: { name: 'Keywarden (governance report)' } });
    return { title: r.label, verb: REMEDY_VERBS[r.remedy], offerId: offer.id, nonce: offer.nonce };
  });

  const cardFor = async (scan: ScanResult, previous: PreviousReport | undefined, heading?: string): Promise<{ report: GovernanceReport; card: AdaptiveCard }> => {
    const report = await buildGovernanceReport(scan, previous, { now: clock.now(), topOffenders: settings.topOffenders });
    return { report, card: renderGovernanceCard(report, buttonsFor(report), { heading }) };
  };

  /** A channel where Keywarden is installed (not only configured): the first report goes there, and only there. */
  const installed = (channel: SupportChannel): boolean =>
    store.get<{ status?: string }>('conversations', channel.target.conversationId)?.value.status === 'active';

  /**
   * Claims the channel's report for this moment (compare-and-set), so two scans or replicas never post it twice. Due:
   * the first report once the channel has Keywarden installed, then every everyDays.
   */
  const claim = (channel: SupportChannel): { version: number; state: ChannelReportState } | undefined => {
    const now = clock.now();
    const id = stateId(channel.key);
    const rec = store.get<ChannelReportState>('settings', id);
    const state = rec?.value ?? { channel: channel.key };
    if (state.pendingSince !== undefined && now - state.pendingSince < PENDING_MS) return undefined;
    const due = state.last ? now - state.last.at >= settings.everyDays * DAY_MS : installed(channel);
    if (!due) return undefined;
    const next = { ...state, pendingSince: now };
    const written = rec ? store.compareAndSet('settings', id, rec.version, next) : store.insert('settings', id, next);
    return written ? { version: written.version, state } : undefined;
  };

  /** Records a report as the channel's last one (the next report's baseline) and audits it. */
  const recordPosted = (channel: SupportChannel, report: GovernanceReport, via: 'schedule' | 'install'): void => {
    const id = stateId(channel.key);
    const rec = store.get<ChannelReportState>('settings', id);
    const last: PreviousReport = { at: report.at, scanId: report.scanId, counts: report.counts };
    if (rec) store.compareAndSet('settings', id, rec.version, { channel: channel.key, last });
    else store.insert('settings', id, { channel: channel.key, last });
    store.appendAudit({
      action: 'governance.report.posted', actor: { name: 'Keywarden' }, subject: channel.key, result: 'info',
      details: { via, scanId: report.scanId, total: report.total, previousTotal: report.previousTotal, remedies: report.remedies.length },
    });
  };

  /** Gives the claim back so the next scan tries again (the report was not seen). */
  const giveBack = (channel: SupportChannel, state: ChannelReportState): void => {
    const rec = store.get<ChannelReportState>('settings', stateId(channel.key));
    if (rec) store.compareAndSet('settings', rec.id, rec.version, { ...state, pendingSince: undefined });
  };

  /** The claimed channel's report card; if it cannot be built, the claim goes back for the next scan. */
  const buildClaimed = async (channel: SupportChannel, state: ChannelReportState, scan: ScanResult) => {
    try {
      return await cardFor(scan, state.last, state.last ? undefined : FIRST_HEADING);
    } catch (err) {
      giveBack(channel, state);
      throw err;
    }
  };

  const post = async (channel: SupportChannel, scan: ScanResult): Promise<boolean> => {
    if (!gateway) return false;
    const claimed = claim(channel);
    if (!claimed) return false;
    const { report, card } = await buildClaimed(channel, claimed.state, scan);
    try {
      await gateway.post(channel.target, { card, text: `Governance report: ${report.total} findings besides expiry` });
    } catch (err) {
      giveBack(channel, claimed.state);
      log.warn({ err, channel: channel.key }, 'could not post the governance report; the next scan tries again');
      return false;
    }
    recordPosted(channel, report, 'schedule');
    return true;
  };

  /** Buttons of the last two scheduled reports keep working; older offers go (at least 30 days are kept). */
  const pruneOffers = (): void => {
    const keepMs = Math.max(30, 2 * settings.everyDays) * DAY_MS;
    const pruned = pruneRemedyOffers(store, clock.now() - keepMs);
    if (pruned > 0) log.info({ pruned, keptDays: keepMs / DAY_MS }, 'removed remedy offers older than the last two reports');
  };

  const reportAfterScan = async (scan: ScanResult): Promise<string[]> => {
    if (!store.isOpen) return [];
    pruneOffers();
    if (!settings.enabled) return [];
    const posted: string[] = [];
    for (const channel of supportChannels(config, store)) {
      if (await post(channel, scan)) posted.push(channel.key);
    }
    return posted;
  };

  const command: ChatCommand = {
    name: 'governance',
    usage: GOVERNANCE_USAGE,
    description: 'Shows the governance report: findings besides expiry per estate and their trend since the last report, the owners with the most findings, personal vs service-principal tokens, workspace token controls, and buttons for the remedies.',
    example: '/governance',
    details: `No arguments. The report is also posted in each support channel every ${settings.everyDays} days (governance.report.everyDays) and right after install.`,
    async handle(args): Promise<Reply> {
      if (args.trim().length > 0) return { kind: 'text', text: `/governance takes no arguments (got "${args.trim().slice(0, 40)}") — type /governance` };
      const scan = await scanner.latestOrScan('command');
      const channel = supportChannels(config, store)[0];
      const previous = channel ? store.get<ChannelReportState>('settings', stateId(channel.key))?.value.last : undefined;
      return { kind: 'card', card: (await cardFor(scan, previous)).card };
    },
  };

  return {
    name: 'governance',
    commands: [command],
    reportAfterScan,
    attachChat(g) {
      gateway = g;
    },
    async onInstallation(event: InstallationEvent): Promise<Reply | void> {
      if (event.action !== 'add' || event.conversation.kind !== 'channel' || !settings.enabled) return;
      const here = event.conversation.conversationId.replace(/;messageid=.*$/, '');
      const channel = supportChannels(config, store).find((c) => c.target.conversationId === here);
      // No scan yet: the first report follows the first scan (the channel is installed now, so it is due).
      const scan = channel && scanner.lastScan();
      if (!channel || !scan) return;
      const claimed = claim(channel);
      if (!claimed) return;
      // Sent as an install reply, after the alerts module's words about the channel, in one ordered turn.
      const { report, card } = await buildClaimed(channel, claimed.state, scan);
      // Recorded once Teams took it: a lost reply leaves the claim to lapse, and a later scan posts the first report.
      return { kind: 'card', card, text: `Governance report: ${report.total} findings besides expiry`, afterSend: () => recordPosted(channel, report, 'install') };
    },
    start() {
      unsubscribe = scanner.onScan(async (scan) => {
        await reportAfterScan(scan).catch((err) => log.error({ err }, 'governance report after the scan failed'));
      });
    },
    stop() {
      unsubscribe?.();
    },
  };
}
