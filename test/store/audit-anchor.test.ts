import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { connectAuditKeyVault } from '../../src/providers/keyvault/audit-key-vault.js';
import { startKeyVaultEmulator, type KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { createAuditAnchorer } from '../../src/store/audit-anchor.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { fakeCredential, sandboxTls, TENANT } from '../sandbox/keyvault-fixtures.js';

/** Anchor writes go to (emulated) Key Vault in the background: a failing vault is logged and retried, never felt by appends. */

let kv: KeyVaultEmulatorHandle;
beforeAll(async () => {
  kv = await startKeyVaultEmulator({ tls: sandboxTls(), tenantId: TENANT, vaults: [{ name: 'kv-ops' }] });
});
afterAll(() => kv.close());

async function until(what: string, fn: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('audit anchorer', () => {
  it('a failed anchor write is logged and retried; appends carry on untouched', async () => {
    const config = configSchema.parse({
      keyVault: { vaults: [{ name: 'kv-ops', url: kv.urls()['kv-ops'] }], disableChallengeResourceVerification: true },
      audit: { anchorSecret: { vault: 'kv-ops', name: 'anchor-retry' }, anchorEveryEntries: 2 },
    });
    const sink = connectAuditKeyVault(config, { credential: fakeCredential('kv-token') })!.anchors!;
    const logs: string[] = [];
    const clock = new AdjustableClock();
    let nudge: (seq: number) => void = () => undefined;
    const store = openSqliteStore({ path: ':memory:', clock, onAuditAppended: (seq) => nudge(seq) });
    const anchorer = createAuditAnchorer({
      store, sink, clock, logger: createLogger({ destination: { write: (l: string) => logs.push(l) } }),
      everyEntries: 2, everyMs: 60_000, tickMs: 10, retryMs: 100,
    });
    nudge = (seq) => anchorer.nudge(seq);
    anchorer.start();

    // Key Vault refuses every write for now (503 until cleared).
    kv.vault('kv-ops').server.injectFault({ method: 'PUT', path: '/secrets/anchor-retry', status: 503, times: Infinity, body: { error: { code: 'ServiceUnavailable', message: 'try later' } } });
    for (let i = 0; i < 5; i++) store.appendAudit({ action: 'click', result: 'ok', details: { i } });
    expect(store.auditHead()?.seq).toBe(5);
    await until('the failure to be logged', () => logs.some((l) => l.includes('could not write the audit anchor')));
    expect(await sink.list()).toEqual([]);

    // The vault recovers; after the back-off the next tick writes the head.
    kv.vault('kv-ops').server.clearFaults();
    clock.advance(60_000); // past any back-off (capped at everyMs)
    await until('the retried anchor', async () => (await sink.list()).length > 0);
    expect((await sink.list()).map((a) => ({ seq: a.seq, hash: a.hash }))).toEqual([{ seq: 5, hash: store.auditHead()!.hash }]);
    expect(logs.some((l) => l.includes('audit anchor written again after failures'))).toBe(true);

    // Stop anchors whatever came after.
    store.appendAudit({ action: 'click', result: 'ok' });
    await anchorer.stop();
    expect((await sink.list()).map((a) => a.seq)).toEqual([5, 6]);
    expect(store.checkAudit({ anchors: await sink.list() })).toMatchObject({ ok: true, count: 6, anchorsChecked: 2 });
    store.close();
  }, 60_000);
});
