import { systemClock } from '../../src/clock.js';
import { rateLimitFor } from '../../src/sandbox/rate-limits.js';
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

let cpuSince = process.cpuUsage();

process.on('message', (raw) => {
  const msg = raw as EstateRequest;
  if (msg.type === 'latency') {
    for (const s of estate.servers.values()) s.setLatency(msg.ms);
    send({ id: msg.id, type: 'ok' });
  } else if (msg.type === 'rate-limits') {
    for (const [name, s] of estate.servers) s.setRateLimit(msg.on ? rateLimitFor(name) : undefined);
    send({ id: msg.id, type: 'ok' });
  } else if (msg.type === 'change') {
    send({ id: msg.id, type: 'changed', changed: estate.change(msg.fraction) });
  } else if (msg.type === 'requests') {
    const perServer: Record<string, number> = {};
    const load: Record<string, { maxInFlight: number; throttled: number; connections: number; chain: number }> = {};
    let total = 0;
    // The emulators' own CPU since the last clear: on a small machine they share its cores with Keywarden.
    const cpu = process.cpuUsage(cpuSince);
    if (msg.clear) cpuSince = process.cpuUsage();
    for (const [name, s] of estate.servers) {
      perServer[name] = s.requests.length;
      total += s.requests.length;
      load[name] = { maxInFlight: s.load.maxInFlight, throttled: s.load.throttled, connections: s.load.connections, chain: pageChain(s.requests) };
      if (msg.clear) {
        s.clearRequests();
        s.resetLoad();
      }
    }
    send({ id: msg.id, type: 'requests', total, perServer, load, cpuMs: (cpu.user + cpu.system) / 1000 });
  } else if (msg.type === 'close') {
    send({ id: msg.id, type: 'ok' });
    void shutdown(0);
  }
});

/** The longest chain of list pages: a listing's first page, then one request per `$skiptoken` link to the same path. */
function pageChain(requests: ReadonlyArray<{ path: string; query: string }>): number {
  if (requests.length === 0) return 0;
  const follows = new Map<string, number>();
  for (const r of requests) if (/[?&]\$skiptoken=/i.test(r.query)) follows.set(r.path, (follows.get(r.path) ?? 0) + 1);
  return 1 + Math.max(0, ...follows.values());
}

const urls = Object.fromEntries([...estate.servers].map(([name, s]) => [name, s.url]));
send({ type: 'ready', config: estate.config, counts: estate.counts, seedMs, rssBytes: process.memoryUsage.rss(), urls });
