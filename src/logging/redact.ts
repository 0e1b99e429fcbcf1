/**
 * Redaction by key and by value: the last line of defence that keeps secret values out of logs,
 * errors, cards and the audit log. Any code that holds a secret calls registerSecret() at once.
 */

export const REDACTED = '[REDACTED]';

/** Keys whose values are secrets whatever they look like (matched case-insensitively on the whole key). */
const SECRET_KEY =
  /^(?:password|passwd|secret|token|value|authorization|proxy-authorization|cookie|set-cookie|api[-_]?key|x-api-key|client[-_]?secret|token[-_]?value|secret[-_]?text|access[-_]?token|refresh[-_]?token|id[-_]?token|private[-_]?key|connection[-_]?string|app[-_]?password|.*password|.*secret|.*token)$/i;

/** Value shapes that are secrets wherever they appear. */
const SHAPES: { pattern: RegExp; replace: string }[] = [
  // Databricks PAT: dapi + 32 hex, optionally -N.
  { pattern: /dapi[0-9a-f]{32}(?:-\d+)?/gi, replace: REDACTED },
  // Entra client secret: 3 chars, "8Q~", then 31 (hook regex) up to 34 (real 40-char secrets) — take all of it.
  { pattern: /[A-Za-z0-9~_.-]{3}8Q~[A-Za-z0-9~_.-]{31,34}/g, replace: REDACTED },
  // Authorization header values (16+ chars so prose like "Bearer challenge" stays readable).
  { pattern: /\b(Bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*/gi, replace: `$1 ${REDACTED}` },
  // JWT-shaped strings (header.payload.signature; the signature may be empty for unsigned tokens).
  { pattern: /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, replace: REDACTED },
];

/** Shorter values would redact ordinary words; nothing we handle as a secret is this short. */
const MIN_SECRET_LENGTH = 6;

const secrets = new Set<string>();
let secretPattern: RegExp | undefined;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Remembers a secret value so it is replaced wherever it later appears (also its JSON- and URL-encoded forms). */
export function registerSecret(value: string): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return;
  const before = secrets.size;
  secrets.add(value);
  const jsonEscaped = JSON.stringify(value).slice(1, -1);
  if (jsonEscaped !== value) secrets.add(jsonEscaped);
  const urlEncoded = encodeURIComponent(value);
  if (urlEncoded !== value) secrets.add(urlEncoded);
  if (secrets.size !== before) secretPattern = undefined;
}

/** Every registered secret form, to seed another thread's redaction (a worker has its own module state). */
export function registeredSecrets(): string[] {
  return [...secrets];
}

/** For tests: how many distinct secret forms are registered. */
export function registeredSecretCount(): number {
  return secrets.size;
}

function registeredPattern(): RegExp | undefined {
  if (secrets.size === 0) return undefined;
  if (!secretPattern) {
    // Longest first, so a secret that contains another is replaced whole.
    const alternatives = [...secrets].sort((a, b) => b.length - a.length).map(escapeRegExp);
    secretPattern = new RegExp(alternatives.join('|'), 'g');
  }
  return secretPattern;
}

/** Replaces registered secrets and secret-shaped substrings in a string. */
export function redactText(text: string): string {
  if (typeof text !== 'string' || text.length === 0) return text;
  let out = text;
  const registered = registeredPattern();
  if (registered) out = out.replace(registered, REDACTED);
  for (const { pattern, replace } of SHAPES) out = out.replace(pattern, replace);
  return out;
}

/** True when a key's value must be hidden whatever it contains. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * Deep copy with secrets removed: secret-named keys are replaced, strings are redacted by value,
 * Errors become Errors with redacted message/stack (and cause). Cycles are cut; input is never mutated.
 */
export function redactValue<T>(value: T): T {
  return redactAny(value, new WeakMap()) as T;
}

/** Deeper than any record we log; stops runaway walks through sockets and SDK internals. */
const MAX_DEPTH = 12;

function redactAny(value: unknown, seen: WeakMap<object, unknown>, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return seen.get(value);
  if (depth > MAX_DEPTH) return '[Too deep]';
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !(value instanceof Date)) return redactAny(toJSON.call(value), seen, depth + 1);
  if (value instanceof Error) return redactError(value, seen, depth);
  if (value instanceof Date) return new Date(value.getTime());
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return REDACTED; // raw bytes are never logged
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(redactAny(item, seen, depth + 1));
    return out;
  }
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    seen.set(value, out);
    for (const [k, v] of value) out[String(k)] = redactEntry(String(k), v, seen, depth + 1);
    return out;
  }
  if (value instanceof Set) return redactAny([...value], seen, depth + 1);
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  for (const [k, v] of Object.entries(value)) out[k] = redactEntry(k, v, seen, depth + 1);
  return out;
}

function redactEntry(key: string, value: unknown, seen: WeakMap<object, unknown>, depth: number): unknown {
  if (isSecretKey(key) && value !== null && value !== undefined && typeof value !== 'boolean') {
    // A secret-named object (e.g. { secret: { name, value } }) keeps its shape; scalars are hidden.
    if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error)) return redactAny(value, seen, depth);
    return REDACTED;
  }
  return redactAny(value, seen, depth);
}

function redactError(err: Error, seen: WeakMap<object, unknown>, depth: number): Error {
  const copy = new Error(redactText(err.message));
  seen.set(err, copy);
  copy.name = err.name;
  copy.stack = err.stack === undefined ? undefined : redactText(err.stack);
  // Own enumerable fields (code, statusCode, details...) go through the same rules.
  for (const [k, v] of Object.entries(err)) {
    (copy as unknown as Record<string, unknown>)[k] = redactEntry(k, v, seen, depth + 1);
  }
  if ('cause' in err && err.cause !== undefined) copy.cause = redactAny(err.cause, seen, depth + 1);
  if (err instanceof AggregateError) {
    (copy as unknown as Record<string, unknown>).errors = err.errors.map((e) => redactAny(e, seen, depth + 1));
  }
  return copy;
}
