import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { systemClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { connectAuditKeyVault } from '../../src/providers/keyvault/audit-key-vault.js';
import { startSandboxClouds, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createAuditAnchorer } from '../../src/store/audit-anchor.js';
import { AUDIT_GENESIS_HASH, auditHash } from '../../src/store/audit-chain.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { AuditRecord } from '../../src/store/store.js';

/** `keywarden audit --verify` as a child process, against a store a keyed bot wrote and anchors in (emulated) Key Vault. */

const BIN = resolve(import.meta.dirname, '../../bin/keywarden.mjs');
const SECRET_ENV = 'KW_AUDIT_TEST_CLIENT_SECRET';
let clouds: SandboxClouds;
let dir: string;
let clientSecret: string;
const silent = createLogger({ level: 'silent' });

function configFor(storePath: string, audit: Record<string, unknown>, vaults = clouds.config.keyVault.vaults): Record<string, unknown> {
  const { clientSecret: _secret, ...credential } = clouds.config.azure.credential;
  return {
    store: { path: storePath },
    azure: { ...clouds.config.azure, credential: { ...credential, clientSecret: `env:${SECRET_ENV}` } },
    keyVault: { vaults, disableChallengeResourceVerification: true },
    audit,
  };
}

function writeConfig(name: string, config: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(config));
  return file;
}

function verify(configFile: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, [SECRET_ENV]: clientSecret };
  delete env.KEYWARDEN_CONFIG;
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [BIN, 'audit', '--verify', ...extra, '--config', configFile], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

/** What a keyed bot leaves behind: `count` records, anchored every `every` entries and at shutdown. */
async function botRun(storePath: string, anchorName: string, count: number, every = 10, keyed = true) {
  const config = configSchema.parse({ ...configFor(storePath, { keySecret: { vault: 'kv-prod', name: 'keywarden-audit-key' }, anchorSecret: { vault: 'kv-prod', name: anchorName }, anchorEveryEntries: every }), azure: clouds.config.azure });
  const vault = connectAuditKeyVault(config)!;
  const auditKey = keyed ? await vault.readKey() : undefined;
  let nudge: (seq: number) => void = () => undefined;
  const store = openSqliteStore({ path: storePath, auditKey, onAuditAppended: (seq) => nudge(seq) });
  const anchorer = createAuditAnchorer({ store, sink: vault.anchors!, clock: systemClock, logger: silent, everyEntries: every, everyMs: 3_600_000 });
  nudge = (seq) => anchorer.nudge(seq);
  anchorer.start();
  for (let i = 1; i <= count; i++) {
    store.appendAudit({ action: i % 2 ? 'approval.granted' : 'approval.refused', actor: { aadObjectId: `a${i}`, name: 'Alex' }, subject: `databricks-pat:ws-prod:${i}`, result: i % 2 ? 'ok' : 'refused', details: { n: i } });
    await anchorer.idle(); // a test only: let each due anchor land before the next append
  }
  await anchorer.stop();
  store.close();
}

/**
 * The careful editor: drops the guards, edits #seq, and recomputes the hashes without a key — from #seq on
 * (keeping or clearing the keyed flag), or the whole chain from genesis as if it had never been keyed.
 */
function editAndRecompute(path: string, seq: number, how: 'from-edit' | 'from-edit-unkeyed' | 'all-unkeyed'): void {
  const db = new Database(path);
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
    db.prepare('UPDATE audit_log SET result = ?, details = ? WHERE seq = ?').run('ok', JSON.stringify({ n: seq, note: 'approved by admin' }), seq);
    const rows = db.prepare('SELECT * FROM audit_log ORDER BY seq').all() as Array<Record<string, unknown>>;
    const from = how === 'all-unkeyed' ? 1 : seq;
    let prev = from === 1 ? AUDIT_GENESIS_HASH : (rows[from - 2]!.hash as string);
    const update = db.prepare('UPDATE audit_log SET prev_hash = ?, hash = ?, keyed = ? WHERE seq = ?');
    db.prepare('UPDATE audit_log SET hash = hash || \'-\' WHERE seq >= ?').run(from); // hash is UNIQUE: move them out of the way first
    for (const row of rows.slice(from - 1)) {
      const record = {
        seq: row.seq as number, at: row.at as number, action: row.action as string, result: row.result as AuditRecord['result'],
        ...(row.actor ? { actor: JSON.parse(row.actor as string) } : {}),
        ...(row.subject ? { subject: row.subject as string } : {}),
        ...(row.details ? { details: JSON.parse(row.details as string) } : {}),
      };
      const hash = auditHash(prev, record);
      update.run(prev, hash, how === 'from-edit' ? row.keyed : 0, record.seq);
      prev = hash;
    }
  } finally {
    db.close();
  }
}

function deleteLast(path: string, n: number): void {
  const db = new Database(path);
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_log_no_delete;');
    db.prepare('DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) FROM audit_log) - ?').run(n);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  clouds = await startSandboxClouds();
  clientSecret = clouds.config.azure.credential.clientSecret;
  dir = mkdtempSync(join(tmpdir(), 'kw-audit-verify-'));
  clouds.handles.keyVault.vault('kv-prod').seedSecret('keywarden-audit-key', { value: randomBytes(48).toString('base64url') });
}, 60_000);
afterAll(async () => {
  await clouds?.close();
  rmSync(dir, { recursive: true, force: true });
});

