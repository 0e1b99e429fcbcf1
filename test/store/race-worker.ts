// One racing writer: its own connection to the shared file, the product's compareAndSet, nothing else.
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteStore } from '../../src/store/sqlite.js';

interface RaceData {
  dbPath: string;
  writer: number;
  /** Shared start line: the main thread stores the round number here and wakes everyone at once. */
  startLine: SharedArrayBuffer;
}

const { dbPath, writer, startLine } = workerData as RaceData;
const start = new Int32Array(startLine);
const store = openSqliteStore({ path: dbPath });

parentPort!.on('message', (msg: { round: number; expectedVersion: number } | 'close') => {
  if (msg === 'close') {
    store.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  parentPort!.postMessage({ armed: msg.round, writer });
  while (Atomics.load(start, 0) < msg.round) Atomics.wait(start, 0, Atomics.load(start, 0));
  try {
    const won = store.compareAndSet('jobs', 'race', msg.expectedVersion, { writer, round: msg.round });
    parentPort!.postMessage({ round: msg.round, writer, won: Boolean(won), version: won?.version });
  } catch (err) {
    parentPort!.postMessage({ round: msg.round, writer, error: (err as Error).message });
  }
});
parentPort!.postMessage({ ready: writer });
