import { redactText } from '../../logging/redact.js';
import { parseJsonLossless } from './json.js';

/** One typed error for every way Databricks (or the network on the way) can fail. */

/** Codes the client itself raises; server codes (RESOURCE_DOES_NOT_EXIST, HTTP_403, SCIM_404…) pass through. */
export type DatabricksClientCode =
  | 'OUTCOME_UNKNOWN'
  | 'TIMEOUT'
  | 'NETWORK_ERROR'
  | 'ABORTED'
  | 'UNEXPECTED_RESPONSE'
  | 'AUTH_FAILED'
  | 'INVALID_CONFIG';

export interface DatabricksErrorInit {
  code: string;
  statusCode?: number;
  message: string;
  requestId?: string;
  /** The server's own words, redacted. */
  serverMessage?: string;
  retryAfterMs?: number;
  method?: string;
  path?: string;
  cause?: unknown;
}

export class DatabricksError extends Error {
  override readonly name = 'DatabricksError';
  /** error_code when it is a string; `HTTP_<status>` for numeric codes, HTML or unknown bodies; `SCIM_<status>`. */
  readonly code: string;
  /** HTTP status; undefined when no response arrived (timeout, network, abort). */
  readonly statusCode?: number;
  readonly requestId?: string;
  readonly serverMessage?: string;
  readonly retryAfterMs?: number;
  readonly method?: string;
  readonly path?: string;

  constructor(init: DatabricksErrorInit) {
    super(redactText(init.message), init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.statusCode = init.statusCode;
    this.requestId = init.requestId;
    this.serverMessage = init.serverMessage === undefined ? undefined : redactText(init.serverMessage);
    this.retryAfterMs = init.retryAfterMs;
    this.method = init.method;
    this.path = init.path;
  }
}

export function isDatabricksError(err: unknown, code?: string): err is DatabricksError {
  return err instanceof DatabricksError && (code === undefined || err.code === code);
}

export interface ParsedErrorBody {
  code: string;
  message: string;
  requestId?: string;
  retryAfterMs?: number;
}

const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

function decodeEntities(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** "2s" / "1.5s" (google.rpc.RetryInfo.retry_delay) → ms. */
function durationMs(v: unknown): number | undefined {
  if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(v.trim());
    if (m) return Math.round(Number(m[1]) * 1000);
  }
  if (v && typeof v === 'object') {
    const { seconds, nanos } = v as { seconds?: unknown; nanos?: unknown };
    if (seconds !== undefined) return Number(seconds) * 1000 + Math.round(Number(nanos ?? 0) / 1e6);
  }
  return undefined;
}

/** Reads every error shape in the reference (§1): string or numeric error_code, SCIM, legacy, HTML, plain text. */
export function parseErrorBody(status: number, contentType: string, text: string): ParsedErrorBody {
  const fallback = `HTTP_${status}`;
  const trimmed = text.trim();
  if (/json/i.test(contentType) || trimmed.startsWith('{')) {
    try {
      const body = parseJsonLossless(trimmed) as Record<string, unknown>;
      if (body && typeof body === 'object') {
        let requestId: string | undefined;
        let retryAfterMs: number | undefined;
        if (Array.isArray(body.details)) {
          for (const d of body.details as Array<Record<string, unknown>>) {
            if (typeof d?.request_id === 'string' && d.request_id) requestId = d.request_id;
            const delay = durationMs(d?.retry_delay);
            if (delay !== undefined) retryAfterMs = delay;
          }
        }
        if (Array.isArray(body.schemas) && body.schemas.includes(SCIM_ERROR_SCHEMA)) {
          const scimStatus = Number(body.status ?? status) || status;
          const parts = [body.detail, body.scimType].filter((x): x is string => typeof x === 'string' && x.length > 0);
          return { code: `SCIM_${scimStatus}`, message: parts.join(' — ') || `SCIM error ${scimStatus}`, requestId };
        }
        const message = typeof body.message === 'string' ? body.message
          : typeof body.error === 'string' ? [body.error, body.error_description].filter(Boolean).join(': ') : undefined;
        if (typeof body.error_code === 'string' && body.error_code) {
          return { code: body.error_code, message: message ?? body.error_code, requestId, retryAfterMs };
        }
        // Numeric error_code (G2): the auth layer's form; the HTTP status carries the meaning.
        if (message !== undefined) return { code: fallback, message, requestId, retryAfterMs };
      }
    } catch {
      /* not JSON after all: fall through to the text forms */
    }
  }
  if (/html/i.test(contentType) || /^<(!doctype|html)/i.test(trimmed)) {
    const pre = /<pre>([\s\S]*?)<\/pre>/i.exec(trimmed)?.[1];
    const title = /<title>([\s\S]*?)<\/title>/i.exec(trimmed)?.[1];
    const message = decodeEntities((pre ?? title ?? 'HTML error page').trim());
    return { code: fallback, message };
  }
  const coded = /^([A-Z][A-Z0-9_]{2,}):\s*([\s\S]+)$/.exec(trimmed);
  if (coded) return { code: coded[1]!, message: coded[2]!.trim() };
  return { code: fallback, message: trimmed ? trimmed.slice(0, 300) : `HTTP ${status} with an empty body` };
}

/** A one-line fix for the errors people meet most. */
export function remedyFor(code: string, status: number | undefined, message: string): string {
  if (status === 401) return 'Send a credential: configure a PAT or an Entra credential for this workspace (a PAT token_id is not its value).';
  if (/invalid access token/i.test(message)) return 'The token is expired, revoked or from another workspace: replace the credential Keywarden uses for this workspace.';
  if (/on-behalf-of token creation/i.test(message)) return 'Grant the service principal CAN_USE on tokens (PATCH /api/2.0/permissions/authorization/tokens), then retry.';
  if (/token management/i.test(message)) return 'Make Keywarden\'s identity a workspace admin (a member of the admins group).';
  if (code === 'QUOTA_EXCEEDED') return 'The owner already has 600 tokens in this workspace: revoke unused ones first.';
  if (/maximum lifetime/i.test(message)) return 'Ask for a shorter lifetime (at most the workspace maxTokenLifetimeDays).';
  if (status === 429 || status === 503) return 'Databricks is throttling or unavailable: retry later or lower the scanner\'s concurrency.';
  if (status === 403) return 'Grant Keywarden\'s identity the permission this call needs (see `keywarden doctor`).';
  return '';
}
