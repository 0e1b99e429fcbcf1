import { systemClock } from '../../../src/clock.js';
import { count, ms } from '../format.js';
import { measurePhase, percentile, type RssSampler } from '../measure.js';
import { BOT, startBotRig, TENANT_ID, type BotRig } from '../rig.js';
import type { BenchRow, ScenarioResult } from '../types.js';

/**
 * 6. `/help` round trips over HTTP: POST /api/messages (anonymous sandbox mode) → turn → help card posted to the
 * Bot Connector emulator → HTTP 200. Latency is the client's view of one POST, reply included.
 */

const N = 200;
const PARALLEL = 20;
const WARMUP = 10;
const USERS = 20;

let seq = 0;
function helpActivity(serviceUrl: string, user: number): Record<string, unknown> {
  seq += 1;
  const from = { id: `29:bench-user-${user}`, name: `Bench User ${user}`, aadObjectId: `aaaaaaaa-0000-0000-0000-${String(user).padStart(12, '0')}` };
  return {
    type: 'message', id: String(1_700_000_000_000 + seq), channelId: 'msteams', serviceUrl, from, recipient: { ...BOT },
    conversation: { id: `a:personal-${from.id}`, conversationType: 'personal', tenantId: TENANT_ID },
    channelData: { tenant: { id: TENANT_ID } }, locale: 'en-US', text: '/help', textFormat: 'plain', entities: [],
    timestamp: new Date().toISOString(),
  };
}

/** One /help turn over HTTP (reply included); its latency in ms. */
export async function postHelp(rig: BotRig, user: number): Promise<number> {
  const body = JSON.stringify(helpActivity(rig.connector.serviceUrl, user));
  const t0 = performance.now();
  const res = await fetch(`${rig.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  const elapsed = performance.now() - t0;
  if (res.status !== 200) throw new Error(`/help answered HTTP ${res.status}`);
  return elapsed;
}

async function sequential(rig: BotRig, n: number): Promise<{ lat: number[]; totalMs: number }> {
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) lat.push(await postHelp(rig, i % USERS));
  return { lat, totalMs: performance.now() - t0 };
}

async function concurrent(rig: BotRig, n: number, parallel: number): Promise<{ lat: number[]; totalMs: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      const i = next++;
      lat.push(await postHelp(rig, i % USERS));
    }
  }));
  return { lat, totalMs: performance.now() - t0 };
}

export async function runBotScenario(sampler: RssSampler): Promise<ScenarioResult> {
  let rig: BotRig | undefined;
  try {
    rig = await startBotRig({ clock: systemClock });
    const r = rig;
    await sequential(r, WARMUP);
    const before = r.connector.activities.length;
    const seqRun = await measurePhase(sampler, () => sequential(r, N));
    const parRun = await measurePhase(sampler, () => concurrent(r, N, PARALLEL));
    const replies = r.connector.activities.length - before;
    if (replies !== 2 * N) throw new Error(`expected ${2 * N} help cards at the connector, got ${replies}`);
    const helpBytes = Buffer.byteLength(JSON.stringify(r.connector.activities.at(-1)?.activity ?? {}));

    const row = (label: string, p: typeof seqRun, runs: number): BenchRow => ({
      label, runs, wallMs: percentile(p.value.lat, 50),
      timings: { p50: percentile(p.value.lat, 50), p95: percentile(p.value.lat, 95), p99: percentile(p.value.lat, 99), max: Math.max(...p.value.lat), totalMs: p.value.totalMs },
      throughput: { value: runs / (p.value.totalMs / 1000), unit: 'req/s' }, memory: p.memory,
    });
    const line = (name: string, p: typeof seqRun) =>
      `${name}: ${count(N)} requests in ${ms(p.value.totalMs)} → ${(N / (p.value.totalMs / 1000)).toFixed(0)} req/s; latency p50 ${ms(percentile(p.value.lat, 50))}, p95 ${ms(percentile(p.value.lat, 95))}, p99 ${ms(percentile(p.value.lat, 99))}, max ${ms(Math.max(...p.value.lat))}`;
    return {
      id: 'bot', title: '/help round trips over HTTP (anonymous sandbox bot + Bot Connector emulator)',
      rows: [row(`6a /help × ${N} sequential (wall = p50)`, seqRun, N), row(`6b /help × ${N}, ${PARALLEL} at a time (wall = p50)`, parRun, N)],
      details: [
        line('sequential', seqRun),
        line(`${PARALLEL} concurrent`, parRun),
        `each request: restify → TeamsAdapter (anonymous) → teams-ai turn → /help card (message ${(helpBytes / 1024).toFixed(1)} KB) POSTed to the connector emulator (same process) → 200; ${USERS} users in personal chats; ${count(r.logLines())} log lines at level info; ${WARMUP} warm-up requests not counted`,
      ],
      data: { n: N, parallel: PARALLEL, sequential: { totalMs: seqRun.value.totalMs, latencies: summary(seqRun.value.lat) }, concurrent: { totalMs: parRun.value.totalMs, latencies: summary(parRun.value.lat) } },
    };
  } finally {
    await rig?.close();
  }
}

function summary(lat: number[]) {
  return { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), max: Math.max(...lat) };
}
