import { randomUUID } from 'node:crypto';
import { createAlertsModule, type AlertsModule } from '../../../src/alerts/index.js';
import { AdjustableClock, DAY_MS } from '../../../src/clock.js';
import { configSchema } from '../../../src/config/schema.js';
import type { Credential, CredentialKind, Estate } from '../../../src/domain/credential.js';
import { credentialId } from '../../../src/domain/credential.js';
import { evaluatePolicy } from '../../../src/domain/policy.js';
import type { ScanResult } from '../../../src/domain/scan.js';
import { count, kb, ms } from '../format.js';
import { measurePhase, type RssSampler } from '../measure.js';
import { startBotRig, SUPPORT_CHANNEL, TEAM, TENANT_ID, type BotRig } from '../rig.js';
import type { ScenarioResult } from '../types.js';

/**
 * 5. One scan with 500 expiring credentials through the alerts module into the Bot Connector emulator, which
 * answers 429 to any send beyond Teams' per-thread limits. Pacing runs on the injected clock: the bench moves the
 * clock to each next due time instead of sleeping, so the drain duration is clock time, measured not slept.
 */

const START = Date.UTC(2026, 3, 1, 9, 0, 0);
const N = 500;
const ESTATE: Record<CredentialKind, Estate> = { 'databricks-pat': 'databricks', 'keyvault-secret': 'keyvault', 'entra-password': 'entra', 'entra-certificate': 'entra' };

function expiringCredentials(now: number): Credential[] {
  const kinds: CredentialKind[] = ['databricks-pat', 'keyvault-secret', 'entra-password'];
  return Array.from({ length: N }, (_, i) => {
    const kind = kinds[i % 3]!;
    const scope = `scope-${i % 7}`;
    const nativeId = `cred-${String(i).padStart(3, '0')}`;
    const human = kind === 'databricks-pat' && i % 2 === 0;
    return {
      id: credentialId(kind, scope, nativeId), kind, nativeId, name: nativeId,
      where: { estate: ESTATE[kind], scope, label: scope },
      owner: { name: human ? `user${i % 40}@contoso.com` : `sp-${i % 20}`, kind: human ? 'user' : 'service-principal', active: true },
      createdAt: now - 30 * DAY_MS,
      // -0.5 … 13.5 days: every one is inside the card window (14 days).
      expiresAt: now + (((i * 37) % 15) - 0.5) * DAY_MS,
      lastUsedAt: now - DAY_MS, enabled: true, heldIn: [], consumers: [], attributes: {},
    } satisfies Credential;
  });
}

export async function runAlertsScenario(sampler: RssSampler): Promise<ScenarioResult> {
  const clock = new AdjustableClock({ frozenAt: START });
  let alerts!: AlertsModule;
  let rig: BotRig | undefined;
  try {
    rig = await startBotRig({
      clock,
      connector: { enforceRateLimits: true },
      config: (serviceUrl) => ({ teams: { channels: [{ name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl, tenantId: TENANT_ID, teamId: TEAM.id }] } }),
      modules: (keywarden, { config, store, logger }) => {
        alerts = createAlertsModule({ config, store, clock, logger, conversations: keywarden.conversations, idleMs: 60_000 });
        return [alerts];
      },
      // The alerts pace themselves on the clock; real-time gateway pauses would only make the bench sleep.
      pacingMs: 0,
    });
    const { connector } = rig;
    const config = configSchema.parse({});
    const credentials = expiringCredentials(START);
    const findings = evaluatePolicy({ credentials, policy: config.policy, now: START });
    const scan: ScanResult = { id: `scan-${randomUUID()}`, trigger: 'schedule', startedAt: START, finishedAt: START, credentials, findings, errors: [], changes: { added: [], removed: [], changed: [] } };

    const enqueue = await measurePhase(sampler, () => alerts.onScan(scan));
    const outcome = enqueue.value;
    const queued = rig.store.list('outbox').length;

    // Drain: send what may go, then move the clock to the next due time; never sleep.
    const drain = await measurePhase(sampler, async () => {
      let ticks = 0;
      const until = clock.now() + 2 * 3_600_000;
      for (;;) {
        await alerts.delivery.idle();
        const report = await alerts.tick();
        ticks++;
        if (report.nextDueAt === undefined) {
          if (report.sent === 0) break;
          continue;
        }
        if (report.nextDueAt > until) break;
        clock.advanceTo(report.nextDueAt);
      }
      return ticks;
    });

    const sent = connector.activities.filter((a) => a.conversationId === SUPPORT_CHANNEL.id);
    const throttled = connector.server.requests.filter((r) => r.status === 429).length;
    const violations = connector.limitViolations().length;
    const spanMs = sent.length ? sent.at(-1)!.at - sent[0]!.at : 0;
    const clockMs = clock.now() - START;
    const biggest = Math.max(...sent.map((a) => Buffer.byteLength(JSON.stringify(a.activity))));
    const pending = rig.store.list<{ status: string }>('outbox').filter((r) => r.value.status === 'pending' || r.value.status === 'sending').length;
    const logLines = rig.logLines();
    if (sent.length < N) throw new Error(`only ${sent.length} of ${N}+ alert messages reached the connector (${pending} still pending)`);

    return {
      id: 'alerts', title: 'Alerts: one scan with 500 expiring credentials → paced posts to the Bot Connector emulator',
      rows: [
        { label: `5a alerts.onScan (${N} expiring → alerts + outbox)`, runs: 1, wallMs: enqueue.totalMs, throughput: { value: N / (enqueue.totalMs / 1000), unit: 'alerts/s' }, memory: enqueue.memory },
        { label: `5b drain ${count(sent.length)} sends (clock advanced, real CPU time)`, runs: 1, wallMs: drain.totalMs, throughput: { value: sent.length / (drain.totalMs / 1000), unit: 'sends/s' }, memory: drain.memory },
      ],
      details: [
        `onScan: ${count(outcome.opened.length)} alerts opened, ${count(outcome.raised.length)} raised, ${outcome.digests.length} digest(s); ${count(queued)} outbox entries queued in ${ms(enqueue.totalMs)}`,
        `sent: ${count(sent.length)} messages to the support channel (${sent.filter((a) => a.op === 'post').length} posts), largest message ${kb(biggest)}; ${throttled} answered 429, ${violations} per-thread limit violations, ${pending} left pending`,
        `pacing-imposed drain duration (clock time, not slept): ${ms(spanMs)} first→last send (${(spanMs / 60_000).toFixed(1)} min), clock advanced ${ms(clockMs)}; ${(sent.length / (spanMs / 1000)).toFixed(2)} sends/s sustained vs Teams' 60 per 30 s per thread`,
        `real time for the drain: ${ms(drain.totalMs)} over ${count(drain.value)} drain ticks (${ms(drain.totalMs / sent.length)} CPU+HTTP per send); ${count(logLines)} log lines`,
        'gateway pacingMs set to 0 for the bench (the production default adds 150 ms of real sleep per send in a conversation; at 60 per 30 s the clock-based pacer is the binding limit anyway)',
      ],
      data: { n: N, opened: outcome.opened.length, digests: outcome.digests.length, queued, sent: sent.length, throttled, violations, pending, spanMs, clockMs, drainTicks: drain.value, drainRealMs: drain.totalMs, enqueueMs: enqueue.totalMs },
    };
  } finally {
    await rig?.close();
  }
}
