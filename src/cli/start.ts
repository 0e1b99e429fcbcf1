import { installSignalHandlers, startBotServer, type BotServer } from '../../bot/server.js';
import { createKeywarden, type Keywarden, type KeywardenModule } from '../app.js';
import { AdjustableClock, systemClock, type Clock } from '../clock.js';
import { productModules } from '../modules.js';
import { startSandboxEnvironment } from '../sandbox/start.js';
import { loadConfig, type Env } from '../config/load.js';
import type { KeywardenConfig } from '../config/schema.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { connectAuditKeyVault } from '../providers/keyvault/audit-key-vault.js';
import { createAuditAnchorer } from '../store/audit-anchor.js';
import { openFormatGate, type FormatGate } from '../replicas/format-gate.js';
import { openConfiguredStore } from '../replicas/open.js';
import type { Store } from '../store/store.js';
import { configPathFrom } from './main.js';
import { installProcessGuards } from './process-guards.js';
import { assertPortFree, portError } from './port.js';

/** `keywarden start`: config → store → Keywarden core → bot server, with graceful shutdown on signals. */

/** What the sandbox bootstrap hands back: the config pointing at its emulators, and how to stop them. */
export interface SandboxHandle {
  config?: KeywardenConfig;
  modules?: KeywardenModule[];
  close(): Promise<void>;
}

export type SandboxStarter = (context: { config: KeywardenConfig; logger: Logger; clock: Clock }) => Promise<SandboxHandle | undefined>;

export interface StartKeywardenOptions {
  configPath?: string;
  env?: Env;
  cwd?: string;
  clock?: Clock;
  logger?: Logger;
  /** Overrides config.server.port (0 = any free port). */
  port?: number;
  /** Sandbox bootstrap (emulators + seeded estate), run before the store opens when mode is sandbox. */
  startSandbox?: SandboxStarter;
  /** Feature modules, or factories that need the core (scanner, alerts, workflows…). */
  modules?: Array<KeywardenModule | ((keywarden: Keywarden) => KeywardenModule)>;
  /** Install SIGTERM/SIGINT handlers (default true; tests pass false). */
  handleSignals?: boolean;
  /** Log unhandled rejections instead of dying, and stop gracefully on an uncaught exception (default: as handleSignals). */
  guardProcess?: boolean;
  /** The store-format gate: this release's format (tests pretend to be a newer release) and how often it is re-read. */
  storeFormat?: { format?: number; checkEveryMs?: number };
  /** Wraps the opened store before anything uses it (crash tests stop the process at a chosen write). */
  wrapStore?: (store: Store) => Store;
}

export interface RunningKeywarden {
  config: KeywardenConfig;
  keywarden: Keywarden;
  server: BotServer;
  logger: Logger;
  /** Graceful stop: bot server (turns, sends), Keywarden (modules, store), then the sandbox. */
  stop(): Promise<void>;
}

