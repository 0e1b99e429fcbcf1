import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { KV_TAGS, type Credential, type EstateInventory } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { PAGE_SIZE } from '../../src/scanner/pipeline.js';
import { createScanner, type InventorySource, type Scanner } from '../../src/scanner/scanner.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { cred, defaultConfig } from '../domain/fixtures.js';

/**
 * The streamed scan (issue 14): credentials and findings are rows, the diff reads stamps, and what a scan reports is
 * what the whole-snapshot scan reported. The same estate goes through both and must come out the same.
 */

const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 3, 1) });
const logger = createLogger({ level: 'silent' });
const stores: Store[] = [];
const scanners: Scanner[] = [];

afterEach(async () => {
  for (const s of scanners.splice(0)) await s.shutdown();
  for (const s of stores.splice(0)) s.close();
});

const TOKENS = PAGE_SIZE * 2 + 37;

/** A workspace bigger than two pages, a vault whose secrets hold some of its tokens, and a factory using one secret. */
function estate(): { databricks: EstateInventory; vault: EstateInventory; factory: EstateInventory } {
  const now = clock.now();
  const tokens = Array.from({ length: TOKENS }, (_, i) => cred('databricks-pat', 'ws-a', `t${i}`, {
    name: `token-${i}`, createdAt: now - 30 * DAY_MS, expiresAt: i % 5 === 0 ? null : now + ((i % 40) - 3) * DAY_MS,
    attributes: { comment: `token-${i}` },
  }));
  const secrets = Array.from({ length: 30 }, (_, i) => cred('keyvault-secret', 'kv-a', `s${i}`, {
    name: `s${i}`, createdAt: now - DAY_MS, expiresAt: now + (i % 2 ? 90 : 10) * DAY_MS,
    attributes: { [`tag:${KV_TAGS.credentialKind}`]: 'databricks-pat', [`tag:${KV_TAGS.credentialId}`]: `t${i}`, [`tag:${KV_TAGS.workspace}`]: 'ws-a' },
  }));
  return {
    databricks: { estate: 'databricks', scope: 'ws-a', facts: { maxTokenLifetimeDays: null }, credentials: tokens },
    vault: { estate: 'keyvault', scope: 'kv-a', host: 'https://kv-a.vault.azure.net', facts: {}, credentials: secrets },
    factory: {
      estate: 'datafactory', scope: 'adf-a', facts: {}, credentials: [],
      consumers: [{ kind: 'adf-linked-service', factory: 'adf-a', name: 'LS_A', pipelines: ['p1'], secret: { vault: 'kv-a', name: 's3' } }],
    },
  };
}

function sources(fail: () => boolean = () => false): InventorySource[] {
  const e = estate();
  return [
    { estate: 'databricks', scope: 'ws-a', host: 'https://ws-a', scan: async () => {
      if (fail()) throw new Error('HTTP 503');
      return e.databricks;
    } },
    { estate: 'keyvault', scope: 'kv-a', host: 'https://kv-a', scan: async () => e.vault },
    { estate: 'datafactory', scope: 'adf-a', host: 'https://arm', scan: async () => e.factory },
  ];
}

function scannerOver(srcs: InventorySource[], withRows: boolean): { scanner: Scanner; store: Store } {
  const sqlite = openSqliteStore({ path: ':memory:', clock });
  stores.push(sqlite);
  // Without rows the scanner keeps whole snapshots: the behaviour the rows must reproduce.
  const store: Store = withRows ? sqlite : new Proxy(sqlite, { get: (t, p) => (p === 'scanRows' ? undefined : Reflect.get(t, p, t)) });
  const scanner = createScanner({ sources: srcs, config: defaultConfig(), store, clock, logger });
  scanners.push(scanner);
  return { scanner, store: sqlite };
}

const byId = (a: Credential, b: Credential) => a.id.localeCompare(b.id);
const key = (f: { code: string; credentialId?: string; scope: string }) => `${f.credentialId ?? f.scope}|${f.code}`;

describe('a scan streamed into rows', () => {
  it('stores one row per credential with its findings, and reports what the whole-snapshot scan reported', async () => {
    const rows = scannerOver(sources(), true);
    const whole = scannerOver(sources(), false);
    const a = await rows.scanner.runScan('command');
    const b = await whole.scanner.runScan('command');

    expect(a.view).toBeDefined();
    expect(a.counts?.credentials).toBe(TOKENS + 30);
    expect([...a.credentials].sort(byId)).toEqual([...b.credentials].sort(byId));
    expect(a.findings.map(key).sort()).toEqual(b.findings.map(key).sort());
    expect(a.changes).toEqual(b.changes);

    // Links crossed sources: the secret holds the token, the token is held in it and used by the factory.
    const token = rows.store.scanRows!.get('databricks-pat:ws-a:t3')!;
    expect(token.credential.heldIn).toEqual([{ vault: 'kv-a', name: 's3' }]);
    expect(token.credential.consumers.map((c) => c.name)).toEqual(['LS_A']);
    expect(rows.store.scanRows!.get('keyvault-secret:kv-a:s3')!.credential.holds).toBe('databricks-pat:ws-a:t3');
    expect(token.findings.map((f) => f.code)).toEqual(a.findings.filter((f) => f.credentialId === token.id).map((f) => f.code));
    // The scope finding (no maximum token lifetime) is the scan's, not a credential's.
    expect(a.view!.scopeFindings.map((f) => f.code)).toEqual(['no-max-token-lifetime']);
    // "latest" is a summary now, not the estate.
    expect(JSON.stringify(rows.store.get('snapshots', 'latest')!.value)).not.toContain('"credentials":[');
  });

  it('an unchanged rescan reports no changes', async () => {
    const { scanner } = scannerOver(sources(), true);
    const first = await scanner.runScan('command');
    expect(first.changes.added).toHaveLength(TOKENS + 30);
    const second = await scanner.runScan('command');
    expect(second.changes).toEqual({ added: [], removed: [], changed: [] });
  });

  it('a scope that failed keeps its rows; when it answers again nothing is reported new or gone', async () => {
    let failing = false;
    const { scanner, store } = scannerOver(sources(() => failing), true);
    await scanner.runScan('command');
    failing = true;
    const failed = await scanner.runScan('command');
    expect(failed.errors.map((e) => e.scope)).toEqual(['ws-a']);
    expect(failed.changes.removed).toEqual([]);
    expect(store.scanRows!.get('databricks-pat:ws-a:t1')).toBeDefined();
    // The failed scan did not see them: its view leaves them out, as the scan's credentials did before.
    expect(failed.view!.get('databricks-pat:ws-a:t1')).toBeUndefined();
    expect(failed.view!.get('keyvault-secret:kv-a:s1')).toBeDefined();
    failing = false;
    const back = await scanner.runScan('command');
    expect(back.changes).toEqual({ added: [], removed: [], changed: [] });
    expect(back.view!.get('databricks-pat:ws-a:t1')).toBeDefined();
  });

  it('a credential gone from a scope that answered is removed from the rows', async () => {
    let drop = false;
    const e = estate();
    const { scanner, store } = scannerOver([{
      estate: 'databricks', scope: 'ws-a', host: 'https://ws-a',
      scan: async () => ({ ...e.databricks, credentials: drop ? e.databricks.credentials.slice(1) : e.databricks.credentials }),
    }], true);
    await scanner.runScan('command');
    drop = true;
    const next = await scanner.runScan('command');
    expect(next.changes).toEqual({ added: [], removed: ['databricks-pat:ws-a:t0'], changed: [] });
    expect(store.scanRows!.get('databricks-pat:ws-a:t0')).toBeUndefined();
  });
});
