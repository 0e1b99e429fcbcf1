import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBotServer, type BotServer } from '../../bot/server.js';
import { createKeywarden, type Keywarden } from '../../src/app.js';
import { systemClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { startBotIssuer, type BotIssuer } from '../helpers/bot-issuer.js';
import { alertsModuleFor } from '../../src/alerts/index.js';
import { ALICE, installationUpdateActivity, invokeActivity, messageActivity, TENANT_ID } from '../helpers/bot.js';

/**
 * Proof suite "Production authentication end to end": a local OpenID issuer signs Bot Framework-shaped tokens, the
 * bot runs in production mode pointed at it through config (bot.inbound.openIdMetadataUrl), and every kind of forged
 * token is refused with 401 + a JSON reason + an audit record, while a valid token is accepted and answered.
 */

const APP_ID = '00000000-0000-4000-8000-0000000000b1';
const PASSWORD = 'Xyz8Q~not-a-real-bot-password-0123456789ab';
const SERVICE_URL = 'https://smba.trafficmanager.net/emea/';

interface Running { server: BotServer; keywarden: Keywarden; lines: string[]; dir: string }

async function startProductionBot(issuer: BotIssuer, inbound: Record<string, unknown> = {}, server: Record<string, unknown> = {}): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'kw-prod-auth-'));
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (l: string) => lines.push(l) } });
  const config = configSchema.parse({
    mode: 'production',
    server: { host: '127.0.0.1', ...server },
    store: { path: join(dir, 'kw.db') },
    bot: { appId: APP_ID, appPassword: PASSWORD, tenantId: TENANT_ID, appType: 'SingleTenant', inbound: { openIdMetadataUrl: issuer.metadataUrl, ...inbound } },
    approvals: { users: [ALICE.aadObjectId] },
  });
  const keywarden = createKeywarden({ config, store: openSqliteStore({ path: join(dir, 'kw.db') }), logger, clock: systemClock });
  keywarden.extend(alertsModuleFor(keywarden, { idleMs: 60_000 }));
  const started = await startBotServer({ config, keywarden, logger, port: 0 });
  await keywarden.start();
  return { server: started, keywarden, lines, dir };
}

