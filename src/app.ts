import type { Clock } from './clock.js';
import type { KeywardenConfig } from './config/schema.js';
import type { CardAction, ChatCommand, ChatGateway, ConversationTarget, InstallationEvent, Reply } from './domain/chat.js';
import type { HttpRoute } from './domain/http.js';
import type { Logger } from './logging/logger.js';
import type { Store } from './store/store.js';
import { helpCommand } from './commands/help.js';
import { KeywardenMetrics } from './observability/metrics.js';
import { singleInstance, type Leadership } from './replicas/leadership.js';
import { fenceAwareStore } from './store/fenced.js';

/**
 * The composition root: the Keywarden core built from config, with no Teams types. Feature modules
 * (scanner, alerts, workflows…) plug in through `extend()` so none of them edits another's code.
 */

export interface ReadinessCheckResult {
  ok: boolean;
  /** One line for operators, e.g. "store closed — restart the process". */
  detail?: string;
}

export interface ReadinessCheck {
  name: string;
  check(): ReadinessCheckResult | Promise<ReadinessCheckResult>;
}

/** Why a replica refuses all work while it keeps serving /readyz (e.g. the store moved to a newer format). */
export interface Fence {
  /** For the log and /readyz: what happened and what to do. */
  reason: string;
  /** What a person clicking or typing is told. */
  userMessage: string;
  /** What HTTP callers are told to wait before retrying (another replica should answer by then). */
  retryAfterSeconds: number;
  /** Why, in a few words, for /readyz's role check (default: the reason). */
  summary?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Array<{ name: string } & ReadinessCheckResult>;
}

/** What a feature module contributes. Every field is optional. */
export interface KeywardenModule {
  name: string;
  commands?: ChatCommand[];
  cardActions?: CardAction[];
  readiness?: ReadinessCheck[];
  /** HTTP endpoints beside /api/messages (bot/ mounts them), e.g. the pipeline JIT API. */
  httpRoutes?: HttpRoute[];
  /** Called when a ChatGateway is attached (modules that post keep it). */
  attachChat?(gateway: ChatGateway): void;
  /** May answer the installation (e.g. "this channel is not a support channel; /bind it"). */
  onInstallation?(event: InstallationEvent): void | Reply | Promise<void | Reply>;
  /** Runs at start, in registration order (e.g. resume journaled jobs, register the scan schedule). */
  start?(): void | Promise<void>;
  /** Runs at stop, in reverse registration order, before the store closes. */
  stop?(): void | Promise<void>;
}

/** A conversation the bot was installed in, as kept in the `conversations` collection. */
export interface StoredConversation {
  target: ConversationTarget;
  /** active: installed; removed: uninstalled; dead: Teams said the bot is not in the roster. */
  status: 'active' | 'removed' | 'dead';
  installedBy?: { aadObjectId?: string; name?: string };
  /** Why the reference was marked dead (error code), when it was. */
  deadReason?: string;
  changedAt: number;
}

export interface ConversationBook {
  get(conversationId: string): StoredConversation | undefined;
  list(filter?: { status?: StoredConversation['status'] }): StoredConversation[];
  /** The caller saw a permanent delivery error (403 BotNotInConversationRoster): stop posting until re-installed. */
  markDead(conversationId: string, reason: string): void;
}

export interface Keywarden {
  readonly config: KeywardenConfig;
  readonly store: Store;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Every registered command (help first), in registration order. */
  readonly commands: readonly ChatCommand[];
  readonly cardActions: readonly CardAction[];
  readonly httpRoutes: readonly HttpRoute[];
  /** The attached gateway, once the bot edge is up. */
  readonly chat: ChatGateway | undefined;
  readonly conversations: ConversationBook;
  /** Prometheus counters for this process (served on GET /metrics). */
  readonly metrics: KeywardenMetrics;
  /** Whether this replica runs the schedules (always, with one SQLite instance); modules gate their timers on it. */
  readonly leadership: Leadership;
  /** Set once this replica is fenced: the bot and HTTP edges refuse clicks, commands and API calls. */
  readonly fenced: Fence | undefined;
  /**
   * Stops every module (timers, loops, the lease) but keeps the store open for reads, and refuses work from now on:
   * the store refuses every write at once (STORE_FENCED), so work still running stops at its next write.
   */
  fence(fence: Fence): Promise<void>;
  extend(module: KeywardenModule): void;
  attachChat(gateway: ChatGateway): void;
  /** Records the installation and returns what the modules want said in the conversation (once per install). */
  onInstallation(event: InstallationEvent): Promise<Reply[]>;
  readiness(): Promise<ReadinessReport>;
  start(): Promise<void>;
  /** Stops modules (reverse order) and closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

export interface CreateKeywardenOptions {
  config: KeywardenConfig;
  store: Store;
  logger: Logger;
  clock: Clock;
  chat?: ChatGateway;
  metrics?: KeywardenMetrics;
  /** Default: a single instance, always leader. */
  leadership?: Leadership;
}

