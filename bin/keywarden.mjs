#!/usr/bin/env node
// Runs the built CLI (dist/) when present, else the TypeScript sources through tsx (a dev dependency).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('../', import.meta.url);
// KEYWARDEN_BUILD_DIR: a build elsewhere than dist/ (the test suite runs its own transpiled copy this way).
const buildDir = process.env.KEYWARDEN_BUILD_DIR;
const built = buildDir ? pathToFileURL(join(buildDir, 'src/cli/main.js')) : new URL('dist/src/cli/main.js', root);
const source = new URL('src/cli/main.ts', root);

let entry = built;
if (!existsSync(built)) {
  try {
    // Same effect as `node --import tsx`, without a second process to relay signals through.
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    process.stderr.write('keywarden: dist/ is not built and tsx is not installed — run `npm run build` (or `npm ci` for a dev install)\n');
    process.exit(1);
  }
  entry = source;
}
const { runCli } = await import(entry.href);
await runCli(process.argv.slice(2));