const keyed = (anchor: string) => ({ keySecret: { vault: 'kv-prod', name: 'keywarden-audit-key' }, anchorSecret: { vault: 'kv-prod', name: anchor } });

describe('keywarden audit --verify (keyed chain, anchors in Key Vault)', () => {
  it('an untouched log: says what it checked and from when, exit 0', async () => {
    const db = join(dir, 'intact.db');
    await botRun(db, 'anchor-intact', 25);
    const run = await verify(writeConfig('intact.yaml', configFor(db, keyed('anchor-intact'))));
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('entries checked: 25 (#1–#25)');
    expect(run.stdout).toContain('keyed: from #1 (HMAC-SHA256 checked with kv-prod/keywarden-audit-key)');
    expect(run.stdout).toMatch(/anchors: 3 of 3 checked in kv-prod\/anchor-intact; latest #25 written \d{4}-\d\d-\d\dT/);
    expect(run.stdout).toContain('result: INTACT\n');
    expect(run.code).toBe(0);
    // The key never reaches the output.
    const key = clouds.handles.keyVault.vault('kv-prod').readStoredValue('keywarden-audit-key')!;
    expect(run.stdout + run.stderr).not.toContain(key);
    expect(existsSync(db)).toBe(true);
  }, 60_000);

  it('a record edited and the hashes recomputed without the key fails, however the editor marks them', async () => {
    const original = join(dir, 'edit.db');
    await botRun(original, 'anchor-edit', 25);
    const expected = {
      'from-edit': /result: BROKEN at #12 — #12 was changed after it was written \(its keyed hash does not match\)/,
      'from-edit-unkeyed': /result: BROKEN at #12 — #12 is unkeyed after keyed records from #1: forged, or audit.keySecret was removed/,
      // Looks like an intact legacy chain; the anchors kept outside the database give it away.
      'all-unkeyed': /result: BROKEN at #10 — #10 differs from the anchor written \S+: the record or an earlier one was changed and the hashes recomputed/,
    } as const;
    for (const [how, message] of Object.entries(expected)) {
      const db = join(dir, `edit-${how}.db`);
      copyFileSync(original, db);
      editAndRecompute(db, 12, how as keyof typeof expected);
      const run = await verify(writeConfig(`edit-${how}.yaml`, configFor(db, keyed('anchor-edit'))));
      expect(run.stdout, how).toMatch(message);
      expect(run.code, how).toBe(1);
    }
  }, 60_000);

  it('the last 10 records deleted fails (the anchor says they existed)', async () => {
    const db = join(dir, 'truncated.db');
    await botRun(db, 'anchor-truncated', 25);
    deleteLast(db, 10);
    const run = await verify(writeConfig('truncated.yaml', configFor(db, keyed('anchor-truncated'))));
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toContain('entries checked: 15 (#1–#15)');
    expect(run.stdout).toMatch(/result: BROKEN at #16 — the anchor written \S+ says #25 existed, but the log ends at #15: records were deleted from the end/);
  }, 60_000);

  it('legacy unkeyed records before the key stay verifiable and are named', async () => {
    const db = join(dir, 'legacy.db');
    await botRun(db, 'anchor-legacy', 5, 100, false);
    await botRun(db, 'anchor-legacy', 5, 100, true);
    const run = await verify(writeConfig('legacy.yaml', configFor(db, keyed('anchor-legacy'))));
    expect(run.stdout).toContain('keyed: from #6 (HMAC-SHA256 checked with kv-prod/keywarden-audit-key); #1–#5 legacy, unkeyed (SHA-256)');
    expect(run.code, run.stdout).toBe(0);
  }, 60_000);

  it('without Key Vault it says what it could not check and exits 3', async () => {
    const db = join(dir, 'offline.db');
    await botRun(db, 'anchor-offline', 5);
    const gone = [{ name: 'kv-prod', url: 'https://127.0.0.1:9' }];
    const run = await verify(writeConfig('offline.yaml', configFor(db, keyed('anchor-offline'), gone)));
    expect(run.stdout).toContain('keyed: from #1 (NOT checked: no key (linkage only))');
    expect(run.stdout).toMatch(/NOT CHECKED: the keyed hashes — cannot read the audit key kv-prod\/keywarden-audit-key/);
    expect(run.stdout).toMatch(/NOT CHECKED: truncation \(anchors in kv-prod\/anchor-offline\)/);
    expect(run.stdout).toContain('result: INTACT as far as checked');
    expect(run.code).toBe(3);
  }, 90_000);
});

describe('keywarden audit --verify on a store that does not exist', () => {
  it('says the store was not found, exits non-zero and creates nothing', async () => {
    const missingDir = join(dir, 'nowhere');
    const db = join(missingDir, 'keywarden.db');
    const config = writeConfig('missing.yaml', { store: { path: db } });
    const before = readdirSync(dir).sort();
    const run = await verify(config);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/audit log not found: no store at .*nowhere\/keywarden\.db \(nothing was created\)/);
    expect(run.stdout).not.toMatch(/INTACT/i);
    expect(existsSync(missingDir)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(before);
  }, 30_000);
});