export class KeywardenSetupError extends Error {
  override readonly name = 'KeywardenSetupError';
  readonly statusCode = undefined;
  constructor(message: string, readonly code: 'duplicate-command' | 'duplicate-verb' | 'bad-module' | 'already-started') {
    super(message);
  }
}

/** Conversation records are keyed by the conversation id without any thread suffix. */
function conversationKey(conversationId: string): string {
  return conversationId.replace(/;messageid=.*$/, '');
}

export function createKeywarden(options: CreateKeywardenOptions): Keywarden {
  const { config, logger, clock } = options;
  const log = logger.child({ component: 'keywarden' });
  // Every module reaches the store through this one: a fence refuses their writes in this single place.
  const store = fenceAwareStore(options.store, { fencedBy: () => fenced?.reason, logger });
  const modules: KeywardenModule[] = [];
  const commands: ChatCommand[] = [];
  const cardActions: CardAction[] = [];
  const httpRoutes: HttpRoute[] = [];
  const metrics = options.metrics ?? new KeywardenMetrics();
  const leadership = options.leadership ?? singleInstance;
  let chat = options.chat ? metrics.instrumentChat(options.chat) : undefined;
  let state: 'new' | 'started' | 'fenced' | 'stopped' = 'new';
  let fenced: Fence | undefined;
  /** The modules' stop while fencing; stop() waits for it and does not stop them twice. */
  let fencing: Promise<void> | undefined;

  const stopModules = async (): Promise<void> => {
    for (const m of [...modules].reverse()) {
      try {
        await m.stop?.();
      } catch (err) {
        log.error({ err, module: m.name }, 'module failed to stop cleanly');
      }
    }
  };

  const coreChecks: ReadinessCheck[] = [
    { name: 'store', check: () => (store.isOpen ? { ok: true } : { ok: false, detail: 'store is closed — restart Keywarden' }) },
    { name: 'chat', check: () => (chat ? { ok: true } : { ok: false, detail: 'no Teams gateway attached yet — the bot server is starting' }) },
    { name: 'started', check: () => (state === 'started' ? { ok: true } : { ok: false, detail: fenced ? `fenced, serves nothing: ${fenced.reason}` : `core is ${state}` }) },
    { name: 'role', check: () => (fenced ? { ok: false, detail: `fenced: ${fenced.summary ?? fenced.reason} — not leading, no schedules, no writes` } : { ok: true, detail: leadership.describe() }) },
  ];

  const conversations: ConversationBook = {
    get: (id) => store.get<StoredConversation>('conversations', conversationKey(id))?.value,
    list: (filter) => store.list<StoredConversation>('conversations')
      .map((r) => r.value)
      .filter((c) => !filter?.status || c.status === filter.status),
    markDead(id, reason) {
      const key = conversationKey(id);
      const current = store.get<StoredConversation>('conversations', key);
      if (!current || current.value.status === 'dead') return;
      store.put<StoredConversation>('conversations', key, { ...current.value, status: 'dead', deadReason: reason, changedAt: clock.now() });
      store.appendAudit({ action: 'conversation.dead', subject: key, result: 'info', details: { reason } });
      log.warn({ conversationId: key, reason }, 'conversation reference marked dead; Keywarden posts there again after it is re-installed');
    },
  };

  const keywarden: Keywarden = {
    config, store, logger, clock, conversations, metrics, leadership,
    get commands() { return commands; },
    get cardActions() { return cardActions; },
    get httpRoutes() { return httpRoutes; },
    get chat() { return chat; },
    get fenced() { return fenced; },

    async fence(next) {
      if (fenced || state === 'stopped') return;
      fenced = next;
      // While start() runs it sees the fence after the current module and stops them itself.
      if (state !== 'started') return;
      state = 'fenced';
      fencing = stopModules();
      await fencing;
    },

    extend(module) {
      if (!module?.name) throw new KeywardenSetupError('a module needs a name — pass { name: "scanner", ... }', 'bad-module');
      if (state !== 'new') {
        throw new KeywardenSetupError(`module "${module.name}" was added after start — call extend() before keywarden.start()`, 'already-started');
      }
      for (const c of module.commands ?? []) {
        if (commands.some((x) => x.name.toLowerCase() === c.name.toLowerCase())) {
          throw new KeywardenSetupError(`command "/${c.name}" from module "${module.name}" is already registered — rename one of them`, 'duplicate-command');
        }
      }
      for (const a of module.cardActions ?? []) {
        if (cardActions.some((x) => x.verb === a.verb)) {
          throw new KeywardenSetupError(`card verb "${a.verb}" from module "${module.name}" is already registered — rename one of them`, 'duplicate-verb');
        }
      }
      modules.push(module);
      commands.push(...(module.commands ?? []));
      cardActions.push(...(module.cardActions ?? []));
      httpRoutes.push(...(module.httpRoutes ?? []));
      if (chat) module.attachChat?.(chat);
    },

    attachChat(gateway) {
      chat = metrics.instrumentChat(gateway);
      for (const m of modules) m.attachChat?.(chat);
    },

    async onInstallation(event) {
      const key = conversationKey(event.conversation.conversationId);
      const previous = store.get<StoredConversation>('conversations', key)?.value;
      const record: StoredConversation = {
        target: { ...previous?.target, ...event.conversation, conversationId: key },
        status: event.action === 'add' ? 'active' : 'removed',
        installedBy: event.actor ? { aadObjectId: event.actor.aadObjectId, name: event.actor.name } : previous?.installedBy,
        changedAt: clock.now(),
      };
      store.put<StoredConversation>('conversations', key, record);
      store.appendAudit({
        action: event.action === 'add' ? 'conversation.installed' : 'conversation.uninstalled',
        actor: event.actor ? { aadObjectId: event.actor.aadObjectId, name: event.actor.name } : undefined,
        subject: key, result: 'info',
        details: { kind: event.conversation.kind, teamId: event.conversation.teamId, tenantId: event.conversation.tenantId },
      });
      log.info({ conversationId: key, kind: event.conversation.kind, action: event.action }, 'installation recorded');
      const replies: Reply[] = [];
      for (const m of modules) {
        try {
          const reply = await m.onInstallation?.(event);
          if (reply) replies.push(reply);
        } catch (err) {
          log.error({ err, module: m.name }, 'module failed to handle an installation event');
        }
      }
      // Teams sends installationUpdate and conversationUpdate for one install: say things once.
      return previous?.status === 'active' ? [] : replies;
    },

    async readiness() {
      const checks = [...coreChecks, ...modules.flatMap((m) => m.readiness ?? [])];
      const results = await Promise.all(checks.map(async (c) => {
        try {
          return { name: c.name, ...(await c.check()) };
        } catch (err) {
          return { name: c.name, ok: false, detail: `check failed: ${(err as Error).message}` };
        }
      }));
      return { ready: results.every((r) => r.ok), checks: results };
    },

    async start() {
      if (state !== 'new') return;
      for (const m of modules) {
        if (fenced) break;
        await m.start?.();
      }
      if (fenced) {
        state = 'fenced';
        fencing = stopModules();
        await fencing;
        return;
      }
      state = 'started';
      log.info({ mode: config.mode, modules: modules.map((m) => m.name), commands: commands.map((c) => c.name) }, 'Keywarden started');
    },

    async stop() {
      if (state === 'stopped') return;
      state = 'stopped';
      // A fenced replica's modules are stopped already (or stopping).
      if (fencing) await fencing;
      else await stopModules();
      if (store.isOpen) store.close();
      log.info('Keywarden stopped');
    },
  };

  // Help lists whatever is registered at the time it is asked, so later modules appear too.
  keywarden.extend({ name: 'help', commands: [helpCommand({ botName: config.bot.name, commands: () => commands })] });
  return keywarden;
}
