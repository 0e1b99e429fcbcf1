import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startKeywarden, type RunningKeywarden } from '../../src/cli/start.js';
import { createLogger } from '../../src/logging/logger.js';
import { connectAuditKeyVault } from '../../src/providers/keyvault/audit-key-vault.js';
import { startSandboxEnvironment } from '../../src/sandbox/start.js';
import { TEST_CA_DIR } from '../../src/sandbox/tls.js';

/** The sandbox keys its audit log with a key it puts in its own emulated vault, anchors the head there, and the CLI verifies it. */

const BIN = resolve(import.meta.dirname, '../../bin/keywarden.mjs');

describe('sandbox audit key and anchors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-audit-sandbox-'));
  let running: RunningKeywarden | undefined;
  const logs: string[] = [];
  afterAll(async () => {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keys every record, anchors the head in Key Vault, and `audit --verify` checks both; the key is never logged', async () => {
    const configPath = join(dir, 'keywarden.yaml');
    const dataDir = process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR; // the CA this test process already trusts
    writeFileSync(configPath, stringify({ server: { port: 0 }, store: { path: join(dir, 'kw.db') }, sandbox: { dataDir, playground: false }, audit: { anchorEveryEntries: 3 } }));
    running = await startKeywarden({
      configPath, env: {}, handleSignals: false, port: 0,
      logger: createLogger({ destination: { write: (l: string) => logs.push(l) } }),
      startSandbox: (context) => startSandboxEnvironment({ ...context, env: { KEYWARDEN_SANDBOX_PLAYGROUND: '0' } }),
    });
    const { store } = running.keywarden;
    for (let i = 0; i < 4; i++) expect(store.appendAudit({ action: 'test.click', result: 'info', details: { i } }).keyed).toBe(true);

    const vault = connectAuditKeyVault(running.config)!;
    let anchors = await vault.anchors!.list();
    for (let tries = 0; anchors.length === 0 && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      anchors = await vault.anchors!.list();
    }
    // Due at #3; the write runs after the synchronous appends, so it copies the head it finds: #4.
    expect(anchors.map((a) => a.seq)).toEqual([4]);

    // The running sandbox's own config (its Entra secret inline; a scratch file) for the CLI.
    const cliConfig = join(dir, 'verify.yaml');
    writeFileSync(cliConfig, stringify({ store: running.config.store, azure: running.config.azure, keyVault: { disableChallengeResourceVerification: true }, audit: running.config.audit }));
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.KEYWARDEN_CONFIG;
      const child = spawn(process.execPath, [BIN, 'audit', '--verify', '--config', cliConfig], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => done({ code, stdout, stderr }));
    });
    expect(run.stdout).toMatch(/keyed: from #1 \(HMAC-SHA256 checked with https:\/\/127\.0\.0\.1:\d+\/secrets\/keywarden-audit-key\)/);
    expect(run.stdout).toMatch(/anchors: 1 of 1 checked in .*keywarden-audit-anchor; latest #4 written/);
    expect(run.stdout).toContain('result: INTACT\n');
    expect(run.code).toBe(0);

    const key = await vault.readKey();
    await running.stop();
    running = undefined;
    expect(logs.join('\n')).not.toContain(key.toString('utf8'));
    expect(readFileSync(join(dir, 'kw.db')).includes(key)).toBe(false);
  }, 120_000);
});
