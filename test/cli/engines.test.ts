import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** The Node versions we promise (package.json engines, README, Dockerfile) and what the lockfile's packages accept. */

const ROOT = resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: Record<string, string> | string[] }> };
const semver = createRequire(import.meta.url)('semver') as {
  subset(sub: string, dom: string): boolean;
  intersects(a: string, b: string): boolean;
  minVersion(range: string): { version: string } | null;
};

/** engines.node of a lockfile entry; old packages write engines as ["node >=0.6"]. */
function nodeRange(engines: Record<string, string> | string[] | undefined): string | undefined {
  if (!engines) return undefined;
  if (Array.isArray(engines)) return engines.find((e) => e.startsWith('node '))?.slice('node '.length).trim();
  return engines.node;
}

describe('Node versions', () => {
  const promised = pkg.engines.node;

  it('every package in the lockfile accepts every Node version we promise (npm ci prints no EBADENGINE)', () => {
    const excluding = Object.entries(lock.packages)
      .filter(([path]) => path !== '')
      .map(([path, entry]) => ({ path, range: nodeRange(entry.engines) }))
      .filter((p): p is { path: string; range: string } => p.range !== undefined && !semver.subset(promised, p.range))
      .map((p) => `${p.path} wants node ${p.range}`);
    expect(excluding).toEqual([]);
    expect(nodeRange(lock.packages['']!.engines)).toBe(promised);
  });

  it('the README states exactly the promised range, whose floor is 20.19', () => {
    expect(semver.minVersion(promised)!.version).toBe('20.19.0');
    expect(read('README.md')).toContain(`\`${promised}\``);
  });

  it("the Dockerfile's Node images are a major we promise", () => {
    const majors = [...read('Dockerfile').matchAll(/^FROM node:(\d+)[-.\s]/gm)].map((m) => m[1]!);
    expect(majors.length).toBeGreaterThan(0);
    for (const major of majors) expect(semver.intersects(`^${major}.0.0`, promised), `node:${major}`).toBe(true);
  });
});

describe('no DEP0111 from restify', () => {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  function cli(args: string[], cwd: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['KEYWARDEN_CONFIG', 'PORT', 'NODE_OPTIONS', 'KEYWARDEN_CLI_RESPAWNED']) delete env[k];
    return new Promise((done, reject) => {
      const child = spawn(process.execPath, [join(ROOT, 'bin/keywarden.mjs'), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => done({ code, stdout, stderr }));
    });
  }

  it('keywarden --help and start (which loads restify) print no DEP0111', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'kw-dep0111-'));
    dirs.push(cwd);
    const help = await cli(['--help'], cwd);
    expect(help.code).toBe(0);
    expect(help.stdout + help.stderr).not.toContain('DEP0111');

    // start loads the bot server (restify) at import; a taken port then stops it before anything serves.
    const blocker = createServer();
    const port = await new Promise<number>((r) => blocker.listen(0, '127.0.0.1', () => r((blocker.address() as { port: number }).port)));
    try {
      writeFileSync(join(cwd, 'keywarden.yaml'), `server:\n  port: ${port}\nsandbox:\n  dataDir: ${JSON.stringify(join(cwd, 'sandbox'))}\n`);
      const start = await cli(['start'], cwd);
      expect(start.code).toBe(2);
      expect(start.stderr).toMatch(/^keywarden start: port \d+/);
      expect(start.stdout + start.stderr).not.toMatch(/DEP0111|DeprecationWarning/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 60_000);
});
