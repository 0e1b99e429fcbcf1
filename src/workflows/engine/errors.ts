/** Typed workflow errors, and the one rule for "should this be retried?". */

export class WorkflowError extends Error {
  override readonly name = 'WorkflowError';
  constructor(
    message: string,
    readonly code: string,
    readonly options: { retryable?: boolean; statusCode?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
  get retryable(): boolean {
    return this.options.retryable ?? false;
  }
  get statusCode(): number | undefined {
    return this.options.statusCode;
  }
}

/** Provider error codes that mean "try again later" (Key Vault, Databricks, Graph, chat). */
const TRANSIENT_CODES = new Set(['Unreachable', 'Throttled', 'ServiceError', 'Aborted', 'throttled', 'transient', 'TEMPORARILY_UNAVAILABLE', 'REQUEST_LIMIT_EXCEEDED']);

/** Transient: throttling, server errors, timeouts, network failures. Everything else needs a person. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof WorkflowError) return err.retryable;
  const e = err as { statusCode?: unknown; status?: unknown; code?: unknown; name?: unknown; retryable?: unknown; permanent?: unknown };
  if (typeof e?.retryable === 'boolean') return e.retryable;
  if (typeof e?.permanent === 'boolean') return !e.permanent;
  const status = typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.status === 'number' ? e.status : undefined;
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return true;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (TRANSIENT_CODES.has(code)) return true;
  return /ECONN|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EPIPE|UND_ERR|socket|TIMEOUT|THROTTL|TEMPORARILY/i.test(code);
}

/** A message for people: the error's own text (already secret-free by convention), never a stack. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

export function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown; status?: unknown };
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (typeof e?.status === 'number') return e.status;
  return undefined;
}
