import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBotServer, type BotServer } from '../../bot/server.js';
import { createKeywarden, type Keywarden, type KeywardenModule } from '../../src/app.js';
import type { Clock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import { startConnectorEmulator, type ConnectorEmulator, type ConnectorEmulatorOptions } from '../../src/sandbox/connector/emulator.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

/**
 * The bot over real HTTP for the bench: file-backed SQLite store, Keywarden core (+ modules), the restify bot
 * server on port 0 in anonymous sandbox mode, and the Bot Connector emulator its sends go to.
 */

export const TENANT_ID = '11111111-2222-3333-4444-555555555555';
export const BOT = { id: '28:keywarden-bench-bot', name: 'Keywarden' };
export const TEAM = { id: '19:team-general@thread.tacv2', name: 'Platform Team' };
export const SUPPORT_CHANNEL = { id: '19:support@thread.tacv2', name: 'Support' };

export interface BotRig {
  readonly url: string;
  readonly connector: ConnectorEmulator;
  readonly keywarden: Keywarden;
  readonly server: BotServer;
  readonly store: Store;
  readonly config: KeywardenConfig;
  /** Log lines the product wrote (they go nowhere; counted to show logging volume). */
  logLines(): number;
  close(): Promise<void>;
}

export interface BotRigOptions {
  clock: Clock;
  /** Built once the core exists (so a module can take keywarden.conversations). */
  modules?: (keywarden: Keywarden, ctx: { config: KeywardenConfig; store: Store; logger: Logger }) => KeywardenModule[];
  /** Extra config (merged at top level); `serviceUrl` fills in the support channel. */
  config?: (serviceUrl: string) => Record<string, unknown>;
  connector?: Omit<ConnectorEmulatorOptions, 'clock'>;
  /** Gateway pacing in real ms (production default 150; the alerts pace on the clock themselves). */
  pacingMs?: number;
  /** The store the bot uses (the caller closes it); default: a SQLite file of the rig's own. */
  store?: Store;
}

export async function startBotRig(options: BotRigOptions): Promise<BotRig> {
  const { clock } = options;
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-bench-bot-'));
  let lines = 0;
  const logger = createLogger({ level: 'info', name: 'keywarden-bench', destination: { write: () => { lines++; } } });
  const connector = await startConnectorEmulator({ clock, ...options.connector });
  let server: BotServer | undefined;
  let store: Store | undefined;
  try {
    const config = configSchema.parse({ mode: 'sandbox', store: { path: join(dir, 'keywarden.db') }, ...options.config?.(connector.serviceUrl) });
    store = options.store ?? openSqliteStore({ path: config.store.path, clock });
    const keywarden = createKeywarden({ config, store, logger, clock });
    for (const m of options.modules?.(keywarden, { config, store, logger }) ?? []) keywarden.extend(m);
    server = await startBotServer({ config, keywarden, logger, port: 0, gateway: { pacingMs: options.pacingMs ?? 150, retryBaseMs: 20 } });
    await keywarden.start();
    const s = server;
    const st = store;
    return {
      url: s.url, connector, keywarden, server: s, store: st, config,
      logLines: () => lines,
      async close() {
        await s.close();
        if (st.isOpen && !options.store) st.close();
        await connector.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await server?.close().catch(() => undefined);
    if (store?.isOpen && !options.store) store.close();
    await connector.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
