import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimStoreFormat } from '../../src/store/format.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { nodeEntry } from '../helpers/test-build.js';
import { NEWER, writeFormatRow } from './format-edge.js';

/**
 * `keywarden start` (the real CLI, a child process) on a store a newer release has moved to a higher format: it refuses
 * before anything starts, says both formats, who wrote the store and the fix, exits 2, and prints no stack trace.
 */

const ROOT = resolve(import.meta.dirname, '../..');
let azurite: Azurite;
let dir: string;

beforeAll(async () => {
  azurite = await startAzurite();
  dir = mkdtempSync(join(tmpdir(), 'kw-format-start-'));
}, 60_000);
afterAll(async () => {
  await azurite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function productionConfig(store: Record<string, unknown>): { config: string; env: Record<string, string | undefined> } {
  const config = join(dir, `kw-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(config, JSON.stringify({ mode: 'production', server: { host: '127.0.0.1', port: 0 }, store, log: { level: 'info' } }));
  const env: Record<string, string | undefined> = {
    ...process.env, KEYWARDEN_CONFIG: '', KW_TEST_STORAGE: azurite.connectionString,
    MicrosoftAppId: '00000000-0000-0000-0000-00000000b075', MicrosoftAppPassword: 'not-a-real-password', MicrosoftAppTenantId: '00000000-0000-0000-0000-0000000000aa',
  };
  return { config, env };
}

function start(store: Record<string, unknown>): Promise<{ code: number | null; out: string }> {
  const { config, env } = productionConfig(store);
  const child = spawn(process.execPath, ['bin/keywarden.mjs', 'start', '--config', config], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => { clearTimeout(timer); done({ code, out }); });
  });
}

const REFUSAL = 'the store is at format 2, written by Keywarden 9.9.9 (replica-b pid 4242), but this Keywarden 0.1.0 writes format 1 — '
  + 'upgrade this replica to Keywarden 9.9.9 or newer; do not run an older release against this store [STORE_FORMAT_NEWER]';

describe('keywarden start on a store ahead of this release', () => {
  it('SQLite: refuses with both formats, the writer and the fix; exit 2, no stack, the record untouched', async () => {
    const path = join(dir, 'newer.db');
    const seeded = openSqliteStore({ path });
    seeded.insert('settings', 'store-format', { ...NEWER, at: Date.now() });
    seeded.close();

    const run = await start({ path });
    expect(run.out).toContain(`keywarden start: ${REFUSAL}`);
    expect(run.code).toBe(2);
    expect(run.out).not.toMatch(/\n\s+at /);
    expect(run.out).not.toContain('bot server listening');
    const after = openSqliteStore({ path });
    expect(after.get('settings', 'store-format')?.value).toMatchObject({ format: 2, version: '9.9.9' });
    after.close();
  }, 90_000);

  it('Azure Tables: refuses the same way, before it takes the lease or writes anything', async () => {
    await writeFormatRow(azurite.connectionString, 'kwnewer', { ...NEWER, at: Date.now() });

    const run = await start({ type: 'azure-tables', azure: { connectionString: 'env:KW_TEST_STORAGE', table: 'kwnewer', container: 'kwnewer', leaseSeconds: 15 } });
    expect(run.out).toContain(`keywarden start: ${REFUSAL}`);
    expect(run.code).toBe(2);
    expect(run.out).not.toMatch(/\n\s+at /);
    expect(run.out).not.toContain('this replica is now the leader');
    const store = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'kwnewer', container: 'kwnewer' });
    try {
      expect(store.get('settings', 'store-format')?.value).toMatchObject({ format: 2, version: '9.9.9' });
      expect(store.list('settings')).toHaveLength(1);
      expect(store.auditHead()).toBeUndefined();
    } finally {
      store.close();
    }
  }, 90_000);

  it('an older store (no record, or a lower format) is raised to this release\'s format', () => {
    const path = join(dir, 'older.db');
    // Absent → inserted; equal → left alone; lower → compare-and-set; and then an older release is refused.
    const store = openSqliteStore({ path });
    try {
      expect(claimStoreFormat(store, { now: 1 })).toMatchObject({ wrote: true, record: { format: 1, version: '0.1.0' } });
      expect(claimStoreFormat(store, { now: 2 })).toMatchObject({ wrote: false });
      expect(claimStoreFormat(store, { now: 3, format: 2 })).toMatchObject({ wrote: true, raisedFrom: 1, raisedAt: 3 });
      expect(() => claimStoreFormat(store, { now: 4 })).toThrow(/store is at format 2, .* writes format 1/);
      expect(store.get('settings', 'store-format')?.version).toBe(2);
    } finally {
      store.close();
    }
  });

  it('two replicas of a newer release raising the format at once: one compare-and-set wins, both wait, both serve', async () => {
    await writeFormatRow(azurite.connectionString, 'kwrace', { format: 1, version: '0.1.0', host: 'old', pid: 1, at: Date.now() - 60_000 });
    const { config, env } = productionConfig({ type: 'azure-tables', azure: { connectionString: 'env:KW_TEST_STORAGE', table: 'kwrace', container: 'kwrace', leaseSeconds: 15 } });
    const children = [0, 1].map(() => {
      const child = spawn(process.execPath, [...nodeEntry('test/replicas/fixtures/format-replica.ts'), config, '2'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const seen = { out: '' };
      child.stdout.on('data', (d: Buffer) => { seen.out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { seen.out += d.toString(); });
      return { child, seen };
    });
    try {
      const started = Date.now();
      while (!children.every((c) => /KEYWARDEN_READY/.test(c.seen.out))) {
        if (children.some((c) => c.child.exitCode !== null) || Date.now() - started > 90_000) throw new Error(children.map((c) => c.seen.out.slice(-2000)).join('\n---\n'));
        await new Promise((r) => setTimeout(r, 100));
      }
      const outs = children.map((c) => c.seen.out);
      expect(outs.filter((o) => o.includes('raised the store format from 1 to 2'))).toHaveLength(1);
      for (const o of outs) expect(o).toMatch(/the store format was just raised to 2: waiting [1-6] s/);
      const store = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'kwrace', container: 'kwrace' });
      try {
        expect(store.get('settings', 'store-format')).toMatchObject({ version: 2, value: { format: 2 } });
      } finally {
        store.close();
      }
    } finally {
      for (const c of children) c.child.kill('SIGKILL');
    }
  }, 120_000);
});
