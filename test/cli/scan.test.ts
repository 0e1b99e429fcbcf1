import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/scan.js';
import { nodeEntry } from '../helpers/test-build.js';

const exec = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'keywarden-scan-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  let text = '';
  return { write: (t: string) => { text += t; }, get text() { return text; } };
}

describe('keywarden scan', () => {
  it('--sandbox --json prints valid JSON covering all three estates, and exits 0 despite findings', async () => {
    // The real entry point as a child process, the way `npx keywarden scan --sandbox --json` runs it.
    const { stdout } = await exec(process.execPath, [...nodeEntry('src/cli/main.ts'), 'scan', '--sandbox', '--json'], {
      cwd: root, env: { ...process.env, KEYWARDEN_CONFIG: '' }, timeout: 120_000, maxBuffer: 10 * 1024 * 1024,
    });
    const report = JSON.parse(stdout) as {
      estates: string[];
      credentials: Array<{ kind: string; id: string; name: string; where: string; owner: string | null; expiresAt: string | null; daysLeft: number | null; findings: Array<{ code: string; severity: string }> }>;
      errors: unknown[];
    };
    expect(report.estates).toEqual(['databricks', 'entra', 'keyvault']);
    expect(report.errors).toEqual([]);
    expect(new Set(report.credentials.map((c) => c.kind))).toEqual(new Set(['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate']));
    for (const c of report.credentials) {
      expect(Object.keys(c)).toEqual(expect.arrayContaining(['kind', 'id', 'name', 'where', 'owner', 'expiresAt', 'daysLeft', 'findings']));
      if (c.expiresAt !== null) expect(new Date(c.expiresAt).toISOString()).toBe(c.expiresAt);
    }
    const bob = report.credentials.find((c) => c.name === 'bob-jdbc')!;
    expect(bob).toMatchObject({ kind: 'databricks-pat', owner: 'bob.dev@contoso.com', daysLeft: 14 });
    expect(bob.findings.map((f) => f.code)).toEqual(['expiring', 'human-owned-pipeline']);
    expect(report.credentials.find((c) => c.name === 'legacy-never')).toMatchObject({ expiresAt: null, daysLeft: null, findings: [{ code: 'no-expiry' }] });
    // Most urgent first.
    expect(report.credentials[0]!.daysLeft).toBeLessThan(0);
    // No secret value: no PAT shapes, no Entra secret shapes.
    expect(stdout).not.toMatch(/dapi[0-9a-f]{32}/);
    expect(stdout).not.toMatch(/8Q~/);
  }, 150_000);

  it('prints a readable table by default', async () => {
    const out = capture();
    const err = capture();
    const code = await run(['--sandbox', '--config', writeConfig('table.yaml', 'sandbox:\n  dataDir: .test-ca\n')], { stdout: out, stderr: err });
    expect(code).toBe(0);
    const lines = out.text.split('\n');
    expect(lines[0]).toMatch(/^KIND\s+NAME\s+WHERE\s+OWNER\s+EXPIRES\s+DAYS LEFT\s+FINDINGS$/);
    expect(out.text).toMatch(/Databricks PAT\s+bob-jdbc\s+ws-prod · held in kv-prod\/adb-prod-bob-pipeline\s+bob\.dev@contoso\.com\s+\d{4}-\d\d-\d\d\s+14\s+expiring, human-owned-pipeline/);
    expect(out.text).toContain('pat-creation-open ws-dev');
    expect(err.text).toContain('sandbox');
  }, 60_000);

  it('exits 1 and names the estate when one could not be scanned', async () => {
    const out = capture();
    const err = capture();
    // Not sandbox mode: in sandbox mode scan starts the emulated clouds, as start does.
    const config = writeConfig('dead.yaml', [
      'mode: production', 'bot:', '  appId: 00000000-0000-4000-8000-0000000000b1', '  appPassword: not-used-by-scan', '  tenantId: 00000000-0000-4000-8000-0000000000c1',
      'entra:', '  enabled: false',
      'databricks:', '  workspaces:', '    - name: ws-gone', '      host: http://127.0.0.1:9', '      auth:', '        type: pat', `        token: dapi${'0'.repeat(32)}`,
    ].join('\n'));
    const code = await run(['--json', '--config', config], { stdout: out, stderr: err });
    expect(code).toBe(1);
    const report = JSON.parse(out.text) as { errors: Array<{ scope: string; message: string }> };
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]!.message).toMatch(/^could not scan databricks ws-gone \(http:\/\/127\.0\.0\.1:9\): /);
    expect(out.text + err.text).not.toContain(`dapi${'0'.repeat(32)}`);
  }, 60_000);

  it('bad options get the usage and exit 2', async () => {
    const err = capture();
    expect(await run(['--jsn'], { stdout: capture(), stderr: err })).toBe(2);
    expect(err.text).toContain('unknown option "--jsn"');
    expect(err.text).toContain('Usage: keywarden scan [--json] [--config <file>] [--sandbox]');
  });
});

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
