import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, type LogLevel } from '../../logging/logger.js';
import { redactText, registerSecret } from '../../logging/redact.js';
import { recordingFetch, recordingKeyVaultPolicy } from '../../observability/calls.js';
import { fenceAwareStore } from '../../store/fenced.js';
import { openStoreAt } from '../../store/open-address.js';
import { inlineScanEngine } from '../engine.js';
import { createSourceRunner } from '../run-sources.js';
import { buildInventorySources } from '../estate-sources.js';
import { callBatches, carriedClock } from './thread-kit.js';
import type { FromScanThread, ScanThreadData, ToScanThread } from './protocol.js';
import { threadTokens } from './tokens.js';
import { fetchThreadCount } from './fetch-protocol.js';
import { createFetchPool } from './fetch-pool.js';

/**
 * The scan thread: the inventory sources and the streamed scan (correlate, policy, diff, rows) on a thread of their own,
 * so the bot's event loop answers clicks while a scan runs. It keeps its sources between scans (tokens, connections,
 * Key Vault version lists) and writes the rows through its own connection to the bot's store.
 */

const port = parentPort!;
const data = workerData as ScanThreadData;
const send = (message: FromScanThread) => port.postMessage(message);

for (const secret of data.secrets) registerSecret(secret);

// The bot's clock, carried over at every scan and moving with real time in between.
const carried = carriedClock(data.now);
const { clock } = carried;

const logger = createLogger({ level: data.logLevel as LogLevel, destination: { write: (line: string) => send({ type: 'log', line }) } });

const { record, flush: flushCalls } = callBatches((calls) => send({ type: 'calls', calls }));

const { config } = data;
/** Set when the replica is fenced: the store refuses the scan's writes from then on. */
let fencedBy: string | undefined;
// Tokens come from the bot's credential over the port: the thread never loads @azure/identity or MSAL.
const tokens = threadTokens(send);
const messageOf = (err: unknown): string => redactText(typeof (err as Error)?.message === 'string' ? (err as Error).message : String(err));

function open() {
  try {
    const { sources } = buildInventorySources(config, {
      clock, retry: data.retry, credential: tokens.credential,
      instrument: { fetchFor: (estate) => recordingFetch(record, estate), keyVaultPolicy: recordingKeyVaultPolicy(record) as never },
    });
    // Its own connection to the bot's store, refusing writes once the replica is fenced (as the core's store does).
    const store = fenceAwareStore(openStoreAt(data.address, { clock }), { fencedBy: () => fencedBy, logger });
    const threads = fetchThreadCount(config);
    if (threads === 0) return { sources, store };
    // The sources' calls and parsing run on fetch threads; this thread keeps correlate, policy, diff and the rows.
    const pool = createFetchPool({
      config, threads, secrets: data.secrets, retry: data.retry, clock, credential: tokens.credential,
      onCalls: (list) => send({ type: 'calls', calls: list }), log: logger.child({ component: 'scanner' }),
    });
    return { sources: pool.sources(sources), store, pool };
  } catch (err) {
    // Said to the bot before the thread ends, so the scan's error names the cause (a moved store file, a bad config).
    send({ type: 'broken', message: messageOf(err) });
    port.close();
    return undefined;
  }
}

const opened = open();
let stopping = new AbortController();
let running: Promise<void> | undefined;

async function scan({ sources, store }: NonNullable<typeof opened>, message: Extract<ToScanThread, { type: 'scan' }>): Promise<void> {
  carried.reset(message.now);
  if (stopping.signal.aborted) stopping = new AbortController();
  const runner = createSourceRunner({ timeoutMs: data.sourceTimeoutMs, stopping: stopping.signal, log: logger.child({ component: 'scanner' }) });
  const engine = inlineScanEngine({ sources, config, rows: store.scanRows!, now: clock.now, runner });
  try {
    const outcome = await engine.run({ scanId: message.scanId, ordinal: message.ordinal });
    flushCalls();
    send({ type: 'done', scanId: message.scanId, outcome });
  } catch (err) {
    flushCalls();
    const code = (err as { code?: unknown })?.code;
    send({ type: 'failed', scanId: message.scanId, message: messageOf(err), ...(typeof code === 'string' ? { code } : {}) });
  }
}

if (opened) port.on('message', (message: ToScanThread) => {
  if (message.type === 'token') {
    tokens.answer(message);
  } else if (message.type === 'scan') {
    running = scan(opened, message).finally(() => { running = undefined; });
  } else if (message.type === 'fence') {
    fencedBy = message.reason;
  } else if (message.type === 'abort') {
    stopping.abort();
  } else if (message.type === 'close') {
    stopping.abort();
    void (async () => {
      await running;
      await opened.pool?.close();
      opened.store.close();
      send({ type: 'closed' });
      port.close();
    })();
  }
});

if (opened) send({ type: 'ready' });
