import { systemClock } from '../../../src/clock.js';
import { productModules } from '../../../src/modules.js';
import { JIT_FACTORY_PRINCIPAL_ID, KEYWARDEN_API_URI } from '../../../src/sandbox/datafactory/jit-pipeline.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../../src/sandbox/estate.js';
import { ms } from '../format.js';
import { measurePhase, percentile, type RssSampler } from '../measure.js';
import { startBotRig, SUPPORT_CHANNEL, TEAM, type BotRig } from '../rig.js';
import type { BenchRow, ScenarioResult } from '../types.js';

/**
 * 7. Pipeline JIT grant latency: POST /api/jit (auto-approved by the caller's standing approval) → poll GET /api/jit/{id}
 * every 10 ms until ready → both Key Vault secrets readable with the factory's managed-identity token. This is what a
 * Data Factory run waits for. Release is timed too (POST …/release → token revoked, pool deleted, secrets disabled).
 */

const N = 30;
const WARMUP = 2;

interface Timed {
  grantMs: number;
  releaseMs: number;
}

async function oneGrant(rig: BotRig, clouds: SandboxClouds, run: string): Promise<Timed> {
  const api = (method: string, path: string, body?: unknown) => fetch(`${rig.url}${path}`, {
    method, headers: { authorization: `Bearer ${clouds.handles.entra.issueManagedIdentityToken(JIT_FACTORY_PRINCIPAL_ID, KEYWARDEN_API_URI)}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
  const names = { token: `adf-jit-${run}-token`, pool: `adf-jit-${run}-pool` };
  const t0 = performance.now();
  const asked = await api('POST', '/api/jit', {
    workspace: 'ws-prod', vault: 'kv-prod', tokenSecretName: names.token, poolSecretName: names.pool,
    pool: { nodeType: 'Standard_DS3_v2', maxCapacity: 2 }, durationMinutes: 60, pipelineRunId: run,
  });
  if (asked.status !== 202 && asked.status !== 200) throw new Error(`POST /api/jit answered ${asked.status}: ${JSON.stringify(asked.body)}`);
  const id = String(asked.body.id);
  for (let status = String(asked.body.status); status !== 'ready'; ) {
    if (!['pending', 'creating'].includes(status)) throw new Error(`grant ${id} became ${status}`);
    await new Promise((r) => setTimeout(r, 10));
    status = String((await api('GET', `/api/jit/${id}`)).body.status);
  }
  const kvToken = clouds.handles.entra.issueManagedIdentityToken(JIT_FACTORY_PRINCIPAL_ID, 'https://vault.azure.net');
  for (const name of [names.token, names.pool]) {
    const res = await fetch(`${clouds.urls.vaults['kv-prod']}/secrets/${name}?api-version=7.4`, { headers: { authorization: `Bearer ${kvToken}` } });
    if (!res.ok) throw new Error(`secret ${name} not readable: ${res.status}`);
    await res.arrayBuffer();
  }
  const grantMs = performance.now() - t0;
  const t1 = performance.now();
  const released = await api('POST', `/api/jit/${id}/release`);
  if (released.body.status !== 'released') throw new Error(`release answered ${released.status} ${String(released.body.status)}`);
  return { grantMs, releaseMs: performance.now() - t1 };
}

export async function runPipelineScenario(sampler: RssSampler): Promise<ScenarioResult> {
  const clouds = await startSandboxClouds({ clock: systemClock });
  let rig: BotRig | undefined;
  try {
    rig = await startBotRig({
      clock: systemClock, pacingMs: 0,
      config: (serviceUrl) => withSandboxConfig({
        scanner: { scanOnStart: false, schedule: '0 0 1 1 *' },
        teams: { channels: [{ name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id }] },
      }, clouds.config),
      modules: (k) => productModules({ retry: { maxRetries: 1, baseDelayMs: 10 } }).map((factory) => factory(k)),
    });
    const r = rig;
    for (let i = 0; i < WARMUP; i++) await oneGrant(r, clouds, `warmup-${i}`);
    const phase = await measurePhase(sampler, async () => {
      const out: Timed[] = [];
      for (let i = 0; i < N; i++) out.push(await oneGrant(r, clouds, `bench-${i}`));
      return out;
    });
    const grant = phase.value.map((t) => t.grantMs);
    const release = phase.value.map((t) => t.releaseMs);
    const row = (label: string, lat: number[]): BenchRow => ({
      label, runs: N, wallMs: percentile(lat, 50),
      timings: { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), max: Math.max(...lat) },
      memory: phase.memory,
    });
    return {
      id: 'pipeline', title: 'Pipeline JIT API: auto-approved grant → secrets readable, and release (sandbox clouds over HTTPS)',
      rows: [row(`7a grant × ${N}: POST /api/jit → ready → both secrets readable (wall = p50)`, grant), row(`7b release × ${N}: token revoked, pool deleted, secrets disabled (wall = p50)`, release)],
      details: [
        `grant latency p50 ${ms(percentile(grant, 50))}, p99 ${ms(percentile(grant, 99))}, max ${ms(Math.max(...grant))} — Entra token check (jose, cached keys), standing approval, card posted to the support channel, OBO token + pool + 2 Key Vault writes + token test, 10 ms polling`,
        `release latency p50 ${ms(percentile(release, 50))}, p99 ${ms(percentile(release, 99))}, max ${ms(Math.max(...release))}; ${WARMUP} warm-up grants not counted`,
      ],
      data: { n: N, grant: { p50: percentile(grant, 50), p95: percentile(grant, 95), p99: percentile(grant, 99), max: Math.max(...grant) }, release: { p50: percentile(release, 50), p99: percentile(release, 99) } },
    };
  } finally {
    await rig?.close();
    await clouds.close();
  }
}
