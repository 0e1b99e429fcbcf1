import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

const WRITERS = 50;
const ROUNDS = 4;

/**
 * The worker runs the real store code. Bundling it once (esbuild, which tsx brings) makes 50 threads start in
 * about a second; without esbuild each thread loads TypeScript through tsx, which is correct but much slower.
 */
async function workerEntry(): Promise<URL> {
  try {
    const { build } = await import('esbuild');
    // Inside node_modules so the bundle's `import 'better-sqlite3'` resolves to the project's copy.
    const outfile = fileURLToPath(new URL('../../node_modules/.cache/keywarden-test/race-worker.mjs', import.meta.url));
    await build({
      entryPoints: [fileURLToPath(new URL('./race-worker.ts', import.meta.url))],
      outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', external: ['better-sqlite3'], logLevel: 'silent',
    });
    return pathToFileURL(outfile);
  } catch {
    return new URL('./race-worker-boot.mjs', import.meta.url);
  }
}

type Reply = { ready?: number; armed?: number; round?: number; writer?: number; won?: boolean; version?: number; error?: string; closed?: boolean };

describe('compareAndSet under 50 concurrent writers (separate threads, separate connections)', () => {
  let dir: string;
  let store: Store;
  const workers: Worker[] = [];
  const startLine = new SharedArrayBuffer(4);

  function nextReplies(count: number, pick: (r: Reply) => boolean): Promise<Reply[]> {
    return new Promise((resolve, reject) => {
      const got: Reply[] = [];
      const listeners = workers.map((w) => {
        const onMessage = (r: Reply) => {
          if (!pick(r)) return;
          got.push(r);
          if (got.length === count) {
            workers.forEach((wk, i) => wk.off('message', listeners[i]!.onMessage));
            resolve(got);
          }
        };
        const onError = (err: Error) => reject(err);
        w.on('message', onMessage);
        w.once('error', onError);
        return { onMessage };
      });
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-race-'));
    const dbPath = join(dir, 'race.db');
    store = openSqliteStore({ path: dbPath });
    store.insert('jobs', 'race', { writer: -1, round: 0 });
    const entry = await workerEntry();
    for (let writer = 0; writer < WRITERS; writer++) {
      workers.push(new Worker(entry, { workerData: { dbPath, writer, startLine } }));
    }
    await nextReplies(WRITERS, (r) => r.ready !== undefined);
  }, 120_000);

  afterAll(async () => {
    const closing = nextReplies(workers.length, (r) => r.closed === true).catch(() => undefined);
    workers.forEach((w) => w.postMessage('close'));
    await closing;
    await Promise.all(workers.map((w) => w.terminate()));
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets exactly one writer win each version', async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const expectedVersion = round; // the record starts at version 1
      const armed = nextReplies(WRITERS, (r) => r.armed === round);
      workers.forEach((w) => w.postMessage({ round, expectedVersion }));
      await armed;
      const results = nextReplies(WRITERS, (r) => r.round === round);
      // Everyone is waiting at the start line: release them together.
      Atomics.store(new Int32Array(startLine), 0, round);
      Atomics.notify(new Int32Array(startLine), 0);
      const replies = await results;

      expect(replies.filter((r) => r.error)).toEqual([]);
      const winners = replies.filter((r) => r.won);
      expect(winners).toHaveLength(1);
      expect(winners[0]!.version).toBe(expectedVersion + 1);
      const record = store.get<{ writer: number; round: number }>('jobs', 'race')!;
      expect(record.version).toBe(expectedVersion + 1);
      expect(record.value).toEqual({ writer: winners[0]!.writer, round });
    }
  }, 120_000);
});
