import { setMaxListeners } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import type { Credential } from '../../domain/credential.js';
import { registerSecret } from '../../logging/redact.js';
import { recordingFetch, recordingKeyVaultPolicy } from '../../observability/calls.js';
import { buildInventorySources } from '../estate-sources.js';
import type { InventorySource } from '../run-sources.js';
import { PAGE_WINDOW, type FetchThreadData, type FromFetchThread, type ToFetchThread } from './fetch-protocol.js';
import { callBatches, carriedClock, failureOf } from './thread-kit.js';
import { threadTokens } from './tokens.js';

/**
 * A fetch thread: some of the scan's sources (their calls, the SDKs' parsing) on a thread of their own, their pages
 * posted to the scan thread. It keeps its sources between scans (tokens, connections, Key Vault version lists).
 */

const port = parentPort!;
const data = workerData as FetchThreadData;
const send = (message: FromFetchThread) => port.postMessage(message);

for (const secret of data.secrets) registerSecret(secret);

// The bot's clock, carried over at every scan and moving with real time in between.
const carried = carriedClock(data.now);
const { clock } = carried;

const { record, flush: flushCalls } = callBatches((calls) => send({ type: 'calls', calls }));

// Tokens come from the scan thread, which asks the bot's credential (threadTokens only sends token requests).
const tokens = threadTokens((m) => send(m as FromFetchThread));

function open(): InventorySource[] | undefined {
  try {
    return buildInventorySources(data.config, {
      clock, retry: data.retry, credential: tokens.credential,
      instrument: { fetchFor: (estate) => recordingFetch(record, estate), keyVaultPolicy: recordingKeyVaultPolicy(record) as never },
    }).sources;
  } catch (err) {
    send({ type: 'broken', message: failureOf(err).message });
    port.close();
    return undefined;
  }
}

interface Stream {
  controller: AbortController;
  inFlight: number;
  /** Wakes the source waiting for the scan thread to take a page. */
  wake?: () => void;
}

const streams = new Map<number, Stream>();

async function stream(sources: InventorySource[], message: Extract<ToFetchThread, { type: 'stream' }>): Promise<void> {
  const { id } = message;
  carried.reset(message.now);
  const controller = new AbortController();
  // Every request in flight for this source (a vault's window is 20) follows its signal: not a leak.
  setMaxListeners(0, controller.signal);
  const s: Stream = { controller, inFlight: 0 };
  streams.set(id, s);
  const source = sources[message.source]!;
  const aborted = () => controller.signal.reason as Error;
  const onPage = async (credentials: Credential[]): Promise<void> => {
    if (controller.signal.aborted) throw aborted();
    s.inFlight++;
    send({ type: 'page', id, credentials });
    // Up to PAGE_WINDOW pages wait in the scan thread; the source reads on only when one is taken.
    while (s.inFlight >= PAGE_WINDOW && !controller.signal.aborted) await new Promise<void>((resolve) => { s.wake = resolve; });
    if (controller.signal.aborted) throw aborted();
  };
  try {
    const { signal } = controller;
    let header;
    if (source.stream) header = await source.stream({ signal }, onPage);
    else {
      const { credentials, ...rest } = await source.scan({ signal });
      if (!Array.isArray(credentials)) throw new Error('the provider returned no inventory — this is a bug in the provider');
      await onPage(credentials);
      header = rest;
    }
    flushCalls();
    send({ type: 'end', id, header });
  } catch (err) {
    flushCalls();
    send({ type: 'failed', id, error: failureOf(err) });
  } finally {
    streams.delete(id);
  }
}

const sources = open();
if (sources) port.on('message', (message: ToFetchThread) => {
  if (message.type === 'token') tokens.answer(message);
  else if (message.type === 'stream') void stream(sources, message);
  else if (message.type === 'ack') {
    const s = streams.get(message.id);
    if (s) {
      s.inFlight--;
      s.wake?.();
    }
  } else if (message.type === 'abort') {
    const s = streams.get(message.id);
    if (s) {
      s.controller.abort(Object.assign(new Error('the scan gave this source up'), { name: 'AbortError' }));
      s.wake?.();
    }
  }
});
