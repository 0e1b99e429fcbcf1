import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** A local CA and a server certificate for localhost / 127.0.0.1, used by the HTTPS emulators. */
export interface SandboxTls {
  caPath: string;
  ca: string;
  cert: string;
  key: string;
}

/** Creates (once) a CA and a localhost certificate with openssl; the CA is what NODE_EXTRA_CA_CERTS must point at. */
export function ensureSandboxTls(dir: string): SandboxTls {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const caKey = join(root, 'ca.key');
  const caPath = join(root, 'ca.pem');
  const key = join(root, 'server.key');
  const cert = join(root, 'server.pem');
  if (!existsSync(caPath) || !existsSync(cert) || !existsSync(key)) {
    const ext = join(root, 'server.ext');
    writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
    const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=Keywarden Sandbox CA',
      '-keyout', caKey, '-out', caPath, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', key, '-out', join(root, 'server.csr'));
    run('x509', '-req', '-in', join(root, 'server.csr'), '-CA', caPath, '-CAkey', caKey, '-CAcreateserial',
      '-days', '3650', '-out', cert, '-extfile', ext);
  }
  return { caPath, ca: readFileSync(caPath, 'utf8'), cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

export const TEST_CA_DIR = '.test-ca';
