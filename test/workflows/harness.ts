import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBotServer, type BotServer } from '../../bot/server.js';
import type { AlertsModule } from '../../src/alerts/index.js';
import type { AlertRecord } from '../../src/alerts/types.js';
import { productModules, type ProductModules } from '../../src/modules.js';
import type { WorkflowsModule } from '../../src/workflows/module.js';
import { createKeywarden, type Keywarden } from '../../src/app.js';
import { AdjustableClock, systemClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import type { Scanner } from '../../src/scanner/scanner.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import type { JobRecord } from '../../src/domain/job.js';
import { BOT, invokeActivity, messageActivity, SUPPORT_CHANNEL, TEAM } from '../helpers/bot.js';

/**
 * Keywarden as a whole over HTTP: the sandbox clouds (Entra, Databricks, Key Vault, Data Factory) with their seeds,
 * the real scanner → alerts → bot server → Bot Connector emulator, and the workflows module. The Teams tenant is the
 * sandbox Entra tenant, and the clickers are the Playground users (approvers Alex and Megan, non-approver Lee).
 */

export const ALEX = { id: '29:alex-wilber', name: 'Alex Wilber', aadObjectId: '00000000-0000-0000-0000-0000000000a1' };
export const MEGAN = { id: '29:megan-bowen', name: 'Megan Bowen', aadObjectId: '00000000-0000-0000-0000-0000000000a2' };
export const LEE = { id: '29:lee-gu', name: 'Lee Gu', aadObjectId: '00000000-0000-0000-0000-0000000000a3' };
export type User = typeof ALEX;

export interface InvokeAnswer {
  status: number;
  /** The card that replaced the clicked one (for everyone), if the answer was a card. */
  card?: Record<string, unknown>;
  /** The message shown to the clicker, if the answer was text. */
  text?: string;
}

export interface WorkflowHarness {
  readonly clock: AdjustableClock;
  readonly clouds: SandboxClouds;
  readonly connector: ConnectorEmulator;
  readonly config: KeywardenConfig;
  readonly keywarden: Keywarden;
  readonly store: Store;
  readonly alerts: AlertsModule;
  readonly workflows: WorkflowsModule;
  readonly scanner: Scanner;
  readonly logLines: string[];
  /** The bot server's base URL (for /metrics, /readyz). */
  readonly botUrl: string;
  /** Runs a scan and delivers the resulting cards. */
  scanAndDeliver(): Promise<void>;
  alertFor(credentialId: string): AlertRecord | undefined;
  /** The alert with a nonce young enough to click (a stale one is refreshed the way Teams users see it: "out of date"). */
  freshAlert(credentialId: string): Promise<AlertRecord>;
  /** The posted card of an alert (its activity id), after scanAndDeliver. */
  cardActivityId(credentialId: string): string;
  click(verb: string, data: Record<string, unknown>, activityId: string, user: User, options?: { tenantId?: string }): Promise<InvokeAnswer>;
  command(text: string, user: User): Promise<{ status: number; replies: ConnectorActivity[] }>;
  jobs(): JobRecord[];
  /** Waits until a job satisfies the predicate (moving no clock). */
  waitForJob(predicate: (job: JobRecord) => boolean, timeoutMs?: number): Promise<JobRecord>;
  /** Waits until the subject's rotation is verified, then moves the clock past its grace window and ticks the engine. */
  passGraceWindow(subject: string, timeoutMs?: number): Promise<JobRecord>;
  /** Replies posted in the thread of a card. */
  thread(rootActivityId: string): ConnectorActivity[];
  restart(): Promise<void>;
  /**
   * A second Keywarden (another replica) on the same SQLite file, clouds and connector: its own store connection,
   * job engine (running), modules and bot server. Closed with the harness.
   */
  startReplica(): Promise<KeywardenReplica>;
  close(): Promise<void>;
}

/** One Keywarden core with its bot server, as `keywarden start` composes it. */
export interface KeywardenReplica {
  readonly store: Store;
  readonly keywarden: Keywarden;
  readonly alerts: AlertsModule;
  readonly workflows: WorkflowsModule;
  readonly scanner: Scanner;
  readonly botUrl: string;
  close(): Promise<void>;
}

export interface WorkflowHarnessOptions {
  config?: Record<string, unknown>;
  propagationDelayMs?: number;
  /** Changes the config after the sandbox's part is merged in (e.g. a workspace authenticated by a PAT). */
  adjust?: (config: Record<string, unknown>) => Record<string, unknown>;
}

export async function startWorkflowHarness(options: WorkflowHarnessOptions = {}): Promise<WorkflowHarness> {
  // Keywarden's clock moves (grace windows, TTLs); the clouds keep real time, so the Entra tokens the SDKs cache
  // (by real time) stay valid for the emulators, as they would against Azure.
  const clock = new AdjustableClock();
  const clouds = await startSandboxClouds({ clock: systemClock });
  if (options.propagationDelayMs) clouds.handles.entra.propagationDelayMs = options.propagationDelayMs;
  const connector = await startConnectorEmulator({ clock: systemClock });
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-wf-'));
  const channel = { name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id };
  const base = {
    mode: 'sandbox', store: { path: join(dir, 'keywarden.db') }, log: { level: 'debug' },
    teams: { channels: [channel] },
    ...options.config,
    // Scans run on the bot's thread here (a scan thread costs about 2 s of CPU to start, per harness); tests of the
    // scan thread itself ask for it with config.scanner.thread.
    scanner: { scanOnStart: false, schedule: '0 0 1 1 *', thread: false, ...(options.config?.scanner as Record<string, unknown> | undefined) },
  };
  const merged = withSandboxConfig(base, clouds.config);
  const config = configSchema.parse(options.adjust ? options.adjust(merged) : merged);
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', name: 'workflows-test', destination: { write: (l: string) => logLines.push(l) } });

  let store!: Store;
  let keywarden!: Keywarden;
  let alerts!: AlertsModule;
  let workflows!: WorkflowsModule;
  let scanner!: Scanner;
  let server!: BotServer;
  const replicas: KeywardenReplica[] = [];
  const boot = async (): Promise<void> => {
    const core = await startCore(config, clock, logger);
    ({ store, keywarden, alerts, workflows, scanner, server } = core);
  };
  await boot();

  const post = async (activity: Record<string, unknown>) => {
    const res = await fetch(`${server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  const harness: WorkflowHarness = {
    clock, clouds, connector, config, logLines,
    get keywarden() { return keywarden; },
    get store() { return store; },
    get alerts() { return alerts; },
    get workflows() { return workflows; },
    get scanner() { return scanner; },
    get botUrl() { return server.url; },
    async scanAndDeliver() {
      await scanner.runScan('command');
      // Deliver every card, moving the clock through the Teams pacing windows (seconds) like a real drain would.
      for (let i = 0; i < 200; i++) {
        await alerts.delivery.idle();
        const report = await alerts.tick();
        if (report.nextDueAt === undefined) {
          if (report.sent === 0) break;
          continue;
        }
        clock.advanceTo(report.nextDueAt);
      }
      await alerts.delivery.idle();
    },
    alertFor(credentialId) {
      return store.list<AlertRecord>('alerts').map((r) => r.value).filter((a) => a.credentialId === credentialId).sort((a, b) => b.createdAt - a.createdAt)[0];
    },
    async freshAlert(credentialId) {
      const alert = harness.alertFor(credentialId);
      if (!alert) throw new Error(`no alert for ${credentialId}`);
      if (clock.now() - alert.nonceIssuedAt < (config.approvals.nonceTtlMinutes - 1) * 60_000) return alert;
      await harness.click('rotate', { alertId: alert.id, nonce: 'out-of-date' }, harness.cardActivityId(credentialId), ALEX);
      return harness.alertFor(credentialId)!;
    },
    cardActivityId(credentialId) {
      const id = harness.alertFor(credentialId)?.message?.activityId;
      if (!id) throw new Error(`no card was posted for ${credentialId}`);
      return id;
    },
    async click(verb, data, activityId, user, clickOptions = {}) {
      const activity = invokeActivity(connector.serviceUrl, verb, data, activityId, { kind: 'channel', user });
      const tenantId = clickOptions.tenantId ?? clouds.tenantId;
      (activity.conversation as Record<string, unknown>).tenantId = tenantId;
      (activity.channelData as Record<string, unknown>).tenant = { id: tenantId };
      const res = await post(activity);
      const body = res.body as { type?: string; value?: unknown } | undefined;
      return {
        status: res.status,
        ...(body?.type === 'application/vnd.microsoft.card.adaptive' ? { card: body.value as Record<string, unknown> } : {}),
        ...(body?.type === 'application/vnd.microsoft.activity.message' ? { text: String(body.value) } : {}),
      };
    },
    async command(text, user) {
      const activity = messageActivity(connector.serviceUrl, text, { kind: 'channel', user });
      (activity.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
      (activity.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
      const before = connector.lastSeq;
      const res = await post(activity);
      const reply = await connector.waitFor((a) => a.seq > before && a.replyToId === activity.id, 10_000);
      return { status: res.status, replies: [reply] };
    },
    jobs: () => store.list<JobRecord>('jobs').map((r) => r.value),
    async waitForJob(predicate, timeoutMs = 20_000) {
      const start = Date.now();
      for (;;) {
        const job = harness.jobs().find(predicate);
        if (job) return job;
        if (Date.now() - start > timeoutMs) throw new Error(`no job matched in ${timeoutMs} ms; jobs: ${JSON.stringify(harness.jobs().map((j) => ({ id: j.id, kind: j.kind, state: j.state, waitingFor: j.waitingFor, error: j.error })))}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async passGraceWindow(subject, timeoutMs = 60_000) {
      const isRotation = (j: JobRecord) => j.subject === subject && (j.kind === 'rotate-pat' || j.kind === 'rotate-entra');
      const job = await harness.waitForJob((j) => isRotation(j) && (j.state === 'waiting' ? typeof j.facts.verifiedAt === 'number' : ['done', 'compensated', 'failed', 'cancelled'].includes(j.state)), timeoutMs);
      if (job.state !== 'waiting') return job;
      clock.advance(Number(job.plan.parameters.graceHours ?? 24) * 3_600_000 + 60_000);
      await workflows.engine.tick();
      return job;
    },
    thread: (rootActivityId) => connector.repliesTo(rootActivityId),
    async restart() {
      await server.close();
      await boot();
    },
    async startReplica() {
      const core = await startCore(config, clock, logger.child({ replica: replicas.length + 2 }));
      const replica: KeywardenReplica = {
        store: core.store, keywarden: core.keywarden, alerts: core.alerts, workflows: core.workflows, scanner: core.scanner, botUrl: core.server.url,
        close: () => core.server.close(),
      };
      replicas.push(replica);
      return replica;
    },
    async close() {
      for (const r of replicas.splice(0)) await r.close().catch(() => undefined);
      await server.close().catch(() => undefined);
      await connector.close();
      await clouds.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The same composition `keywarden start` runs, with short retries and fast polling for tests. */
async function startCore(config: KeywardenConfig, clock: AdjustableClock, logger: ReturnType<typeof createLogger>) {
  const store = openSqliteStore({ path: config.store.path, clock });
  const keywarden = createKeywarden({ config, store, logger, clock });
  const built: ProductModules = {};
  const factories = productModules({
    retry: { maxRetries: 1, baseDelayMs: 10 },
    alerts: { idleMs: 200 },
    workflows: { engine: { pollMs: 50, backoff: { baseMs: 300, maxMs: 3000 }, stopTimeoutMs: 3000 } },
  }, built);
  for (const factory of factories) keywarden.extend(factory(keywarden));
  const server = await startBotServer({ config, keywarden, logger, port: 0, gateway: { pacingMs: 0, retryBaseMs: 5 } });
  await keywarden.start();
  return { store, keywarden, alerts: built.alerts!, workflows: built.workflows!, scanner: built.scanner!, server };
}

export { BOT, SUPPORT_CHANNEL };

/** Every string in a card or activity, joined: for "does any text say …" and "no secret anywhere" checks. */
export function allText(value: unknown): string {
  return JSON.stringify(value ?? null);
}
