import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import type { Credential } from '../../src/domain/credential.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createInventorySources } from '../../src/scanner/sources.js';

/**
 * The per-host request gates over real HTTP(S): a vault emulator that enforces a rate limit (429 + Retry-After past
 * it) and counts requests in flight, scanned through the real sources and Key Vault SDK client.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
const BULK = 60;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock, keyVaultPageSize: 25 });
  // Enough secrets in kv-dev that the version listings queue behind the gate.
  const vault = clouds.handles.keyVault.vault('kv-dev');
  for (let i = 0; i < BULK; i++) vault.seedSecret(`gate-test-${i}`, { value: randomBytes(12).toString('base64url'), exp: clock.now() + 30 * DAY_MS });
});
afterAll(async () => {
  await clouds?.close();
});

function vaultSource(requestLimits: Record<string, unknown>, vault: string) {
  // With version listings (one call per secret), the calls that queue behind a vault's window.
  const config = configSchema.parse(withSandboxConfig({ scanner: { requestLimits }, keyVault: { versionHistory: true } }, clouds.config));
  const built = createInventorySources(config, { clock });
  const source = built.sources.find((s) => s.estate === 'keyvault' && s.scope === vault)!;
  return { source, gates: built.gates, url: config.keyVault.vaults.find((v) => v.name === vault)!.url };
}

const server = (vault: string) => clouds.handles.keyVault.vault(vault).server;
const versionListings = (vault: string) => server(vault).requests.filter((r) => r.method === 'GET' && r.path.endsWith('/versions'));

describe('per-host request gate', () => {
  it('never has more requests in flight at a vault than its configured window, and still reads every secret', async () => {
    const s = server('kv-dev');
    s.setLatency(20);
    s.resetLoad();
    s.clearRequests();
    try {
      const { source } = vaultSource({ keyVault: { inFlight: 3 } }, 'kv-dev');
      const inventory = await source.scan({});
      expect(inventory.credentials.filter((c: Credential) => c.name.startsWith('gate-test-'))).toHaveLength(BULK);
      expect(versionListings('kv-dev').length).toBeGreaterThanOrEqual(BULK);
      expect(s.load.maxInFlight).toBeGreaterThan(1);
      expect(s.load.maxInFlight).toBeLessThanOrEqual(3);
    } finally {
      s.setLatency(0);
    }
  });

  it('a vault past its rate limit answers 429 with Retry-After; the gate halves its window, waits, and the scan completes', async () => {
    const s = server('kv-dev');
    // The service allows 20 requests per second; the client is told it may send 1,000 (so it overshoots at first).
    s.setRateLimit({ perSecond: 20, burst: 20, retryAfterSeconds: 1 });
    s.resetLoad();
    s.clearRequests();
    try {
      const { source, gates, url } = vaultSource({ keyVault: { perSecond: 1_000, inFlight: 16 } }, 'kv-dev');
      const inventory = await source.scan({});
      expect(inventory.credentials.filter((c: Credential) => c.name.startsWith('gate-test-'))).toHaveLength(BULK);
      const throttled = s.requests.filter((r) => r.status === 429);
      expect(throttled.length).toBeGreaterThan(0);
      expect(s.load.throttled).toBe(throttled.length);
      const gate = gates.for(url, 'keyvault');
      expect(gate.stats.throttled).toBeGreaterThan(0);
      expect(gate.stats.window).toBeLessThan(16);
    } finally {
      s.setRateLimit(undefined);
    }
  });

  it('a vault slower than the 50 ms a window is sized for gets more requests in flight, never past its rate', async () => {
    const s = server('kv-dev');
    // 100 requests/s published: a window of 5 at 50 ms; at 200 ms a round trip that window would use a quarter of it.
    s.setLatency(200);
    s.setRateLimit({ perSecond: 100, burst: 100, retryAfterSeconds: 1 });
    s.resetLoad();
    s.clearRequests();
    try {
      const { source, gates, url } = vaultSource({ keyVault: { perSecond: 100 } }, 'kv-dev');
      const inventory = await source.scan({});
      expect(inventory.credentials.filter((c: Credential) => c.name.startsWith('gate-test-'))).toHaveLength(BULK);
      expect(gates.for(url, 'keyvault').limit.inFlight).toBe(5);
      expect(s.load.maxInFlight).toBeGreaterThan(5);
      expect(s.load.maxInFlight).toBeLessThanOrEqual(20);
      expect(s.requests.filter((r) => r.status === 429)).toHaveLength(0);
    } finally {
      s.setLatency(0);
      s.setRateLimit(undefined);
    }
  });
});

describe('Key Vault version listings', () => {
  it('a rescan lists versions only of secrets whose "updated" changed in the secret list', async () => {
    const { source } = vaultSource({}, 'kv-dev');
    const s = server('kv-dev');
    s.clearRequests();
    const first = await source.scan({});
    const listed = versionListings('kv-dev').length;
    expect(listed).toBe(first.credentials.length);

    s.clearRequests();
    const second = await source.scan({});
    expect(second.credentials.length).toBe(first.credentials.length);
    expect(versionListings('kv-dev')).toHaveLength(0);
    const before = second.credentials.find((c: Credential) => c.name === 'gate-test-7')!;

    // A new version changes "updated": exactly that secret's versions are read again, and the card sees the new one.
    clock.advance(60_000);
    clouds.handles.keyVault.vault('kv-dev').seedSecret('gate-test-7', { value: randomBytes(12).toString('base64url'), exp: clock.now() + 60 * DAY_MS });
    s.clearRequests();
    const third = await source.scan({});
    expect(versionListings('kv-dev').map((r) => r.path)).toEqual(['/secrets/gate-test-7/versions']);
    const after = third.credentials.find((c: Credential) => c.name === 'gate-test-7')!;
    expect(after.attributes.versionCount).toBe(Number(before.attributes.versionCount) + 1);
    expect(after.attributes.version).not.toBe(before.attributes.version);
  });
});
