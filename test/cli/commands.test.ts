import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/main.js';

/** The CLI as users run it (bin/keywarden.mjs), as a child process in a scratch working directory. */

const BIN = resolve(import.meta.dirname, '../../bin/keywarden.mjs');
const dirs: string[] = [];
afterAll(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kw-cli-cmd-'));
  dirs.push(dir);
  return dir;
}

function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['KEYWARDEN_CONFIG', 'MicrosoftAppId', 'MicrosoftAppPassword', 'MicrosoftAppTenantId', 'MicrosoftAppType', 'PORT', 'NODE_EXTRA_CA_CERTS', 'KEYWARDEN_CLI_RESPAWNED']) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

interface Ran { code: number | null; stdout: string; stderr: string }

function cli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: options.env ?? cliEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A command that starts serving never exits on its own: kill its group and fail with what it printed.
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
      reject(new Error(`keywarden ${args.join(' ')} did not exit within ${options.timeoutMs ?? 30_000} ms (it is serving?)\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('exit', (code) => { clearTimeout(timer); resolveRun({ code, stdout, stderr }); });
  });
}

describe('keywarden <command> --help', () => {
  for (const command of Object.keys(COMMANDS)) {
    for (const flag of ['--help', '-h']) {
      it(`${command} ${flag} prints the command's help, exits 0, writes no file and serves nothing`, async () => {
        const cwd = scratch();
        const run = await cli([command, flag], { cwd });
        expect(run.stderr).toBe('');
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(new RegExp(`^Usage: keywarden ${command}\\b`));
        expect(run.stdout).not.toMatch(/Keywarden SANDBOX|"level":/); // no banner, no log line
        expect(readdirSync(cwd)).toEqual([]);
      }, 40_000);
    }
  }

  it('start --help after other options is still help', async () => {
    const cwd = scratch();
    const run = await cli(['start', '--config', 'nowhere.yaml', '--help'], { cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: keywarden start/);
    expect(readdirSync(cwd)).toEqual([]);
  }, 40_000);
});

// Any request to a real Azure host goes through this dead proxy and fails; the emulators on 127.0.0.1 bypass it.
const NO_REAL_AZURE = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost' };

describe('scan and doctor treat a sandbox config the way start does', () => {
  const configs = { 'an empty config file': '', '`mode: sandbox`': 'mode: sandbox\n' };
  for (const [what, text] of Object.entries(configs)) {
    it(`scan --json with ${what} scans the emulated estate`, async () => {
      const cwd = scratch();
      writeFileSync(join(cwd, 'keywarden.yaml'), text);
      const run = await cli(['scan', '--json', '--config', 'keywarden.yaml'], { cwd, env: cliEnv(NO_REAL_AZURE), timeoutMs: 120_000 });
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as { estates: string[]; errors: unknown[]; credentials: Array<{ name: string }> };
      expect(report.errors).toEqual([]);
      expect(report.estates).toEqual(['databricks', 'entra', 'keyvault']);
      expect(report.credentials.map((c) => c.name)).toContain('bob-jdbc');
    }, 150_000);

    it(`doctor with ${what} checks the emulated clouds`, async () => {
      const cwd = scratch();
      writeFileSync(join(cwd, 'keywarden.yaml'), text);
      const run = await cli(['doctor', '--json', '--config', 'keywarden.yaml'], { cwd, env: cliEnv(NO_REAL_AZURE), timeoutMs: 120_000 });
      const report = JSON.parse(run.stdout) as { configSource?: string };
      expect(JSON.stringify(report)).toContain('emulated clouds (sandbox)');
      expect(run.stdout).not.toMatch(/graph\.microsoft\.com|login\.microsoftonline\.com|management\.azure\.com/);
      expect(run.code, run.stdout).toBe(0);
    }, 150_000);
  }
});

describe('keywarden start on a port in use', () => {
  let blocker: Server | undefined;
  afterAll(() => new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r())));

  it('prints one line naming the port and the fix, and exits 2', async () => {
    blocker = createServer();
    const port = await new Promise<number>((r) => blocker!.listen(0, '127.0.0.1', () => r((blocker!.address() as { port: number }).port)));
    const cwd = scratch();
    writeFileSync(join(cwd, 'keywarden.yaml'), `server:\n  port: ${port}\nsandbox:\n  dataDir: ${JSON.stringify(join(cwd, 'sandbox'))}\n`);
    const run = await cli(['start', '--config', 'keywarden.yaml'], { cwd, env: cliEnv(NO_REAL_AZURE), timeoutMs: 60_000 });
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`port ${port}`);
    expect(lines[0]).toMatch(/PORT=|server\.port/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 90_000);
});
