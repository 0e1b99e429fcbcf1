import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactText, redactValue, REDACTED } from './redact.js';

export type { Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Component name, written as `name` on every line. */
  name?: string;
  /** Where lines go (default stdout). Anything with write(line). Every line is redacted before it gets here. */
  destination?: DestinationStream | { write(chunk: string): unknown };
}

/** Secret-named keys at the places they usually appear; the by-value layers below catch the rest. */
const SECRET_KEYS = [
  'password', 'secret', 'token', 'value', 'authorization', 'apiKey', 'clientSecret', 'token_value', 'secretText',
  'appPassword', 'accessToken', 'refreshToken', 'client_secret', 'access_token', 'refresh_token', 'privateKey',
];
export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
];

/**
 * A pino logger whose output never carries a secret: keys by name (pino redact + a deep pass over every
 * argument), values by shape and by registered secret, and a final text pass over each serialized line.
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const inner = options.destination ?? pino.destination({ dest: 1, sync: true });
  // Last line: whatever the layers above missed (child bindings, formatted args) is caught on the way out.
  const target = inner as { write(chunk: string): unknown; flush?: (cb: (err?: Error) => void) => void; flushSync?: () => void };
  const destination = {
    write(chunk: string): unknown {
      return target.write(redactText(chunk));
    },
    // logger.flush() must still reach an async destination (sonic-boom) through this wrapper.
    flush(cb: (err?: Error) => void): void {
      if (typeof target.flush === 'function') target.flush(cb);
      else cb();
    },
    flushSync(): void {
      target.flushSync?.();
    },
  };
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    hooks: {
      logMethod(args, method) {
        const clean = args.map((a) => redactValue(a)) as Parameters<typeof method>;
        return method.apply(this, clean);
      },
    },
    formatters: {
      bindings: (bindings) => redactValue(bindings),
      log: (obj) => redactValue(obj),
    },
  };
  if (options.name) config.name = options.name;
  return pino(config, destination as DestinationStream);
}
