import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CA_DIR } from '../../src/sandbox/tls.js';

/**
 * Must show, with the real CLI (`bin/keywarden.mjs start`) as a child process: a background task whose promise
 * rejects with nobody listening is logged — redacted — and the bot keeps serving; an uncaught exception is logged
 * and the bot shuts down gracefully (store closed) with exit code 1 for its supervisor to restart it.
 * A preload module plays the buggy background task: SIGUSR2 makes a stray rejection, SIGWINCH an uncaught throw,
 * both carrying a PAT-shaped secret in the message.
 */

const ROOT = resolve(import.meta.dirname, '..', '..');
const PAT = `dapi${'ab'.repeat(16)}`;
const PRELOAD = `
const pat = ${JSON.stringify(PAT)};
process.on('SIGUSR2', () => { Promise.reject(new Error('background refresh failed with token ' + pat)); });
process.on('SIGWINCH', () => { setImmediate(() => { throw new Error('timer callback blew up with token ' + pat); }); });
`;

let dir: string;
let child: ChildProcess;
let output = '';
let exited: Promise<number | null>;
let url = '';

async function until(test: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keywarden-process-'));
  const preload = join(dir, 'stray-task.mjs');
  writeFileSync(preload, PRELOAD);
  const configPath = join(dir, 'keywarden.json');
  writeFileSync(configPath, JSON.stringify({
    mode: 'sandbox', server: { port: 0 }, store: { path: join(dir, 'keywarden.db') }, log: { level: 'info' },
    sandbox: { playground: false, dataDir: resolve(ROOT, process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR) },
  }));
  child = spawn(process.execPath, ['--import', pathToFileURL(preload).href, 'bin/keywarden.mjs', 'start', '--config', configPath], {
    cwd: ROOT, env: { ...process.env, KEYWARDEN_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b: Buffer) => { output += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { output += b.toString(); });
  exited = new Promise((r) => child.on('exit', (code) => r(code)));
  await until(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*bot server listening/.test(output) || child.exitCode !== null, 'the bot to listen', 90_000);
  url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*bot server listening/.exec(output)?.[1] ?? '';
  expect(url, output.slice(-3000)).not.toBe('');
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('keywarden start as a process', () => {
  it('a stray rejection in a background task is logged (redacted) and the bot keeps serving', async () => {
    await until(() => output.includes('scan finished'), 'the first scan', 60_000);
    // The operator sees where the scan's time went: reading the estates, then linking, policy, diff and rows.
    expect(output).toMatch(/"fetchMs":\d+,"afterFetchMs":\d+[^\n]*"scan finished"/);
    // …and its alerts (no support channel in this config): readiness is steady from here on.
    await until(() => output.includes('alerts have no support channel'), 'the first scan\'s alerts', 60_000);
    const readyBefore = await (await fetch(`${url}/readyz`)).json() as { checks: Array<{ name: string; ok: boolean }> };
    child.kill('SIGUSR2');
    await until(() => output.includes('a background task failed'), 'the rejection to be logged');
    // Twice: the first one did not leave the process half-dead.
    child.kill('SIGUSR2');
    await until(() => output.includes('"unhandledRejections":2'), 'the second rejection to be logged');
    expect(child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const readyAfter = await (await fetch(`${url}/readyz`)).json() as { checks: Array<{ name: string; ok: boolean }> };
    expect(readyAfter.checks.map((c) => `${c.name}:${c.ok}`)).toEqual(readyBefore.checks.map((c) => `${c.name}:${c.ok}`));
    expect(output).toContain('background refresh failed with token');
    expect(output).not.toContain(PAT);
  }, 60_000);

  it('an uncaught exception is logged (redacted) and the bot stops gracefully with exit code 1', async () => {
    child.kill('SIGWINCH');
    const code = await Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(code, output.slice(-3000)).toBe(1);
    expect(output).toContain('uncaught exception');
    expect(output).toContain('timer callback blew up with token');
    expect(output).toContain('Keywarden stopped'); // modules stopped and the store closed
    expect(output).not.toContain(PAT);
  }, 60_000);
});
