import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Azurite (tables + blobs) in memory for one test file. azurite-table reports port 0 as "0", so both services get a
 * port picked here first (bound and released on 127.0.0.1).
 */

export interface Azurite {
  connectionString: string;
  tableEndpoint: string;
  blobEndpoint: string;
  stop(): Promise<void>;
}

const ACCOUNT = 'devstoreaccount1';
// Azurite's published development key (README), not a secret.
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const BIN = fileURLToPath(new URL('../../node_modules/.bin/', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function launch(bin: 'azurite-table' | 'azurite-blob', portFlag: string, port: number): Promise<ChildProcess> {
  const child = spawn(`${BIN}${bin}`, ['--inMemoryPersistence', '--skipApiVersionCheck', '--disableTelemetry', '--loose', portFlag, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${bin} did not start within 20 s: ${out}`)); }, 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/successfully (started|listens)/.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${bin} exited with ${code}: ${out}`)); });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startAzurite(): Promise<Azurite> {
  const [tablePort, blobPort] = [await freePort(), await freePort()];
  const [table, blob] = await Promise.all([launch('azurite-table', '--tablePort', tablePort), launch('azurite-blob', '--blobPort', blobPort)]);
  const tableEndpoint = `http://127.0.0.1:${tablePort}/${ACCOUNT}`;
  const blobEndpoint = `http://127.0.0.1:${blobPort}/${ACCOUNT}`;
  return {
    tableEndpoint, blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=${blobEndpoint};TableEndpoint=${tableEndpoint};`,
    async stop() {
      await Promise.all([stopChild(table), stopChild(blob)]);
    },
  };
}
