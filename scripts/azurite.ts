import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/**
 * Azurite (tables + blobs) in memory, for a test file or the bench's `--store tables`. azurite-table reports port 0 as "0", so both services get a
 * port picked here first (bound and released on 127.0.0.1).
 */

export interface Azurite {
  connectionString: string;
  tableEndpoint: string;
  blobEndpoint: string;
  /** The table and blob services' processes (the bench reads their CPU). */
  pids: number[];
  stop(): Promise<void>;
}

const ACCOUNT = 'devstoreaccount1';
// Azurite's published development key (README), not a secret.
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
// From azurite's own package (not a path relative to this file: the bench and test children run a transpiled copy).
const require = createRequire(import.meta.url);
const PACKAGE = require.resolve('azurite/package.json');
const BINS = (require(PACKAGE) as { bin: Record<string, string> }).bin;

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
  const child = spawn(process.execPath, [join(dirname(PACKAGE), BINS[bin]!), '--inMemoryPersistence', '--silent', '--skipApiVersionCheck', '--disableTelemetry', '--loose', portFlag, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let started = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${bin} did not start within 20 s: ${out}`)); }, 20_000);
    // Only the start-up text is kept: output after it is read and dropped, never gathered for the process's life.
    const take = (d: Buffer): void => {
      if (started) return;
      out += d.toString();
      if (/successfully (started|listens)/.test(out)) {
        started = true;
        out = '';
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.once('exit', (code) => { clearTimeout(timer); if (!started) reject(new Error(`${bin} exited with ${code}: ${out}`)); });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** A port picked here can be taken by another process before azurite binds it: pick another and start again. */
async function launchOnFreePort(bin: 'azurite-table' | 'azurite-blob', portFlag: string): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { child: await launch(bin, portFlag, port), port };
    } catch (err) {
      if (attempt >= 5 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

export async function startAzurite(): Promise<Azurite> {
  const started = await Promise.allSettled([launchOnFreePort('azurite-table', '--tablePort'), launchOnFreePort('azurite-blob', '--blobPort')]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    // Neither service is left running when the other could not start.
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? stopChild(s.value.child) : undefined)));
    throw failed.reason;
  }
  const [{ child: table, port: tablePort }, { child: blob, port: blobPort }] = started.map((s) => (s as PromiseFulfilledResult<{ child: ChildProcess; port: number }>).value) as [{ child: ChildProcess; port: number }, { child: ChildProcess; port: number }];
  const tableEndpoint = `http://127.0.0.1:${tablePort}/${ACCOUNT}`;
  const blobEndpoint = `http://127.0.0.1:${blobPort}/${ACCOUNT}`;
  return {
    tableEndpoint, blobEndpoint,
    pids: [table.pid!, blob.pid!],
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=${blobEndpoint};TableEndpoint=${tableEndpoint};`,
    async stop() {
      await Promise.all([stopChild(table), stopChild(blob)]);
    },
  };
}
