import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SandboxConfigFragment } from '../../src/sandbox/estate.js';
import type { EstateCounts, EstateSizes } from './estate.js';

/** The parent side of estate-server.ts: start it, wait for "ready", set latency, count requests, close. */

export type EstateCall =
  | { type: 'latency'; ms: number }
  | { type: 'rate-limits'; on: boolean }
  | { type: 'change'; fraction: number }
  | { type: 'requests'; clear: boolean }
  | { type: 'close' };

/** What one emulator server saw since the last clear. */
/** `chain`: the longest run of dependent list pages one listing needed (each page's link comes from the one before). */
export interface ServerLoad { maxInFlight: number; throttled: number; connections: number; chain: number }
export type EstateRequest = EstateCall & { id: number };

export type EstateReply =
  | { type: 'ready'; config: SandboxConfigFragment; counts: EstateCounts; seedMs: number; rssBytes: number; urls: Record<string, string> }
  | { id: number; type: 'ok' }
  | { id: number; type: 'changed'; changed: number }
  | { id: number; type: 'requests'; total: number; perServer: Record<string, number>; load: Record<string, ServerLoad>; cpuMs: number };

export interface RemoteEstate {
  config: SandboxConfigFragment;
  counts: EstateCounts;
  seedMs: number;
  /** The emulator process's RSS once seeded. */
  rssBytes: number;
  /** Each server's base URL, by name ("keyvault:kv-prod", "databricks:ws-dev", "graph", "arm", "entra-authority"). */
  urls: Record<string, string>;
  setLatency(ms: number): Promise<void>;
  /** Turns each API's published rate limit on or off in every emulator (429 + Retry-After past it). */
  setRateLimits(on: boolean): Promise<void>;
  /** Changes `fraction` of the estate's credentials (rotations); returns how many changed. */
  change(fraction: number): Promise<number>;
  /** Requests the emulators answered since the last clear, and their load (in-flight peak, 429s, connections). */
  requests(clear?: boolean): Promise<{ total: number; perServer: Record<string, number>; load: Record<string, ServerLoad>; cpuMs: number }>;
  close(): Promise<void>;
}

const SERVER = fileURLToPath(new URL(`./estate-server.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

export async function startRemoteEstate(sizes: Partial<EstateSizes> = {}, timeoutMs = 600_000): Promise<RemoteEstate> {
  const child: ChildProcess = fork(SERVER, [JSON.stringify(sizes)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let nextId = 1;
  const waiting = new Map<number, (reply: EstateReply) => void>();
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const ready = await new Promise<Extract<EstateReply, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the bench estate did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the bench estate process exited early (code ${code})`)); });
    child.on('message', (raw) => {
      const reply = raw as EstateReply;
      if (reply.type === 'ready') {
        clearTimeout(timer);
        resolve(reply);
      } else if ('id' in reply) {
        waiting.get(reply.id)?.(reply);
        waiting.delete(reply.id);
      }
    });
  }).catch((err: unknown) => {
    child.kill();
    throw err;
  });

  const call = (request: EstateCall): Promise<EstateReply> => new Promise((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    child.send({ ...request, id });
  });

  return {
    config: ready.config, counts: ready.counts, seedMs: ready.seedMs, rssBytes: ready.rssBytes, urls: ready.urls,
    async setLatency(ms) { await call({ type: 'latency', ms }); },
    async setRateLimits(on) { await call({ type: 'rate-limits', on }); },
    async change(fraction) {
      const reply = await call({ type: 'change', fraction });
      if (reply.type !== 'changed') throw new Error('unexpected reply from the bench estate');
      return reply.changed;
    },
    async requests(clear = true) {
      const reply = await call({ type: 'requests', clear });
      if (reply.type !== 'requests') throw new Error('unexpected reply from the bench estate');
      return { total: reply.total, perServer: reply.perServer, load: reply.load, cpuMs: reply.cpuMs };
    },
    async close() {
      if (child.exitCode !== null) return;
      await Promise.race([call({ type: 'close' }), exited]);
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