async function post(url: string, activity: unknown, authorization?: string): Promise<{ status: number; body: Answer; retryAfter: string | null }> {
  const res = await fetch(`${url}/api/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(activity),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, retryAfter: res.headers.get('retry-after') };
}

interface Answer { error: { code: string; reason?: string; message: string }; activities?: unknown[] }

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('production authentication end to end', () => {
  let issuer: BotIssuer;
  let bot: Running;
  const good: JWTPayload = { aud: APP_ID, serviceurl: SERVICE_URL };
  const staleInvoke = () => invokeActivity(SERVICE_URL, 'no-such-verb', { alertId: 'a1', nonce: 'n1' }, '1700000000001', { kind: 'channel' });

  beforeAll(async () => {
    issuer = await startBotIssuer();
    bot = await startProductionBot(issuer);
  });
  afterAll(async () => {
    await bot?.server.close();
    await issuer?.close();
    if (bot) rmSync(bot.dir, { recursive: true, force: true });
  });

  it('accepts a valid token and answers the invoke in the response', async () => {
    const token = await issuer.sign(good);
    const r = await post(bot.server.url, staleInvoke(), `Bearer ${token}`);
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).toContain('This card is out of date');
  });

  it('accepts a valid token on a message and answers it (expectReplies)', async () => {
    const token = await issuer.sign(good);
    const activity = { ...messageActivity(SERVICE_URL, '/help'), deliveryMode: 'expectReplies' };
    const r = await post(bot.server.url, activity, `Bearer ${token}`);
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body.activities)).toContain('commands');
  });

  it('an install in a channel that is neither configured nor bound says how to bind it, and binds nothing — even an approver\'s', async () => {
    const token = await issuer.sign(good);
    const install = { ...installationUpdateActivity(SERVICE_URL, 'add', { kind: 'channel', user: ALICE }), deliveryMode: 'expectReplies' };
    const r = await post(bot.server.url, install, `Bearer ${token}`);
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body.activities)).toContain('/bind');
    expect(bot.keywarden.store.listAudit().map((e) => e.action)).not.toContain('channel.bound');
    expect(bot.keywarden.store.list('channelBindings')).toHaveLength(0);
  });

  const forged: Array<[string, string, () => Promise<string | undefined>, { tenant: string }?]> = [
    ['no token', 'missing-token', async () => undefined],
    ['not a JWT', 'malformed-token', async () => 'Bearer abc.def.ghi'],
    ['alg:none', 'unsupported-algorithm', async () => `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'https://api.botframework.com', aud: APP_ID, serviceurl: SERVICE_URL, exp: Math.floor(Date.now() / 1000) + 600 })}.`],
    ['HS256 signed with the app password', 'unsupported-algorithm', async () => `Bearer ${await new SignJWT({ iss: 'https://api.botframework.com', aud: APP_ID, serviceurl: SERVICE_URL }).setProtectedHeader({ alg: 'HS256', kid: 'kw-test-key-1' }).setExpirationTime('10m').sign(new TextEncoder().encode(PASSWORD))}`],
    ['a key the issuer does not publish', 'unknown-key', async () => `Bearer ${await issuer.signWithUnknownKey(good)}`],
    ['a valid signature over a tampered payload', 'bad-signature', async () => {
      const [h, , s] = (await issuer.sign(good)).split('.');
      return `Bearer ${h}.${b64({ ...good, iss: 'https://api.botframework.com', aud: APP_ID, exp: Math.floor(Date.now() / 1000) + 600, admin: true })}.${s}`;
    }],
    ['wrong audience', 'wrong-audience', async () => `Bearer ${await issuer.sign({ ...good, aud: '00000000-0000-4000-8000-00000000dead' })}`],
    ['wrong issuer', 'wrong-issuer', async () => `Bearer ${await issuer.sign({ ...good, iss: 'https://sts.windows.net/evil/' })}`],
    ['wrong tenant (claim)', 'wrong-tenant', async () => `Bearer ${await issuer.sign({ ...good, tid: '99999999-0000-4000-8000-000000000000' })}`],
    ['wrong tenant (activity)', 'wrong-tenant', async () => `Bearer ${await issuer.sign(good)}`, { tenant: '99999999-0000-4000-8000-000000000000' }],
    ['expired', 'expired', async () => `Bearer ${await issuer.sign(good, { notBefore: Math.floor(Date.now() / 1000) - 7200, expiresInSeconds: 3600 })}`],
    ['not yet valid', 'not-yet-valid', async () => `Bearer ${await issuer.sign(good, { notBefore: Math.floor(Date.now() / 1000) + 3600 })}`],
    ['another service URL', 'wrong-service-url', async () => `Bearer ${await issuer.sign({ ...good, serviceurl: 'https://evil.example/' })}`],
  ];

  for (const [kind, reason, token, extra] of forged) {
    it(`refuses ${kind} with 401 "${reason}" and audits it`, async () => {
      const activity = staleInvoke() as { conversation: { tenantId: string }; channelData: { tenant: { id: string } } };
      if (extra?.tenant) {
        activity.conversation.tenantId = extra.tenant;
        activity.channelData.tenant.id = extra.tenant;
      }
      const before = bot.keywarden.store.listAudit().length;
      const r = await post(bot.server.url, activity, await token());
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({ code: 'Unauthorized', reason });
      expect(typeof r.body.error.message).toBe('string');
      const audit = bot.keywarden.store.listAudit().slice(before);
      expect(audit).toEqual([expect.objectContaining({ action: 'bot.request.refused', result: 'refused', details: expect.objectContaining({ reason }) })]);
      expect(audit[0]!.actor).toBeUndefined(); // the claimed user is not trusted
    });
  }

  it('a key not endorsed for the channel is refused', async () => {
    const narrow = await startBotIssuer({ endorsements: ['webchat'] });
    const other = await startProductionBot(narrow);
    try {
      const r = await post(other.server.url, staleInvoke(), `Bearer ${await narrow.sign(good)}`);
      expect(r.status).toBe(401);
      expect(r.body.error.reason).toBe('not-endorsed');
    } finally {
      await other.server.close();
      await narrow.close();
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it('no refusal was answered 5xx and the password never reached the log', () => {
    expect(bot.lines.join('\n')).not.toContain(PASSWORD);
    expect(bot.lines.some((l) => l.includes('ANONYMOUS'))).toBe(false);
  });
});

describe('a Bot Framework metadata endpoint that accepts connections and never answers', () => {
  it('requests get 503 + Retry-After within the bound, the cap sheds excess, and every socket is released', async () => {
    const issuer = await startBotIssuer();
    issuer.hang();
    const bot = await startProductionBot(issuer, { keyFetchTimeoutSeconds: 2, maxConcurrentChecks: 8 });
    try {
      const token = await issuer.sign({ aud: APP_ID, serviceurl: SERVICE_URL });
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 60 }, () =>
        post(bot.server.url, invokeActivity(SERVICE_URL, 'no-such-verb', {}, '1700000000001', { kind: 'channel' }), `Bearer ${token}`)));
      const elapsed = performance.now() - started;
      expect(results.every((r) => r.status === 503)).toBe(true);
      expect(results.every((r) => Number(r.retryAfter) > 0)).toBe(true);
      const codes = new Set(results.map((r) => r.body.error.code));
      expect(codes.has('AuthBusy')).toBe(true); // more than 8 at once were shed without waiting
      expect([...codes].every((c) => ['AuthBusy', 'AuthTimeout', 'SigningKeysUnavailable'].includes(c))).toBe(true);
      // A correctness bound (the requests used to hang forever), not a performance target.
      expect(elapsed).toBeLessThan(15_000);
      expect(bot.server.inFlight).toBe(0);
      // One shared key fetch at a time, aborted at its timeout: the never-answering server is not holding our sockets.
      await expect.poll(() => issuer.openSockets, { timeout: 5_000 }).toBeLessThanOrEqual(1);
      expect(issuer.requests.length).toBeLessThan(10);
      // Once the endpoint answers again, the same token is accepted.
      issuer.answer();
      await expect.poll(async () => (await post(bot.server.url, invokeActivity(SERVICE_URL, 'no-such-verb', {}, '1700000000001', { kind: 'channel' }), `Bearer ${token}`)).status, { timeout: 10_000, interval: 200 }).toBe(200);
    } finally {
      await bot.server.close();
      await issuer.close();
      rmSync(bot.dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('signing keys are cached', () => {
  it('once loaded, a metadata endpoint that stops answering does not affect valid tokens, and unknown keys are still 401', async () => {
    const issuer = await startBotIssuer();
    const bot = await startProductionBot(issuer, { keyFetchTimeoutSeconds: 1 });
    try {
      const token = await issuer.sign({ aud: APP_ID, serviceurl: SERVICE_URL });
      const invoke = () => invokeActivity(SERVICE_URL, 'no-such-verb', {}, '1700000000001', { kind: 'channel' });
      expect((await post(bot.server.url, invoke(), `Bearer ${token}`)).status).toBe(200);
      issuer.hang();
      const fetchesBefore = issuer.requests.length;
      expect((await post(bot.server.url, invoke(), `Bearer ${token}`)).status).toBe(200);
      const unknown = await post(bot.server.url, invoke(), `Bearer ${await issuer.signWithUnknownKey({ aud: APP_ID, serviceurl: SERVICE_URL })}`);
      expect(unknown.status).toBe(401);
      expect(unknown.body.error.reason).toBe('unknown-key');
      expect(issuer.requests.length).toBe(fetchesBefore); // answered from the cache, no fetch per request
      const ready = await (await fetch(`${bot.server.url}/readyz`)).json() as { checks: Array<{ name: string; ok: boolean }> };
      expect(ready.checks.find((c) => c.name === 'bot-signing-keys')).toMatchObject({ ok: true });
    } finally {
      await bot.server.close();
      await issuer.close();
      rmSync(bot.dir, { recursive: true, force: true });
    }
  }, 30_000);
});
