import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, usage } from '../../src/cli/main.js';

const REPO = resolve(import.meta.dirname, '../..');
const FIXTURE_COMMANDS = resolve(import.meta.dirname, '../fixtures/cli');
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

function run(argv: string[], options: { env?: Record<string, string | undefined>; allowRespawn?: boolean } = {}) {
  let out = '';
  let err = '';
  const done = main(argv, {
    env: options.env ?? {},
    commandsDir: FIXTURE_COMMANDS,
    allowRespawn: options.allowRespawn ?? false,
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  return done.then((code) => ({ code, out, err }));
}

describe('dispatcher', () => {
  it('prints usage for --help and for no command', async () => {
    for (const argv of [['--help'], [], ['help']]) {
      const { code, out } = await run(argv);
      expect(code).toBe(0);
      expect(out).toBe(usage());
    }
    expect(usage()).toMatch(/start[\s\S]*scan[\s\S]*doctor[\s\S]*audit[\s\S]*package/);
  });

  it('rejects an unknown command with usage and exit 2', async () => {
    const { code, err } = await run(['rotate-everything']);
    expect(code).toBe(2);
    expect(err).toContain('unknown command "rotate-everything"');
    expect(err).toContain('Usage: keywarden');
  });

  it('runs the command module with the remaining args and returns its exit code', async () => {
    const { code } = await run(['scan', '--json', 'ws-prod']);
    expect(code).toBe(7);
  });

  it('says "not available yet" when the command module does not exist', async () => {
    const { code, err } = await run(['package']);
    expect(code).toBe(1);
    expect(err).toMatch(/^keywarden package: not available yet/);
  });

  it('prints configuration problems without a stack trace and exits 2', async () => {
    const { code, err } = await run(['doctor']);
    expect(code).toBe(2);
    expect(err).toBe('keywarden doctor: configuration problems in /etc/keywarden.yaml:\n  - bot.appId: required in production mode — set bot.appId or MicrosoftAppId\n');
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('reports an unexpected error with its stack, redacted', async () => {
    const { code, err } = await run(['audit']);
    expect(code).toBe(1);
    expect(err).toContain('unexpected error');
    expect(err).toContain('TypeError: exploded while holding [REDACTED]');
    expect(err).not.toContain('dapi0123456789abcdef');
  });

  it('reports an invalid config file before running a sandbox command', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-cli-bad-'));
    try {
      writeFileSync(join(dir, 'bad.yaml'), 'mode: prod\n');
      // The sandbox check loads the config first, so a bad file stops `start` before anything runs.
      const { code, err } = await run(['start', '--config', join(dir, 'bad.yaml')], { allowRespawn: true });
      expect(code).toBe(2);
      expect(err).toContain('  - mode: "prod" is not allowed — use one of: sandbox, production');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sandbox CA re-spawn (real processes)', () => {
  let dir: string;
  let config: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kw-cli-'));
    config = join(dir, 'keywarden.yaml');
    writeFileSync(config, `sandbox:\n  dataDir: ${JSON.stringify(join(dir, 'sandbox'))}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const childEnv = () => {
    const env: Record<string, string | undefined> = { ...process.env, KEYWARDEN_CLI_COMMANDS_DIR: FIXTURE_COMMANDS };
    delete env.NODE_EXTRA_CA_CERTS;
    delete env.KEYWARDEN_CONFIG;
    return env;
  };

  it('restarts a sandbox command with NODE_EXTRA_CA_CERTS at the sandbox CA and passes the exit code back', () => {
    const result = spawnSync(process.execPath, ['--import', TSX, join(REPO, 'src/cli/main.ts'), 'scan', '--config', config], {
      env: childEnv(), encoding: 'utf8', timeout: 60_000,
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(7);
    const reported = JSON.parse(result.stdout.trim()) as { argv: string[]; ca: string };
    expect(reported.ca).toBe(join(dir, 'sandbox', 'ca.pem'));
    expect(reported.argv).toEqual(['--config', config]);
    expect(existsSync(join(dir, 'sandbox', 'ca.pem'))).toBe(true);
  });

  async function startFixture() {
    // detached: its own process group, so the test can signal the group the way a terminal's Ctrl-C does.
    const child = spawn(process.execPath, ['--import', TSX, join(REPO, 'src/cli/main.ts'), 'start', '--config', config], {
      env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await new Promise<void>((ready, fail) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) ready();
      });
      child.on('exit', () => fail(new Error(`exited early: ${out} ${err}`)));
    });
    return { child, exited, output: () => out };
  }

  it('forwards SIGTERM to the restarted process and exits with its code', async () => {
    const { child, exited, output } = await startFixture();
    expect(output()).toContain(`ready ca=${join(dir, 'sandbox', 'ca.pem')}`);
    child.kill('SIGTERM');
    expect(await exited).toBe(3);
    expect(output()).toContain('stopping on SIGTERM');
  });

  it('delivers a Ctrl-C (SIGINT to the whole process group) to the restarted process exactly once', async () => {
    const { child, exited, output } = await startFixture();
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(4);
    expect(output()).toContain('stopping on SIGINT');
  });

  it('bin/keywarden.mjs runs the CLI', () => {
    const result = spawnSync(process.execPath, [join(REPO, 'bin/keywarden.mjs'), '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: keywarden <command>');
  });
});
