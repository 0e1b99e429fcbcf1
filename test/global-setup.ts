// Vitest globalSetup: the HTTPS emulators need the sandbox CA; `npm test` points NODE_EXTRA_CA_CERTS at it.
import { ensureSandboxTls, TEST_CA_DIR } from '../src/sandbox/tls.js';

export default function setup(): void {
  // Idempotent: creates .test-ca/ once, reuses it afterwards.
  ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR);
}
