import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/**
 * Issue 14: the second pass overlaps the slowest source. Once every vault and factory has answered, the PATs and
 * secrets no link can change are judged and stored while Graph still pages; what a link can change waits for the plan,
 * and the rows keep the sources' order.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let config: KeywardenConfig;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  config = configSchema.parse(withSandboxConfig({}, clouds.config));
}, 60_000);
afterAll(async () => { await clouds?.close(); });

describe('a scan whose Entra tenant answers slowly', () => {
  it('stores the workspaces\' tokens while Graph calls are still in flight, keeps the links of held tokens, and keeps the sources\' order', async () => {
    const store = openSqliteStore({ path: ':memory:', clock });
    const { sources } = createInventorySources(config, { clock });
    const scanner = createScanner({ sources, config, store, clock, logger: createLogger({ level: 'silent' }) });
    try {
      const first = await scanner.runScan('command');
      expect(first.errors).toEqual([]);
      const graph = clouds.handles.entra.graph;
      graph.setLatency(400);
      let storedWhileGraphBusy = false;
      let done = false;
      const rescan = scanner.runScan('command').finally(() => { done = true; });
      while (!done) {
        const pats = store.scanRows!.page({ seenSince: 2, kind: 'databricks-pat' }, undefined, 1);
        if (pats.length > 0 && graph.load.inFlight > 0) storedWhileGraphBusy = true;
        await sleep(20);
      }
      const second = await rescan;
      graph.setLatency(0);
      expect(second.errors).toEqual([]);
      expect(storedWhileGraphBusy).toBe(true);

      // Judged early or after the plan, each credential reads as it did: links, findings and all.
      const byId = (scan: typeof first) => new Map(scan.credentials.map((c) => [c.id, JSON.stringify(c)]));
      const before = byId(first);
      const after = byId(second);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      const differing = [...after].filter(([id, json]) => before.get(id) !== json).map(([id]) => id);
      expect(differing).toEqual([]);
      expect(second.credentials.some((c) => c.kind === 'databricks-pat' && c.heldIn.length > 0)).toBe(true);
      expect(JSON.stringify(second.findings)).toBe(JSON.stringify(first.findings));

      // The rows in scan order follow the sources' order (workspaces, vaults, the tenant), whatever order they ended in.
      const estates: string[] = [];
      for (const page of second.view!.pages({ order: 'scan', pageSize: 200 })) {
        for (const r of page) if (estates[estates.length - 1] !== r.credential.where.estate) estates.push(r.credential.where.estate);
      }
      expect(estates).toEqual(['databricks', 'keyvault', 'entra']);
    } finally {
      await scanner.shutdown();
      store.close();
    }
  }, 120_000);
});

describe('an estate with more vaults than source slots', () => {
  it('reads every vault at once when none lists versions, so all of them answer within one vault\'s time', async () => {
    const extra = Array.from({ length: 40 }, (_, i) => `kv-many-${String(i).padStart(2, '0')}`);
    const many = await startSandboxClouds({ clock, extra: { vaults: extra } });
    const store = openSqliteStore({ path: ':memory:', clock });
    try {
      const manyConfig = configSchema.parse(withSandboxConfig({}, many.config));
      const { sources } = createInventorySources(manyConfig, { clock });
      const scanner = createScanner({ sources, config: manyConfig, store, clock, logger: createLogger({ level: 'silent' }) });
      const vaults = [...many.handles.keyVault.vaults.values()];
      expect(vaults.length).toBeGreaterThan(32);
      for (const v of vaults) v.server.setLatency(600);
      const result = await scanner.runScan('command');
      await scanner.shutdown();
      expect(result.errors).toEqual([]);
      // Each vault's first list call: all of them went out before any vault could have answered a page (32 at a time,
      // the last ones waited for the first to finish).
      const firsts = vaults.map((v) => v.server.requests.find((r) => r.path.includes('/secrets'))?.at ?? Infinity);
      expect(Math.max(...firsts) - Math.min(...firsts)).toBeLessThan(500);
    } finally {
      store.close();
      await many.close();
    }
  }, 120_000);
});
