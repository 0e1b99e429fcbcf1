import type { Logger } from '../logging/logger.js';

/**
 * Last-resort handlers for the long-running `keywarden start` process. Node 20 exits on an unhandled rejection;
 * one forgotten `.catch` in a background task (a timer, a send queue, an SDK callback) must not take the bot down,
 * so it is logged (through the redacting logger) and the bot keeps serving. An uncaught exception leaves the
 * process in an unknown state, so it is logged and the bot shuts down gracefully with exit code 1 for the
 * supervisor to restart it (journaled jobs resume at start).
 */

export interface ProcessGuardOptions {
  logger: Logger;
  /** Graceful stop (bot server, modules, store, sandbox). */
  stop: () => Promise<void>;
  exit?: (code: number) => void;
  /** How long the graceful stop may take after an uncaught exception (default 10 s). */
  stopTimeoutMs?: number;
}

/** Installs the handlers; returns an uninstaller. */
export function installProcessGuards(options: ProcessGuardOptions): () => void {
  const log = options.logger.child({ component: 'process' });
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let rejections = 0;
  let fatal = false;

  const onRejection = (reason: unknown): void => {
    rejections += 1;
    // Every rejection is logged; the count shows a hot loop without flooding anyone's attention.
    log.error({ err: reason instanceof Error ? reason : { message: String(reason) }, unhandledRejections: rejections },
      'a background task failed and nothing handled its error (a bug — please report it with this log line); Keywarden keeps running');
  };

  const onException = (err: Error, origin: string): void => {
    if (fatal) {
      // A second failure while stopping: give up on grace.
      log.fatal({ err, origin }, 'another uncaught exception while shutting down; exiting now');
      exit(1);
      return;
    }
    fatal = true;
    log.fatal({ err, origin }, 'uncaught exception (a bug — please report it with this log line); shutting down gracefully so the supervisor restarts Keywarden');
    const timer = setTimeout(() => {
      log.error('graceful shutdown after the uncaught exception did not finish in time; exiting anyway');
      exit(1);
    }, options.stopTimeoutMs ?? 10_000);
    timer.unref();
    options.stop().then(
      () => { clearTimeout(timer); exit(1); },
      (stopErr: unknown) => { clearTimeout(timer); log.error({ err: stopErr }, 'shutdown after the uncaught exception failed'); exit(1); },
    );
  };

  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
