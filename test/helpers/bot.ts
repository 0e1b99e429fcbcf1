import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBotServer, type BotServer } from '../../bot/server.js';
import { createKeywarden, type Keywarden, type KeywardenModule } from '../../src/app.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

/**
 * A whole bot over real HTTP: SQLite store in a temp file, Keywarden core, the restify bot server on port 0
 * and the Bot Connector emulator its replies go to. Tests POST activities and read what Teams would have got.
 */

export const TENANT_ID = '11111111-2222-3333-4444-555555555555';
export const BOT = { id: '28:keywarden-test-bot', name: 'Keywarden' };
export const ALICE = { id: '29:alice-mri', name: 'Alice Admin', aadObjectId: 'aaaaaaaa-0000-0000-0000-000000000001' };
export const TEAM = { id: '19:team-general@thread.tacv2', name: 'Platform Team', aadGroupId: 'bbbbbbbb-0000-0000-0000-000000000001' };
export const SUPPORT_CHANNEL = { id: '19:support@thread.tacv2', name: 'Support' };

export type Activityish = Record<string, unknown>;

export interface Where {
  /** personal (default) or channel (the support channel of TEAM). */
  kind?: 'personal' | 'channel';
  conversationId?: string;
  user?: { id: string; name: string; aadObjectId?: string };
}

let counter = 0;
/** Unique numeric-looking inbound ids, like Teams message ids. */
export function nextInboundId(): string {
  counter += 1;
  return String(1_700_000_000_000 + counter);
}

function base(serviceUrl: string, where: Where = {}): Activityish {
  const kind = where.kind ?? 'personal';
  const user = where.user ?? ALICE;
  const conversationId = where.conversationId ?? (kind === 'channel' ? SUPPORT_CHANNEL.id : `a:personal-${user.id}`);
  return {
    id: nextInboundId(),
    channelId: 'msteams',
    serviceUrl,
    from: { ...user },
    recipient: { ...BOT },
    conversation: { id: conversationId, conversationType: kind, tenantId: TENANT_ID, ...(kind === 'channel' ? { isGroup: true } : {}) },
    channelData: kind === 'channel'
      ? { tenant: { id: TENANT_ID }, team: { ...TEAM }, channel: { ...SUPPORT_CHANNEL } }
      : { tenant: { id: TENANT_ID } },
    locale: 'en-US',
  };
}

/** A chat message; in a channel the text is prefixed with the bot mention (and its entity), as Teams sends it. */
export function messageActivity(serviceUrl: string, text: string, where: Where = {}): Activityish {
  const a = base(serviceUrl, where);
  const mention = where.kind === 'channel' && !text.includes('<at>');
  const full = mention ? `<at>${BOT.name}</at> ${text}` : text;
  const entities = full.includes(`<at>${BOT.name}</at>`)
    ? [{ type: 'mention', text: `<at>${BOT.name}</at>`, mentioned: { ...BOT } }]
    : [];
  return { ...a, type: 'message', text: full, textFormat: 'plain', entities };
}

/** An Action.Execute click on a card the bot posted (replyToId = that card's activity id). */
export function invokeActivity(serviceUrl: string, verb: string, data: Record<string, unknown>, replyToId: string, where: Where = {}): Activityish {
  const a = base(serviceUrl, where);
  const conversation = a.conversation as { id: string };
  if (where.kind === 'channel') conversation.id = `${conversation.id};messageid=${replyToId}`;
  return {
    ...a, type: 'invoke', name: 'adaptiveCard/action', replyToId,
    value: { action: { type: 'Action.Execute', verb, data }, trigger: 'manual' },
  };
}

export function installationUpdateActivity(serviceUrl: string, action: 'add' | 'remove', where: Where = {}): Activityish {
  const a = base(serviceUrl, { ...where, conversationId: where.conversationId ?? (where.kind === 'channel' ? TEAM.id : undefined) });
  if (where.kind === 'channel') (a.channelData as Record<string, unknown>).channel = { id: TEAM.id, name: 'General' };
  return { ...a, type: 'installationUpdate', action };
}

