// Runs a command with NODE_EXTRA_CA_CERTS pointing at the sandbox CA (Node reads it only at process start).
import { spawn } from 'node:child_process';
import { ensureSandboxTls, TEST_CA_DIR } from '../src/sandbox/tls.js';

const tls = ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR);
const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: tsx scripts/with-ca.ts <command> [args...]');
  process.exit(2);
}
const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caPath, KEYWARDEN_CA_DIR: process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR }, shell: false });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
