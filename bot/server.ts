import type { AddressInfo } from 'node:net';
import restify from 'restify';
import type { Keywarden } from '../src/app.js';
import type { KeywardenConfig } from '../src/config/schema.js';
import type { Logger } from '../src/logging/logger.js';
import type { Activity, TurnContext } from 'botbuilder';
import { checkInboundActivity, fixTimestamps } from './activity-guard.js';
import { createTeamsAdapter } from './adapter.js';
import { createTeamsApplication } from './app.js';
import { InboundAuthenticator } from './auth/inbound.js';
import { TeamsChatGateway, type TeamsChatGatewayOptions } from './gateway.js';
import { registerModuleRoutes } from './jit-api.js';
import { answerFenced } from './messages.js';

/** The HTTP edge: POST /api/messages (Bot Framework), GET /healthz and /readyz, and graceful shutdown. */

export interface StartBotServerOptions {
  config: KeywardenConfig;
  keywarden: Keywarden;
  logger: Logger;
  /** Default config.server.port (0 = any free port). */
  port?: number;
  /** Default 127.0.0.1 in sandbox mode, config.server.host otherwise. */
  host?: string;
  /** Whole shutdown budget: in-flight turns + queued sends + keywarden.stop() (default 10 s). */
  shutdownTimeoutMs?: number;
  /** Gateway tuning (tests set pacingMs: 0). */
  gateway?: Pick<TeamsChatGatewayOptions, 'pacingMs' | 'preconditionAttempts' | 'retryBaseMs'>;
}

export interface BotServer {
  /** e.g. http://127.0.0.1:3978 */
  readonly url: string;
  readonly gateway: TeamsChatGateway;
  /** Turns being processed right now. */
  readonly inFlight: number;
  /** Stops accepting, finishes in-flight turns and queued sends, then stops Keywarden (closes the store). */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}