export async function startKeywarden(options: StartKeywardenOptions = {}): Promise<RunningKeywarden> {
  const clock = options.clock ?? systemClock;
  const loaded = loadConfig({ path: options.configPath, env: options.env, cwd: options.cwd });
  let config = loaded.config;
  // Same host rule as the bot server; checked first so a taken port stops us before the sandbox or store start.
  const host = config.mode === 'sandbox' ? '127.0.0.1' : config.server.host;
  const port = options.port ?? config.server.port;
  await assertPortFree(port, host);
  const logger = options.logger ?? createLogger({ level: config.log.level, name: 'keywarden' });
  if (loaded.source === 'none') {
    logger.warn('*** No configuration found (KEYWARDEN_CONFIG or ./keywarden.yaml): running the SANDBOX against emulated clouds. Nothing real is touched. ***');
  } else {
    logger.info({ path: loaded.path, mode: config.mode }, 'configuration loaded');
  }

  let sandbox: SandboxHandle | undefined;
  if (config.mode === 'sandbox' && options.startSandbox) {
    sandbox = await options.startSandbox({ config, logger, clock });
    config = sandbox?.config ?? config;
  }

  // The audit key comes from Key Vault before the store opens, so every record of this run is keyed.
  let auditVault: ReturnType<typeof connectAuditKeyVault>;
  let auditKey: Buffer | undefined;
  try {
    auditVault = connectAuditKeyVault(config);
    auditKey = auditVault?.keyWhere ? await auditVault.readKey() : undefined;
  } catch (err) {
    await sandbox?.close();
    throw err;
  }
  let nudgeAnchorer: (seq: number) => void = () => undefined;
  const opened = openConfiguredStore(config, { clock, logger, auditKey, onAuditAppended: (seq) => nudgeAnchorer(seq) });
  const { leadership } = opened;
  // Before any module is built: a store ahead of this release stops the start here (STORE_FORMAT_NEWER).
  let gate: FormatGate;
  try {
    gate = openFormatGate({
      store: opened.store, clock, logger, replicas: leadership !== undefined, format: options.storeFormat?.format,
      checkEveryMs: options.storeFormat?.checkEveryMs ?? (config.store.azure?.leaseSeconds ?? 30) * 1000 / 3,
    });
  } catch (err) {
    opened.store.close();
    await sandbox?.close();
    throw err;
  }
  // Before the lease, the modules and the bot server (which already starts the alert loop): older replicas fence first.
  await gate.settle();
  const store = options.wrapStore ? options.wrapStore(opened.store) : opened.store;
  const keywarden = createKeywarden({ config, store, logger, clock, leadership });
  // First of all: it stops last, after the lease was released.
  keywarden.extend(gate.module(keywarden));
  // Registered first: modules start knowing their role, and the lease is released only after they all stopped.
  if (leadership) keywarden.extend({ name: 'leadership', start: () => leadership.start(), stop: () => leadership.stop() });
  if (auditVault?.anchors) {
    const anchorer = createAuditAnchorer({
      store: keywarden.store, sink: auditVault.anchors, clock, logger,
      everyEntries: config.audit.anchorEveryEntries, everyMs: config.audit.anchorEveryMinutes * 60_000,
    });
    nudgeAnchorer = (seq) => anchorer.nudge(seq);
    // Registered first, so it stops last: the final anchor covers what the other modules audited at shutdown.
    keywarden.extend({ name: 'audit-anchor', start: () => anchorer.start(), stop: () => anchorer.stop() });
  }
  logger.info({ auditKey: auditVault?.keyWhere ?? 'none (unkeyed chain)', auditAnchors: auditVault?.anchors?.where ?? 'none' }, 'audit log');
  let server: BotServer | undefined;
  try {
    for (const m of [...(sandbox?.modules ?? []), ...(options.modules ?? [])]) keywarden.extend(typeof m === 'function' ? m(keywarden) : m);
    server = await startBotServer({ config, keywarden, logger, port: options.port });
    await keywarden.start();
  } catch (err) {
    await (server ? server.close() : keywarden.stop());
    await sandbox?.close();
    throw portError(err, port, host); // taken between the check and the listen
  }

  const bot = server;
  let stopping: Promise<void> | undefined;
  const running: RunningKeywarden = {
    config, keywarden, server: bot, logger,
    stop() {
      stopping ??= (async () => {
        await bot.close();
        await sandbox?.close();
      })();
      return stopping;
    },
  };
  if (options.handleSignals !== false) installSignalHandlers({ close: running.stop }, logger);
  if (options.guardProcess ?? options.handleSignals !== false) installProcessGuards({ logger, stop: running.stop });
  return running;
}

/**
 * CLI entry for main.ts: `keywarden start [--config <file>]`. Returns 0 once serving (the process stays up on the
 * open server); ConfigError and other failures propagate so main prints them in its one format.
 * The sandbox bootstrap plugs in through `options.startSandbox`.
 */
export async function run(argv: string[], options: Omit<StartKeywardenOptions, 'configPath'> = {}): Promise<number> {
  await startKeywarden({
    ...options,
    configPath: configPathFrom(argv),
    // The sandbox control endpoint can move this clock forward; in production nothing does.
    clock: options.clock ?? new AdjustableClock(),
    startSandbox: options.startSandbox ?? ((context) => startSandboxEnvironment(context)),
    modules: options.modules ?? productModules(),
  });
  return 0;
}
