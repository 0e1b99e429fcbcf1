/**
 * A transpiled copy of bot/, src/ and the test fixtures for the processes tests start. A Keywarden process that loads
 * plain JavaScript costs a third of the CPU of one that compiles TypeScript through tsx's loader hooks
 * (`doctor --sandbox`: 1.0 s against 3.0 s), and the suite starts a few hundred of them on a 2-core CI machine.
 * esbuild transpiles file by file (no bundling, no type check: `npm run typecheck` does that), so the layout, the
 * relative imports and `import.meta.url` paths stay as in the sources; cards/, docs/ and appPackage/ are linked in.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';

/** Where bin/keywarden.mjs looks for a build to run instead of dist/ (set by the global setup for every test). */
export const BUILD_DIR_ENV = 'KEYWARDEN_BUILD_DIR';

const ROOT = join(import.meta.dirname, '..', '..');
const TREES = ['bot', 'src', 'test', 'scripts'];
const LINKED = ['cards', 'docs', 'appPackage'];

function walk(dir: string, out: string[]): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Builds into .test-build/<pid>/ (one per vitest run, so runs side by side never share one) and returns it. */
export async function buildForTests(): Promise<string> {
  const base = join(ROOT, '.test-build');
  mkdirSync(base, { recursive: true });
  for (const old of readdirSync(base)) if (!alive(Number(old))) rmSync(join(base, old), { recursive: true, force: true });
  const out = join(base, String(process.pid));
  const files = TREES.flatMap((tree) => walk(join(ROOT, tree), []));
  const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'));
  await build({ entryPoints: sources, outdir: out, outbase: ROOT, bundle: false, format: 'esm', platform: 'node', target: 'node20', logLevel: 'silent' });
  // Data files beside the sources (JSON fixtures, templates) are read from where the modules run.
  for (const file of files.filter((f) => !f.endsWith('.ts'))) {
    const target = join(out, relative(ROOT, file));
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) symlinkSync(file, target);
  }
  for (const dir of LINKED) symlinkSync(join(ROOT, dir), join(out, dir));
  return out;
}

/**
 * `node` arguments that run one of our TypeScript entry points (path from the repository root): its transpiled copy
 * when the global setup made one, else the source through tsx.
 */
export function nodeEntry(source: string): string[] {
  const dir = process.env[BUILD_DIR_ENV];
  const built = dir ? join(dir, source.replace(/\.ts$/, '.js')) : undefined;
  return built && existsSync(built) ? [built] : ['--import', 'tsx', join(ROOT, source)];
}
