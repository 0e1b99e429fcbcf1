import { systemClock } from '../../src/clock.js';
import { startBenchEstate, type EstateSizes } from './estate.js';
import type { EstateReply, EstateRequest } from './estate-client.js';

/**
 * Child process that hosts the emulated clouds, so the scan under test has the event loop (and a core) to itself,
 * as it would against real Azure. Talks to its parent over IPC; exits when the parent goes away.
 */

const sizes = JSON.parse(process.argv[2] ?? '{}') as Partial<EstateSizes>;
const send = (message: EstateReply) => process.send?.(message);

const t0 = performance.now();
const estate = await startBenchEstate({ clock: systemClock, sizes });
const seedMs = performance.now() - t0;

let closing = false;
const shutdown = async (code: number) => {
  if (closing) return;
  closing = true;
  await estate.close();
  process.exit(code);
};
process.on('disconnect', () => { void shutdown(0); });

process.on('message', (raw) => {
  const msg = raw as EstateRequest;
  if (msg.type === 'latency') {
    for (const s of estate.servers.values()) s.setLatency(msg.ms);
    send({ id: msg.id, type: 'ok' });
  } else if (msg.type === 'requests') {
    const perServer: Record<string, number> = {};
    let total = 0;
    for (const [name, s] of estate.servers) {
      perServer[name] = s.requests.length;
      total += s.requests.length;
      if (msg.clear) s.clearRequests();
    }
    send({ id: msg.id, type: 'requests', total, perServer });
  } else if (msg.type === 'close') {
    send({ id: msg.id, type: 'ok' });
    void shutdown(0);
  }
});

send({ type: 'ready', config: estate.config, counts: estate.counts, seedMs, rssBytes: process.memoryUsage.rss() });
