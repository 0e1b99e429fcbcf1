import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { startWorker } from '../../worker-boot.js';
import { StoreError } from '../store.js';

/**
 * Calls an async worker from synchronous code: post the request, then sleep on a shared flag (Atomics.wait) until the
 * worker has put its answer on the port, and take it with receiveMessageOnPort. The caller's event loop is blocked for
 * the whole round trip — the price of keeping the Store port synchronous (the follow-up is an async port).
 */

interface Answer { id: number; ok: boolean; value?: unknown; error?: { message: string; code?: string; statusCode?: number } }

export interface BlockingStats {
  calls: number;
  totalMs: number;
  maxMs: number;
}

export class BlockingWorker {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag: Int32Array;
  private nextId = 0;
  private dead: string | undefined;

  constructor(entry: URL, private readonly timeoutMs: number) {
    const { port1, port2 } = new MessageChannel();
    const shared = new SharedArrayBuffer(4);
    this.flag = new Int32Array(shared);
    this.port = port1;
    this.worker = startWorker(entry, { workerData: { port: port2, flag: shared }, transferList: [port2] });
    this.worker.on('error', (err) => { this.dead = err.message; });
    this.worker.on('exit', (code) => { this.dead ??= `exited with code ${code}`; });
    this.worker.unref();
    this.port.unref();
  }

  call<T>(op: string, args: Record<string, unknown>): T {
    if (this.dead) throw new StoreError(`the Azure Tables store worker stopped (${this.dead}) — restart Keywarden`, 'STORE_WORKER_DEAD');
    const id = ++this.nextId;
    const started = performance.now();
    this.port.postMessage({ ...args, id, op });
    const deadline = started + this.timeoutMs;
    for (;;) {
      let got = receiveMessageOnPort(this.port);
      if (!got) {
        // Clear the flag, look once more (the answer may have landed just now), then sleep until the worker sets it.
        Atomics.store(this.flag, 0, 0);
        got = receiveMessageOnPort(this.port);
      }
      if (!got) {
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new StoreError(`the Azure Tables store did not answer "${op}" within ${this.timeoutMs} ms — check the storage endpoint and network`, 'STORE_TIMEOUT');
        }
        Atomics.wait(this.flag, 0, 0, left);
        continue;
      }
      const answer = got.message as Answer;
      if (answer.id !== id) continue; // a late answer to a call that timed out
      if (answer.ok) return answer.value as T;
      const e = answer.error!;
      throw new StoreError(`Azure Tables store ${op} failed: ${e.message.split('\n')[0]}${e.statusCode ? ` (HTTP ${e.statusCode}${e.code ? ` ${e.code}` : ''})` : ''} — check the storage account, its RBAC roles and store.azure in the config`, 'STORE_REQUEST_FAILED');
    }
  }

  close(): Promise<number> {
    this.port.close();
    return this.worker.terminate();
  }
}
