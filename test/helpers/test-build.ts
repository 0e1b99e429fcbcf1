/**
 * A transpiled copy of bot/, src/ and the test fixtures for the processes tests start. A Keywarden process that loads
 * plain JavaScript costs a third of the CPU of one that compiles TypeScript through tsx's loader hooks
 * (`doctor --sandbox`: 1.0 s against 3.0 s), and the suite starts a few hundred of them on a 2-core CI machine.
 * esbuild transpiles file by file (no bundling, no type check: `npm run typecheck` does that), so the layout, the
 * relative imports and `import.meta.url` paths stay as in the sources; cards/, docs/ and appPackage/ are linked in.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { transpileCopy } from '../../scripts/transpile.js';

/** Where bin/keywarden.mjs looks for a build to run instead of dist/ (set by the global setup for every test). */
export const BUILD_DIR_ENV = 'KEYWARDEN_BUILD_DIR';

const ROOT = join(import.meta.dirname, '..', '..');

/** Builds into .test-build/<pid>/ (scripts/transpile.ts) and returns it. */
export const buildForTests = transpileCopy;

/**
 * `node` arguments that run one of our TypeScript entry points (path from the repository root): its transpiled copy
 * when the global setup made one, else the source through tsx.
 */
export function nodeEntry(source: string): string[] {
  const dir = process.env[BUILD_DIR_ENV];
  const built = dir ? join(dir, source.replace(/\.ts$/, '.js')) : undefined;
  return built && existsSync(built) ? [built] : ['--import', 'tsx', join(ROOT, source)];
}