export function botAddedActivity(serviceUrl: string, where: Where = {}): Activityish {
  const a = base(serviceUrl, { ...where, conversationId: where.conversationId ?? (where.kind === 'channel' ? TEAM.id : undefined) });
  return { ...a, type: 'conversationUpdate', membersAdded: [{ id: BOT.id, name: BOT.name }] };
}

export interface SendResult {
  status: number;
  body: unknown;
  /** What the connector received for this turn: replies to it, or updates of the card it clicked. */
  sent: ConnectorActivity[];
}

export interface BotHarness {
  readonly url: string;
  readonly serviceUrl: string;
  readonly connector: ConnectorEmulator;
  readonly keywarden: Keywarden;
  readonly server: BotServer;
  readonly store: Store;
  readonly dbPath: string;
  readonly config: KeywardenConfig;
  /** Every log line the product wrote (JSON text). */
  readonly logLines: string[];
  send(activity: Activityish, options?: { replies?: number; timeoutMs?: number }): Promise<SendResult>;
  /** POSTs a raw body (bad JSON etc.). */
  sendRaw(body: string, contentType?: string): Promise<{ status: number; body: string }>;
  message(text: string, where?: Where): Activityish;
  /** Closes server + store and starts both again on the same database file. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface BotHarnessOptions {
  clock?: Clock;
  modules?: KeywardenModule[];
  config?: Record<string, unknown>;
  /** Bot server shutdown budget (default 10 s). */
  shutdownTimeoutMs?: number;
}

export async function startBotHarness(options: BotHarnessOptions = {}): Promise<BotHarness> {
  const clock = options.clock ?? systemClock;
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-bot-'));
  const dbPath = join(dir, 'keywarden.db');
  const config = configSchema.parse({ mode: 'sandbox', store: { path: dbPath }, log: { level: 'debug' }, ...options.config });
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', name: 'keywarden-test', destination: { write: (l: string) => logLines.push(l) } });
  const connector = await startConnectorEmulator({ clock });

  let store!: Store;
  let keywarden!: Keywarden;
  let server!: BotServer;
  const boot = async (): Promise<void> => {
    store = openSqliteStore({ path: dbPath, clock });
    keywarden = createKeywarden({ config, store, logger, clock });
    for (const m of options.modules ?? []) keywarden.extend(m);
    server = await startBotServer({ config, keywarden, logger, port: 0, gateway: { pacingMs: 0, retryBaseMs: 20 }, shutdownTimeoutMs: options.shutdownTimeoutMs });
    await keywarden.start();
  };
  await boot();

  const harness: BotHarness = {
    get url() { return server.url; },
    get serviceUrl() { return connector.serviceUrl; },
    connector,
    get keywarden() { return keywarden; },
    get server() { return server; },
    get store() { return store; },
    dbPath, config, logLines,

    async send(activity, sendOptions = {}) {
      const before = connector.lastSeq;
      const res = await fetch(`${server.url}/api/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity),
      });
      const text = await res.text();
      let body: unknown = text;
      try { body = text ? JSON.parse(text) : undefined; } catch { /* keep text */ }
      const conv = String((activity.conversation as { id?: string } | undefined)?.id ?? '').replace(/;messageid=.*$/, '');
      const mine = (a: ConnectorActivity): boolean => a.seq > before && a.conversationId === conv &&
        ((a.replyToId !== undefined && a.replyToId === activity.id) || (a.op === 'update' && a.activityId === activity.replyToId));
      const wanted = sendOptions.replies ?? 0;
      for (let n = 1; n <= wanted; n++) {
        await connector.waitFor((a) => mine(a) && connector.activities.filter(mine).length >= n, sendOptions.timeoutMs ?? 5_000);
      }
      return { status: res.status, body, sent: connector.activities.filter(mine) };
    },

    async sendRaw(body, contentType = 'application/json') {
      const res = await fetch(`${server.url}/api/messages`, { method: 'POST', headers: { 'content-type': contentType }, body });
      return { status: res.status, body: await res.text() };
    },

    message: (text, where) => messageActivity(connector.serviceUrl, text, where),

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
