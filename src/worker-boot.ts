import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Starts a worker thread on a module of ours, from sources (tests, `npm start`: through tsx) or from the build. */

// Eval'd CommonJS boot: registers tsx first when the entry is TypeScript, then loads the entry.
const BOOT = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.entry.endsWith('.ts')) { const { register } = await import('tsx/esm/api'); register(); }
  await import(workerData.entry);
})().catch((err) => { console.error('keywarden worker failed to start:', err); process.exit(1); });
`;

export function startWorker(entry: URL, options: Omit<WorkerOptions, 'eval' | 'workerData'> & { workerData: Record<string, unknown> }): Worker {
  return new Worker(BOOT, { ...options, eval: true, workerData: { ...options.workerData, entry: entry.href } });
}