export async function startBotServer(options: StartBotServerOptions): Promise<BotServer> {
  const { config, keywarden } = options;
  const log = options.logger.child({ component: 'bot-server' });
  const { adapter, botAppId } = createTeamsAdapter({ config, logger: options.logger });
  const gateway = new TeamsChatGateway({ adapter, botAppId, logger: options.logger, ...options.gateway });
  keywarden.attachChat(gateway);
  const app = createTeamsApplication({ adapter, botAppId, keywarden, logger: options.logger });
  // A fenced replica writes nothing (its store refuses): a refused request is logged but not audited there.
  const inbound = new InboundAuthenticator({ config, store: keywarden.store, clock: keywarden.clock, logger: options.logger, mayWrite: () => !keywarden.fenced });
  inbound.start();

  const server = restify.createServer({ name: 'keywarden' });
  server.use(restify.plugins.bodyParser({ maxBodySize: MAX_BODY_BYTES, mapParams: false }));

  const turns = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  server.post('/api/messages', async (req: restify.Request, res: restify.Response) => {
    if (closing) {
      res.header('Retry-After', '5');
      res.send(503, { error: { code: 'ShuttingDown', message: 'Keywarden is shutting down; retry shortly.' } });
      return;
    }
    const guard = checkInboundActivity(req.body);
    if (!guard.ok) {
      log.warn({ problems: guard.problems }, 'refused a malformed activity');
      res.send(400, { error: { code: 'BadActivity', message: `Not a valid Bot Framework activity: ${guard.problems.join('; ')}.` } });
      return;
    }
    const activity = fixTimestamps(req.body as Record<string, unknown>) as unknown as Activity;
    const authHeader = String(req.headers.authorization ?? '');
    const retryLater = (seconds: number, code: string, message: string): void => {
      res.header('Retry-After', String(seconds));
      res.send(503, { error: { code, message } });
    };
    const decision = await inbound.check(authHeader, {
      type: activity.type, channelId: activity.channelId, serviceUrl: activity.serviceUrl,
      tenantId: (activity.channelData as { tenant?: { id?: string } } | undefined)?.tenant?.id ?? activity.conversation?.tenantId,
      fromAadObjectId: activity.from?.aadObjectId,
    });
    if (decision.kind === 'refused') {
      res.send(401, { error: { code: 'Unauthorized', reason: decision.reason, message: `A valid Bot Framework token is required: ${decision.message}.` } });
      return;
    }
    if (decision.kind === 'unavailable') {
      retryLater(decision.retryAfterSeconds, decision.code, decision.message);
      return;
    }
    // A fenced replica (the store moved past this release) writes nothing: people are told, other activities retried.
    const fence = keywarden.fenced;
    if (fence && activity.type !== 'message' && activity.type !== 'invoke') {
      retryLater(fence.retryAfterSeconds, 'ReplicaFenced', fence.userMessage);
      return;
    }
    const logic = fence
      ? (context: TurnContext): Promise<void> => answerFenced(context, fence.userMessage)
      : (context: TurnContext): Promise<void> => app.run(context).then(() => undefined);
    const turn = decision.kind === 'authenticated'
      ? adapter.processVerified(decision.claims, activity, logic)
      : adapter.processInbound(authHeader, activity, logic);
    turns.add(turn);
    // The turn keeps running if it overruns (it cannot be cancelled); the caller hears 503 instead of waiting forever.
    let overrun: NodeJS.Timeout | undefined;
    const budgetMs = config.server.turnTimeoutSeconds * 1000;
    const timedOut = new Promise<'timeout'>((resolve) => { overrun = setTimeout(() => resolve('timeout'), budgetMs); overrun.unref(); });
    try {
      const invokeResponse = await Promise.race([turn, timedOut]);
      if (invokeResponse === 'timeout') {
        log.warn({ activityType: activity.type, budgetMs }, 'a turn overran its time budget; answered 503 and let it finish in the background');
        retryLater(5, 'TurnTimeout', 'Keywarden did not finish this in time; retry shortly.');
        return;
      }
      res.header('User-Agent', 'keywarden');
      if (invokeResponse?.body !== undefined) res.send(invokeResponse.status ?? 200, invokeResponse.body);
      else res.send(invokeResponse?.status ?? 200);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 401) {
        log.warn({ activityType: activity.type, reason: (err as Error).message }, 'refused an unauthenticated request');
        res.send(401, { error: { code: 'Unauthorized', reason: 'rejected-by-adapter', message: 'A valid Bot Framework token is required.' } });
      } else {
        log.error({ err, activityType: activity.type }, 'the adapter failed to process an activity');
        res.send(500, { error: { code: 'InternalError', message: 'Keywarden failed to process this activity.' } });
      }
    } finally {
      clearTimeout(overrun);
      void turn.catch(() => undefined).finally(() => turns.delete(turn));
    }
  });

  registerModuleRoutes(server, keywarden, options.logger, () => closing !== undefined);

  server.get('/healthz', async (_req: restify.Request, res: restify.Response) => {
    res.send(200, { status: 'ok' });
  });

  server.get('/metrics', async (_req: restify.Request, res: restify.Response) => {
    const text = await keywarden.metrics.text();
    res.writeHead(200, { 'content-type': keywarden.metrics.contentType });
    res.end(text);
  });

  server.get('/readyz', async (_req: restify.Request, res: restify.Response) => {
    const report = await keywarden.readiness();
    const keys = inbound.keyStatus;
    const keyCheck = keys && { name: 'bot-signing-keys', ok: keys.loaded, detail: keys.loaded ? `${keys.keys} Bot Framework signing keys${keys.lastError ? `; last refresh failed: ${keys.lastError}` : ''}` : `no Bot Framework signing keys yet: ${keys.lastError ?? 'loading'} — check bot.inbound.openIdMetadataUrl and outbound HTTPS` };
    const checks = [...report.checks, ...(keyCheck ? [keyCheck] : []), closing ? { name: 'accepting', ok: false, detail: 'shutting down' } : { name: 'accepting', ok: true }];
    const ready = report.ready && !closing && (keyCheck?.ok ?? true);
    res.send(ready ? 200 : 503, { status: ready ? 'ready' : 'not-ready', checks });
  });

  const host = options.host ?? (config.mode === 'sandbox' ? '127.0.0.1' : config.server.host);
  const port = options.port ?? config.server.port;
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address() as AddressInfo;
  const url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${address.port}`;
  log.info({ url, mode: config.mode }, 'bot server listening on POST /api/messages');

  const shutdown = async (): Promise<void> => {
    const budget = options.shutdownTimeoutMs ?? 10_000;
    const stopBy = performance.now() + budget;
    const left = (): number => stopBy - performance.now();
    log.info({ inFlight: turns.size }, 'shutting down: no new requests; finishing turns in flight');
    inbound.stop();
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
    server.server.closeIdleConnections();
    // Keep a slice of the budget for keywarden.stop().
    const drainBy = budget * 0.8;
    await Promise.race([Promise.allSettled([...turns]), sleep(drainBy - (budget - left()))]);
    if (turns.size > 0) log.warn({ abandoned: turns.size }, 'turns still running at the shutdown deadline');
    await Promise.race([gateway.idle(), sleep(drainBy - (budget - left()))]);
    server.server.closeAllConnections();
    await Promise.race([closed, sleep(Math.min(500, left()))]);
    await Promise.race([keywarden.stop(), sleep(left())]);
    log.info('bot server stopped');
  };

  return {
    url,
    gateway,
    get inFlight() { return turns.size; },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** SIGTERM/SIGINT → graceful close, exit 0 (or 1 if it overran the deadline). Returns an uninstaller. */
export function installSignalHandlers(server: Pick<BotServer, 'close'>, logger: Logger, options: { exit?: (code: number) => void; timeoutMs?: number } = {}): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received; shutting down gracefully');
    const timer = setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting anyway');
      exit(1);
    }, (options.timeoutMs ?? 10_000) + 1_000);
    timer.unref();
    server.close().then(
      () => { clearTimeout(timer); exit(0); },
      (err: unknown) => { clearTimeout(timer); logger.error({ err }, 'shutdown failed'); exit(1); },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
