import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DatabricksClient, DatabricksError } from '../../src/providers/databricks/client.js';
import type { CallEvent } from '../../src/providers/databricks/http.js';
import { startTestWorkspace, type TestWorkspace } from './databricks-testkit.js';

// Throttling, server errors and latency injected in the emulator, observed through the real client.

let t: TestWorkspace;

beforeAll(async () => {
  t = await startTestWorkspace();
});
afterAll(async () => {
  await t?.emu.close();
});
beforeEach(() => {
  t.ws.clearFaults();
  t.ws.setLatency(0);
  t.ws.clearRequests();
});

async function rejection(p: Promise<unknown>): Promise<DatabricksError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DatabricksError);
  return err as DatabricksError;
}

const calls = (path: string) => t.ws.requests().filter((r) => r.path === path);

describe('DatabricksClient retry policy, observed against the emulator', () => {
  it('honours Retry-After on a 429 and then succeeds', async () => {
    t.ws.injectFault({ method: 'GET', path: '/api/2.0/token-management/tokens', status: 429, retryAfter: 1 });
    const events: CallEvent[] = [];
    const started = performance.now();
    const tokens = await t.client({ onCall: (e) => events.push(e) }).listTokens();
    expect(tokens.length).toBeGreaterThan(0);
    // Backoff alone is ≤ 20 ms here, so waiting ~1 s proves Retry-After was read (lower bound only).
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    expect(calls('/api/2.0/token-management/tokens').map((r) => r.status)).toEqual([429, 200]);
    expect(events.map((e) => [e.status, e.code, e.willRetry])).toEqual([[429, 'REQUEST_LIMIT_EXCEEDED', true], [200, undefined, false]]);
  });

  it('retries a 429 without Retry-After with backoff, and 500s on reads', async () => {
    t.ws.injectFault({ method: 'GET', path: '/api/2.0/token/list', status: 429, times: 1 });
    t.ws.injectFault({ method: 'GET', path: '/api/2.0/token/list', status: 500, times: 1 });
    await t.client().listOwnTokens();
    expect(calls('/api/2.0/token/list').map((r) => r.status)).toEqual([429, 500, 200]);
  });

  it('gives up after maxAttempts with the last error, typed', async () => {
    t.ws.injectFault({ method: 'GET', path: '/api/2.0/instance-pools/list', status: 503, retryAfter: 0, times: Infinity });
    const err = await rejection(t.client().listInstancePools());
    expect(err).toMatchObject({ code: 'TEMPORARILY_UNAVAILABLE', statusCode: 503 });
    expect(err.message).toContain('retry later');
    expect(calls('/api/2.0/instance-pools/list')).toHaveLength(3);
  });

  it('does not retry a 500 on a non-GET call, but retries a 503 on an idempotent delete', async () => {
    const { tokenId } = t.ws.addToken({ ownerName: 'jane@contoso.com', comment: 'del', expiryTime: -1 });
    t.ws.injectFault({ method: 'DELETE', path: '/api/2.0/token-management/tokens/', status: 500 });
    expect(await rejection(t.client().deleteToken(tokenId))).toMatchObject({ code: 'INTERNAL_ERROR', statusCode: 500 });
    t.ws.injectFault({ method: 'DELETE', path: '/api/2.0/token-management/tokens/', status: 503 });
    expect(await t.client().deleteToken(tokenId)).toBe(true);
    expect(t.ws.requests().filter((r) => r.method === 'DELETE').map((r) => r.status)).toEqual([500, 503, 200]);
  });

  it('never retries a create: a 429 fails at once, a 500 is OUTCOME_UNKNOWN', async () => {
    t.ws.injectFault({ method: 'POST', path: '/api/2.0/token/create', status: 429, retryAfter: 0 });
    const throttled = await rejection(t.client().createToken({ lifetimeSeconds: 3600, comment: 'c1' }));
    expect(throttled).toMatchObject({ code: 'REQUEST_LIMIT_EXCEEDED', statusCode: 429 });

    t.ws.injectFault({ method: 'POST', path: '/api/2.0/instance-pools/create', status: 500 });
    const unknown = await rejection(t.client().createInstancePool({ name: 'p', nodeTypeId: 'Standard_DS3_v2' }));
    expect(unknown.code).toBe('OUTCOME_UNKNOWN');
    expect(unknown.message).toMatch(/marker/);

    t.ws.injectFault({ method: 'POST', path: '/api/2.0/token-management/on-behalf-of/tokens', status: 503 });
    expect(await rejection(t.client().createOboToken({ applicationId: 'x', lifetimeSeconds: 60, comment: 'c2' }))).toMatchObject({ statusCode: 503 });

    expect(calls('/api/2.0/token/create')).toHaveLength(1);
    expect(calls('/api/2.0/instance-pools/create')).toHaveLength(1);
    expect(calls('/api/2.0/token-management/on-behalf-of/tokens')).toHaveLength(1);
  });

  it('a create that outlives the timeout is OUTCOME_UNKNOWN, not retried, and reconcilable by its marker', async () => {
    t.ws.injectFault({ method: 'POST', path: '/api/2.0/token/create', status: 0, latencyMs: 1_500 });
    const client = t.client({ timeoutMs: 300 });
    const err = await rejection(client.createToken({ lifetimeSeconds: 3600, comment: 'chatops-rot:r-timeout' }));
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    expect(err.statusCode).toBeUndefined();
    expect(err.message).toContain('did not answer within 0.3 s');
    // The server finished the create after the client gave up; the caller finds it by marker.
    await vi.waitFor(() => expect(calls('/api/2.0/token/create')).toHaveLength(1), { timeout: 5_000 });
    const adopted = (await t.client().listOwnTokens()).filter((x) => x.comment === 'chatops-rot:r-timeout');
    expect(adopted).toHaveLength(1);
  });

  it('a slow read times out with a clear error after its attempts', async () => {
    t.ws.injectFault({ method: 'GET', path: '/api/2.0/workspace-conf', status: 0, latencyMs: 800, times: 2 });
    const err = await rejection(t.client({ timeoutMs: 200, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 } }).getWorkspaceConf(['maxTokenLifetimeDays']));
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toMatch(/did not answer GET \/api\/2\.0\/workspace-conf .* within 0\.2 s \(attempt 2 of 2\).*databricks\.timeoutSeconds/);
  });

  it('global latency is survived when under the timeout', async () => {
    t.ws.setLatency(100);
    expect(await t.client({ timeoutMs: 5_000 }).getWorkspaceConf(['maxTokenLifetimeDays'])).toEqual({ maxTokenLifetimeDays: null });
  });

  it("the caller's AbortSignal cancels a call (and its backoff)", async () => {
    t.ws.injectFault({ method: 'GET', path: '/api/2.0/token/list', status: 429, retryAfter: 30 });
    const controller = new AbortController();
    const pending = t.client({ retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 60_000 } }).listOwnTokens({ signal: controller.signal });
    await vi.waitFor(() => expect(calls('/api/2.0/token/list')).toHaveLength(1));
    controller.abort();
    expect(await rejection(pending)).toMatchObject({ code: 'ABORTED' });
  });

  it('an unreachable host is a NETWORK_ERROR, and a refused create is known not to have happened', async () => {
    const probe = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = probe.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const down = new DatabricksClient({ host: `http://127.0.0.1:${port}`, auth: { pat: t.adminPat }, timeoutMs: 2_000, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    expect(await rejection(down.listTokens())).toMatchObject({ code: 'NETWORK_ERROR' });
    expect(await rejection(down.createToken({ lifetimeSeconds: 60, comment: 'x' }))).toMatchObject({ code: 'NETWORK_ERROR' });
  });
});
