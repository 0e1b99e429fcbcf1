/**
 * A transpiled copy of bot/, src/, test/ and scripts/ in .test-build/<pid>/, for processes that should run as production
 * does (compiled JavaScript, not TypeScript through tsx's loader hooks, which cost three times the CPU and keep
 * sources and maps in memory): the test suite's child processes and the bench's. esbuild transpiles file by file (no
 * bundling, no type check: `npm run typecheck` does that), so the layout, the relative imports and `import.meta.url`
 * paths stay as in the sources; cards/, docs/ and appPackage/ are linked in.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
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

/** Builds into .test-build/<pid>/ (one per process that asks, so runs side by side never share one) and returns it. */
export async function transpileCopy(): Promise<string> {
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

