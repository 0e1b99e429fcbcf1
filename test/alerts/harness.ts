import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBotServer, type BotServer } from '../../bot/server.js';
import { createAlertsModule, type AlertsModule } from '../../src/alerts/index.js';
import type { AlertRecord } from '../../src/alerts/types.js';
import { createKeywarden, type Keywarden } from '../../src/app.js';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import type { Credential, CredentialKind, Estate, Finding } from '../../src/domain/credential.js';
import { credentialId } from '../../src/domain/credential.js';
import type { ScanResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { invokeActivity, TEAM, TENANT_ID, SUPPORT_CHANNEL } from '../helpers/bot.js';

/**
 * The alerts over the real stack: SQLite file store, Keywarden core + alerts module, the bot server with the
 * real ChatGateway, and the Bot Connector emulator on one frozen clock that tests move forward.
 */

export const START = Date.UTC(2026, 3, 1, 9, 0, 0);
export { TENANT_ID, SUPPORT_CHANNEL, TEAM };

const ESTATE: Record<CredentialKind, Estate> = {
  'databricks-pat': 'databricks', 'keyvault-secret': 'keyvault', 'entra-password': 'entra', 'entra-certificate': 'entra',
};

/** A credential that expires `daysFromStart` days after START. */
export function cred(kind: CredentialKind, scope: string, nativeId: string, daysFromStart: number | null, over: Partial<Credential> = {}): Credential {
  return {
    id: credentialId(kind, scope, nativeId), kind, nativeId, name: nativeId,
    where: { estate: ESTATE[kind], scope, label: scope },
    createdAt: START - 10 * DAY_MS,
    expiresAt: daysFromStart === null ? null : START + daysFromStart * DAY_MS,
    heldIn: [], consumers: [], attributes: {},
    ...over,
  };
}

export function scanOf(now: number, credentials: Credential[], findings: Finding[] = [], errors: ScanResult['errors'] = []): ScanResult {
  return { id: randomUUID(), trigger: 'schedule', startedAt: now, finishedAt: now, credentials, findings, errors, changes: { added: [], removed: [], changed: [] } };
}

export interface AlertsHarness {
  readonly clock: AdjustableClock;
  readonly connector: ConnectorEmulator;
  readonly keywarden: Keywarden;
  readonly alerts: AlertsModule;
  readonly server: BotServer;
  readonly store: Store;
  readonly config: KeywardenConfig;
  readonly logLines: string[];
  /** Applies a scan taken "now" and drains until nothing is due now (does not move the clock). */
  scan(credentials: Credential[], findings?: Finding[], errors?: ScanResult['errors']): Promise<void>;
  /** Drains, moving the clock to each next due time, until the outbox is empty or `maxMs` of clock time passed. */
  drainAll(maxMs?: number): Promise<void>;
  alertFor(credentialId: string): AlertRecord | undefined;
  /** Clicks a button of the card with this activity id in the support channel. */
  click(verb: string, data: Record<string, unknown>, activityId: string, user?: { id: string; name: string; aadObjectId?: string }): Promise<{ status: number; body: unknown }>;
  /** Activities in the support channel (posts, replies and updates), in arrival order. */
  channelActivities(): ConnectorActivity[];
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface AlertsHarnessOptions {
  /** Merged into config.alerts. */
  alerts?: Record<string, unknown>;
  /** Extra top-level config. */
  config?: Record<string, unknown>;
  /** false: no configured channel (the installation channel is used). */
  configuredChannel?: boolean;
  connector?: { maxMessageBytes?: number; enforceRateLimits?: boolean };
  /** Share a clock with other emulators (default: a new one frozen at START). */
  clock?: AdjustableClock;
}

export async function startAlertsHarness(options: AlertsHarnessOptions = {}): Promise<AlertsHarness> {
  const clock = options.clock ?? new AdjustableClock({ frozenAt: START });
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-alerts-'));
  const dbPath = join(dir, 'keywarden.db');
  const connector = await startConnectorEmulator({ clock, ...options.connector });
  const channels = options.configuredChannel === false ? [] : [{
    name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: TENANT_ID, teamId: TEAM.id,
  }];
  const config = configSchema.parse({
    mode: 'sandbox', store: { path: dbPath },
    teams: { channels },
    ...options.config,
    alerts: { ...(options.config?.alerts as object | undefined), ...options.alerts },
  });
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', name: 'alerts-test', destination: { write: (l: string) => logLines.push(l) } });

  let store!: Store;
  let keywarden!: Keywarden;
  let alerts!: AlertsModule;
  let server!: BotServer;
  const boot = async (): Promise<void> => {
    store = openSqliteStore({ path: dbPath, clock });
    keywarden = createKeywarden({ config, store, logger, clock });
    alerts = createAlertsModule({ config, store, clock, logger, conversations: keywarden.conversations, idleMs: 60_000 });
    keywarden.extend(alerts);
    server = await startBotServer({ config, keywarden, logger, port: 0, gateway: { pacingMs: 0, retryBaseMs: 5 } });
    await keywarden.start();
  };
  await boot();

  const drainNow = async (): Promise<void> => {
    await alerts.delivery.idle();
    await alerts.tick();
  };

  const harness: AlertsHarness = {
    clock, connector, config, logLines,
    get keywarden() { return keywarden; },
    get alerts() { return alerts; },
    get server() { return server; },
    get store() { return store; },
    async scan(credentials, findings = [], errors = []) {
      await alerts.onScan(scanOf(clock.now(), credentials, findings, errors));
      await drainNow();
    },
    async drainAll(maxMs = 2 * 3_600_000) {
      const until = clock.now() + maxMs;
      for (;;) {
        await alerts.delivery.idle();
        const report = await alerts.tick();
        if (report.nextDueAt === undefined) {
          if (report.sent === 0) return;
          continue;
        }
        if (report.nextDueAt > until) return;
        clock.advanceTo(report.nextDueAt);
      }
    },
    alertFor(id) {
      return store.list<AlertRecord>('alerts').map((r) => r.value).filter((a) => a.credentialId === id).sort((a, b) => b.createdAt - a.createdAt)[0];
    },
    async click(verb, data, activityId, user) {
      const activity = invokeActivity(connector.serviceUrl, verb, data, activityId, { kind: 'channel', ...(user ? { user } : {}) });
      const res = await fetch(`${server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    channelActivities: () => connector.activities.filter((a) => a.conversationId === SUPPORT_CHANNEL.id),
    async restart() {
      await server.close();
      await boot();
    },
    async close() {
      await server.close();
      await connector.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The alert card (not the digest) inside an activity, if any. */
export function cardIn(a: ConnectorActivity): Record<string, unknown> | undefined {
  return a.attachments[0]?.content as Record<string, unknown> | undefined;
}

export function isDigest(a: ConnectorActivity): boolean {
  return JSON.stringify(cardIn(a) ?? {}).includes('Chart.Donut');
}

export function cardText(a: ConnectorActivity): string {
  return JSON.stringify(cardIn(a) ?? {});
}
