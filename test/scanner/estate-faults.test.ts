import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import type { RecordedRequest } from '../../src/sandbox/emulator.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

/** Failing estates and the read-only promise, seen from the emulators' side of the wire. */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let config: KeywardenConfig;
let store: Store;
let scanner: Scanner;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  config = configSchema.parse(withSandboxConfig({}, clouds.config));
  store = openSqliteStore({ path: ':memory:', clock });
  // Small retry budget so a failing estate gives up quickly; the behaviour under test is the same.
  const { sources } = createInventorySources(config, { clock, retry: { maxRetries: 2, baseDelayMs: 10 } });
  scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
});
afterEach(() => {
  clouds.handles.databricks.workspaces.forEach((w) => w.clearFaults());
  clouds.handles.keyVault.clearFaults();
});
afterAll(async () => {
  await scanner?.shutdown();
  store?.close();
  await clouds?.close();
});

function allRequests(): Array<RecordedRequest & { server: string }> {
  const { databricks, keyVault, entra, dataFactory } = clouds.handles;
  return [
    ...databricks.workspaces.flatMap((w) => w.requests().map((r) => ({ ...r, server: `databricks:${w.name}` }))),
    ...[...keyVault.vaults.values()].flatMap((v) => v.server.requests.map((r) => ({ ...r, server: `keyvault:${v.name}` }))),
    ...entra.graph.requests.map((r) => ({ ...r, server: 'graph' })),
    ...dataFactory.server.requests.map((r) => ({ ...r, server: 'arm' })),
  ];
}

function clearRequests(): void {
  const { databricks, keyVault, entra, dataFactory } = clouds.handles;
  databricks.workspaces.forEach((w) => w.clearRequests());
  [...keyVault.vaults.values()].forEach((v) => v.server.clearRequests());
  keyVault.clearOperations();
  entra.graph.clearRequests();
  dataFactory.server.clearRequests();
}

describe('estate errors', () => {
  it('a workspace answering 500s and a vault in a 429 storm are estate errors; everything else is scanned', async () => {
    clouds.handles.databricks.workspace('ws-dev').injectFault({ status: 500, times: Infinity });
    clouds.handles.keyVault.injectFault({ status: 429, retryAfter: 0, times: Infinity }, 'kv-dev');

    const result = await scanner.runScan('command');

    expect(result.errors.map((e) => `${e.estate}:${e.scope}`).sort()).toEqual(['databricks:ws-dev', 'keyvault:kv-dev']);
    const wsDev = result.errors.find((e) => e.scope === 'ws-dev')!;
    expect(wsDev.message).toMatch(/^could not scan databricks ws-dev \(http:\/\/127\.0\.0\.1:\d+\): /);
    expect(wsDev.message).toMatch(/500/);
    const kvDev = result.errors.find((e) => e.scope === 'kv-dev')!;
    expect(kvDev.message).toMatch(/^could not scan keyvault kv-dev/);
    expect(kvDev.message).toMatch(/429|throttl|too many/i);

    const scopes = new Set(result.credentials.map((c) => c.where.scope));
    for (const s of ['ws-prod', 'ws-analytics', 'kv-prod']) expect(scopes).toContain(s);
    expect(scopes).not.toContain('ws-dev');
    expect(result.credentials.some((c) => c.where.estate === 'entra')).toBe(true);
    // The ADF consumers still reach what was scanned.
    expect(result.credentials.find((c) => c.name === 'bob-jdbc')!.consumers.map((c) => c.name)).toEqual(['LS_Databricks_Prod']);
  });

  it('once the workspace recovers, the next scan has it again and reports nothing as removed', async () => {
    const before = scanner.lastScan()!;
    expect(before.errors.length).toBeGreaterThan(0);
    const result = await scanner.runScan('command');
    expect(result.errors).toEqual([]);
    expect(result.changes.removed).toEqual([]);
    expect(result.changes.added.some((id) => id.startsWith('databricks-pat:ws-dev:'))).toBe(true);
  });
});

describe("the caller's per-attempt timeout", () => {
  it('holds for vaults too: a vault slower than it is an estate error naming that timeout, not the 30 s default', async () => {
    const slow = clouds.handles.keyVault.vaults.get('kv-dev')!.server;
    slow.setLatency(3_000);
    const own = openSqliteStore({ path: ':memory:', clock });
    const { sources } = createInventorySources(config, { clock, timeoutMs: 400, retry: { maxRetries: 0, baseDelayMs: 10 } });
    const timed = createScanner({ sources: sources.filter((s) => s.scope === 'kv-dev'), config, store: own, clock, logger: createLogger({ level: 'silent' }) });
    try {
      const result = await timed.runScan('command');
      expect(result.errors.map((e) => e.scope)).toEqual(['kv-dev']);
      expect(result.errors[0]!.message).toContain('did not answer within 0.4 s');
    } finally {
      slow.setLatency(0);
      await timed.shutdown();
      own.close();
    }
  }, 30_000);
});

describe('a scan is read-only', () => {
  it('never reads a Key Vault secret value and never calls a mutating API', async () => {
    clearRequests();
    const result = await scanner.runScan('command');
    expect(result.errors).toEqual([]);

    expect(clouds.handles.keyVault.valueReads()).toEqual([]);
    const requests = allRequests();
    expect(requests.length).toBeGreaterThan(20);
    // Key Vault value reads are GET /secrets/{name}[/{version}]; listings end in /secrets or /versions.
    const kvValueGets = requests.filter((r) => r.server.startsWith('keyvault:') && /^\/secrets\/[^/]+(\/[^/]+)?$/.test(r.path) && !r.path.endsWith('/versions'));
    expect(kvValueGets).toEqual([]);
    const mutating = requests.filter((r) => r.method !== 'GET');
    expect(mutating).toEqual([]);
    // The stored snapshot carries no secret value: no seeded PAT, Entra secret or the bot's own client secret.
    const stored = JSON.stringify(store.list('snapshots'));
    const values = [
      ...Object.values(clouds.seeds.databricks.tokens).map((t) => t.tokenValue),
      clouds.seeds.entra.etlSecret.value, clouds.seeds.entra.keywarden.clientSecret,
    ];
    expect(values.length).toBeGreaterThan(5);
    for (const v of values) expect(stored).not.toContain(v);
    // Every estate was actually called.
    expect(new Set(requests.map((r) => r.server.split(':')[0]))).toEqual(new Set(['databricks', 'keyvault', 'graph', 'arm']));
  });
});
