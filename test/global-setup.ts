// Vitest globalSetup: the HTTPS emulators need the sandbox CA; `npm test` points NODE_EXTRA_CA_CERTS at it.
import { rmSync } from 'node:fs';
import { ensureSandboxTls, TEST_CA_DIR } from '../src/sandbox/tls.js';
import { BUILD_DIR_ENV, buildForTests } from './helpers/test-build.js';

export default async function setup(): Promise<() => void> {
  // Idempotent: creates .test-ca/ once, reuses it afterwards.
  ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR);
  // Processes the tests start run a transpiled copy (test/helpers/test-build.ts); the workers inherit the variable.
  const dir = await buildForTests();
  process.env[BUILD_DIR_ENV] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
