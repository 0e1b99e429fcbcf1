import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { REDACTED, redactText, redactValue, registerSecret } from '../../src/logging/redact.js';

// Canaries: each one must never appear in any captured log output.
const REGISTERED = 'kw-canary-registered-5f1c2b';
const REGISTERED_ODD = 'kw"canary\\with/odd chars&=?';
const PAT = 'dapi0123456789abcdef0123456789abcdef';
const PAT_SUFFIXED = 'dapifedcba9876543210fedcba9876543210-3';
const ENTRA = 'Abc8Q~abcdefghijklmnopqrstuvwxyz.ABC_-~1';
const JWT = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJrZXl3YXJkZW4iLCJ0aWQiOiJ0In0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU';
const BEARER_OPAQUE = 'opaque-access-token-0123456789ABCDEF';
const KEY_NAMED = 'plain-looking-but-under-a-secret-key';
const CANARIES = [REGISTERED, REGISTERED_ODD, PAT, PAT_SUFFIXED, ENTRA, JWT, BEARER_OPAQUE, KEY_NAMED];

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', name: 'test', destination: { write: (chunk: string) => { lines.push(chunk); } } });
  return { logger, output: () => lines.join('') };
}

function expectClean(output: string): void {
  for (const canary of CANARIES) {
    expect(output).not.toContain(canary);
    expect(output).not.toContain(JSON.stringify(canary).slice(1, -1));
  }
}

describe('logger redaction', () => {
  registerSecret(REGISTERED);
  registerSecret(REGISTERED_ODD);

  it('keeps every canary out of messages, fields, nested objects, errors and child loggers', () => {
    const { logger, output } = capture();
    logger.info(`message with ${REGISTERED} and ${PAT} and ${ENTRA}`);
    logger.info('format args %s %s %o', PAT_SUFFIXED, REGISTERED_ODD, { nested: JWT });
    logger.warn({ password: KEY_NAMED, token: KEY_NAMED, clientSecret: KEY_NAMED, value: KEY_NAMED, note: `pat=${PAT}` }, 'fields');
    logger.debug({ request: { headers: { authorization: `Bearer ${BEARER_OPAQUE}` } }, deep: { a: { b: { c: { d: [ENTRA, { secretText: KEY_NAMED }] } } } } }, 'nested');
    logger.info({ log: `Authorization: Bearer ${BEARER_OPAQUE}` }, 'bearer in text');

    const err = Object.assign(new Error(`Databricks refused ${PAT}`), { code: 'DATABRICKS_401', statusCode: 401, body: { token_value: KEY_NAMED } });
    err.cause = new Error(`cause holds ${REGISTERED}`);
    logger.error(err);
    logger.error({ err }, `failed with ${JWT}`);
    logger.error(new AggregateError([new Error(ENTRA)], `several failed ${REGISTERED}`));

    const child = logger.child({ component: 'rotation', apiKey: KEY_NAMED, context: `for ${REGISTERED}` });
    child.info({ secret: KEY_NAMED }, `child says ${PAT}`);
    child.child({ more: ENTRA }).error(new Error(`grandchild ${JWT}`));

    const text = output();
    expect(text.split('\n').filter(Boolean).length).toBe(10);
    expectClean(text);
    // The lines are still useful: redacted, not dropped.
    expect(text).toContain(`Databricks refused ${REDACTED}`);
    expect(text).toContain('"statusCode":401');
    expect(text).toContain('"component":"rotation"');
    expect(text).toContain(`Bearer ${REDACTED}`);
  });

  it('writes valid JSON lines', () => {
    const { logger, output } = capture();
    logger.info({ password: KEY_NAMED, ok: true }, `x ${REGISTERED_ODD}`);
    const line = JSON.parse(output().trim()) as Record<string, unknown>;
    expect(line.password).toBe(REDACTED);
    expect(line.ok).toBe(true);
    expect(line.msg).toBe(`x ${REDACTED}`);
    expect(line.name).toBe('test');
  });

  it('respects the level', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (c: string) => { lines.push(c); } } });
    logger.info('hidden');
    logger.warn('shown');
    expect(lines).toHaveLength(1);
  });
});

describe('redactText / redactValue', () => {
  it('replaces shapes wherever they appear in text', () => {
    expect(redactText(`a ${PAT} b`)).toBe(`a ${REDACTED} b`);
    expect(redactText(`x${PAT_SUFFIXED}y`)).toBe(`x${REDACTED}y`);
    expect(redactText(`secret=${ENTRA};`)).toBe(`secret=${REDACTED};`);
    expect(redactText(`Authorization: Bearer ${BEARER_OPAQUE}`)).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(redactText(`jwt ${JWT}`)).toBe(`jwt ${REDACTED}`);
  });

  it('leaves ordinary text alone', () => {
    const text = 'Token dapi-comment for ws-prod expires in 7 days; Bearer challenge failed; id 7405617279531127';
    expect(redactText(text)).toBe(text);
  });

  it('redacts a registered secret and its URL-encoded form', () => {
    registerSecret('kw-later-secret/with+plus');
    expect(redactText('p=kw-later-secret%2Fwith%2Bplus&q=1')).toBe(`p=${REDACTED}&q=1`);
    expect(redactText('raw kw-later-secret/with+plus')).toBe(`raw ${REDACTED}`);
  });

  it('ignores values too short to be secrets', () => {
    registerSecret('abc');
    expect(redactText('abc def')).toBe('abc def');
  });

  it('deep-copies without mutating, hiding secret-named keys and cutting cycles', () => {
    const input: Record<string, unknown> = { id: 'tok-1', tokenId: '123', password: 'p', nested: { list: [PAT, { appPassword: 'x' }] } };
    input.self = input;
    const out = redactValue(input) as Record<string, unknown>;
    expect(out.id).toBe('tok-1');
    expect(out.tokenId).toBe('123');
    expect(out.password).toBe(REDACTED);
    expect(out.nested).toEqual({ list: [REDACTED, { appPassword: REDACTED }] });
    expect(out.self).toBe(out);
    expect(input.password).toBe('p');
  });

  it('returns Errors with redacted message, stack and fields', () => {
    const err = Object.assign(new Error(`bad ${PAT}`), { code: 'X', clientSecret: 'shh-secret' });
    const out = redactValue(err) as Error & { code: string; clientSecret: string };
    expect(out).toBeInstanceOf(Error);
    expect(out.message).toBe(`bad ${REDACTED}`);
    expect(out.stack).not.toContain(PAT);
    expect(out.code).toBe('X');
    expect(out.clientSecret).toBe(REDACTED);
    expect(err.message).toContain(PAT);
  });
});
