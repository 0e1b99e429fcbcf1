import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import type { Keywarden } from '../../src/app.js';
import { startKeywarden, type RunningKeywarden } from '../../src/cli/start.js';
import { systemClock } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import { createLogger } from '../../src/logging/logger.js';
import { productModules } from '../../src/modules.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import type { Store } from '../../src/store/store.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { invokeActivity, SUPPORT_CHANNEL, TEAM } from '../helpers/bot.js';
import { startBotIssuer, type BotIssuer } from '../helpers/bot-issuer.js';
import { until } from '../workflows/fixtures/child-process.js';
import { ALEX, allText } from '../workflows/harness.js';
import { NEWER, readyz, writeFormatRow } from './format-edge.js';

/**
 * Work already running on a replica when a newer release takes the store: a rotation step held in flight at the
 * provider when the fence comes. From the fence on, the older replica's store refuses every write (STORE_FENCED): the
 * step stops at its next write as if the process had died there, nothing of it reaches storage, the process keeps
 * serving /readyz, and a replica of the newer release resumes the job once its job lease lapses and completes it once.
 */

const CHECK_MS = 1_000;
const JOB_LEASE_MS = 8_000;
const WRITES = new Set(['insert', 'put', 'compareAndSet', 'delete', 'transaction', 'commitTogether', 'appendAudit']);
let azurite: Azurite;
let clouds: SandboxClouds;
let connector: ConnectorEmulator;
let issuer: BotIssuer;
let dir: string;
const running: RunningKeywarden[] = [];
const stores: Store[] = [];

beforeAll(async () => {
  [azurite, clouds, connector, issuer] = await Promise.all([
    startAzurite(), startSandboxClouds({ clock: systemClock }), startConnectorEmulator({ clock: systemClock }), startBotIssuer(),
  ]);
  dir = mkdtempSync(join(tmpdir(), 'kw-format-inflight-'));
}, 60_000);

afterAll(async () => {
  for (const r of running) await r.stop().catch(() => undefined);
  for (const s of stores) if (s.isOpen) s.close();
  await Promise.all([connector?.close(), clouds?.close(), azurite?.stop(), issuer?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function configFor(table: string, extra: Record<string, unknown> = {}): string {
  const channel = { name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id };
  const config = withSandboxConfig({
    mode: 'sandbox', log: { level: 'info' },
    store: { type: 'azure-tables', azure: { connectionString: 'env:KW_TEST_STORAGE', table, container: table, leaseSeconds: 15 } },
    scanner: { scanOnStart: true, schedule: '0 0 1 1 *' }, teams: { channels: [channel] }, alerts: { cardAtDays: 31 },
    workflows: { graceHours: 0 }, ...extra,
  }, clouds.config);
  const path = join(dir, `${table}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** Writes that reached storage while the replica was already fenced (the spy sits under the core's fence). */
interface Spy { keywarden?: Keywarden; late: string[] }

function spying(spy: Spy): (store: Store) => Store {
  return (store) => new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (WRITES.has(String(prop)) && spy.keywarden?.fenced) spy.late.push(`${String(prop)} ${typeof args[0] === 'string' ? args[0] : ''}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function replica(config: string, lines: string[], options: { format?: number; spy?: Spy } = {}): Promise<RunningKeywarden> {
  const r = await startKeywarden({
    configPath: config, env: { ...process.env, KW_TEST_STORAGE: azurite.connectionString }, port: 0, handleSignals: false,
    logger: createLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } }),
    modules: productModules({ workflows: { engine: { leaseMs: JOB_LEASE_MS, pollMs: 500 } } }),
    storeFormat: { checkEveryMs: CHECK_MS, ...(options.format ? { format: options.format } : {}) },
    ...(options.spy ? { wrapStore: spying(options.spy) } : {}),
  });
  if (options.spy) options.spy.keywarden = r.keywarden;
  running.push(r);
  return r;
}

function storeOf(table: string): Store {
  const s = openAzureTablesStore({ connectionString: azurite.connectionString, table, container: table });
  stores.push(s);
  return s;
}

async function fenced(r: RunningKeywarden): Promise<void> {
  await until('the replica to fence itself', () => r.keywarden.fenced !== undefined, 10_000);
}

/** Every entity of the store's tables (the main one and the scans' staging tables) with its ETag: any write changes it. */
async function tablesState(prefix: string): Promise<string[]> {
  const service = TableServiceClient.fromConnectionString(azurite.connectionString, { allowInsecureConnection: true });
  const out: string[] = [];
  for await (const t of service.listTables()) {
    if (!t.name?.toLowerCase().startsWith(prefix.toLowerCase())) continue;
    const client = TableClient.fromConnectionString(azurite.connectionString, t.name, { allowInsecureConnection: true });
    for await (const e of client.listEntities()) out.push(`${t.name}|${e.partitionKey}|${e.rowKey}|${e.etag}`);
  }
  return out.sort();
}

const logged = (lines: string[]) => lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } });

describe('work in flight when a replica fences', () => {
  it('a rotation step held at the provider writes nothing after the fence; the newer replica resumes the job and completes it once', async () => {
    const linesA: string[] = [];
    const spy: Spy = { late: [] };
    const config = configFor('kwinflight');
    const a = await replica(config, linesA, { spy });
    const store = storeOf('kwinflight');
    const seeded = clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = clouds.handles.databricks.workspace('ws-prod');
    const kv = clouds.handles.keyVault.vault('kv-prod');
    const tokensBefore = new Set(ws.tokens({ includeRevoked: true }).map((t) => t.tokenId));
    const versionsBefore = kv.versions('adb-prod-etl-token').length;
    const alert = await until('the card of the pipeline PAT', () => store.list<AlertRecord>('alerts').map((r) => r.value).find((x) => x.credentialId === credentialId && x.message?.activityId), 60_000);
    const cardId = alert.message!.activityId!;

    // The create call is held at the workspace long enough for the fence to come while it is in flight.
    ws.clearRequests();
    ws.injectFault({ method: 'POST', path: '/token-management/on-behalf-of/tokens', status: 0, latencyMs: 6_000, times: 1 });
    const click = invokeActivity(connector.serviceUrl, 'rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, { kind: 'channel', user: ALEX });
    (click.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
    (click.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
    const clicked = await fetch(`${a.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(click) });
    expect(allText(await clicked.json())).toContain('Rotation in progress — approved by Alex Wilber');
    const job = await until('the create step in flight', () => store.list<JobRecord>('jobs').map((r) => r.value)
      .find((j) => j.subject === credentialId && j.steps[0]?.status === 'started' && j.facts.marker), 20_000);
    await new Promise((res) => setTimeout(res, 300));

    await writeFormatRow(azurite.connectionString, 'kwinflight', { ...NEWER, at: Date.now() });
    await fenced(a);
    const jobAtFence = store.get<JobRecord>('jobs', job.id)!;
    const auditAtFence = store.auditHead();
    expect(jobAtFence.value.state).toBe('running');
    expect(jobAtFence.value.steps[0]!.status).toBe('started');

    // The held call answers (the token is made at the provider) after the step was cut short: still nothing written.
    await until('the held create call answered', () => ws.requests().some((r) => r.method === 'POST' && r.path.endsWith('/on-behalf-of/tokens') && r.status === 200), 15_000);
    await new Promise((res) => setTimeout(res, 1_000));
    expect(spy.late).toEqual([]);
    expect(store.get<JobRecord>('jobs', job.id)!.version).toBe(jobAtFence.version);
    expect(store.auditHead()).toEqual(auditAtFence);
    const ready = await readyz(a);
    expect(ready.status).toBe(503);
    // Reads keep answering: no check fails on a refused write.
    expect(JSON.stringify(ready.checks)).not.toContain('may no longer write');
    expect(ready.checks.find((c) => c.name === 'role')?.detail).toMatch(/^fenced: a newer release took the store \(format 2, Keywarden 9\.9\.9; this replica writes format 1\)/);
    // Logged once per kind of write that was refused, each naming STORE_FENCED's fix; nothing died.
    const refusals = logged(linesA).filter((l) => /refused a store write/.test(l.msg));
    expect(refusals.length).toBeGreaterThan(0);
    expect(new Set(refusals.map((l) => l.msg)).size).toBe(refusals.length);
    expect(logged(linesA).some((l) => /Replace this replica with the newer release/.test(JSON.stringify(l)))).toBe(true);
    // The cut-short step is said as what it is (a warning naming the fence), not as an engine error.
    expect(logged(linesA).filter((l) => /job engine error/.test(l.msg))).toEqual([]);
    expect(logged(linesA).some((l) => l.level === 40 && /job step cut short: this replica is fenced/.test(l.msg))).toBe(true);

    // A replica of the newer release leads, and resumes the job once the older one's job lease has lapsed.
    const linesB: string[] = [];
    const b = await replica(config, linesB, { format: 2 });
    await until('the newer replica to lead', () => b.keywarden.leadership.isLeader(), 20_000);
    const done = await until('the job done on the newer replica', () => {
      const j = store.get<JobRecord>('jobs', job.id)?.value;
      return j && ['done', 'compensated', 'failed', 'cancelled'].includes(j.state) && j;
    }, 60_000);
    expect(done.state).toBe('done');
    expect(spy.late).toEqual([]);

    // One new token live (the one A's held call made was found by its marker and revoked), one new Key Vault version.
    const made = ws.tokens({ includeRevoked: true }).filter((t) => !tokensBefore.has(t.tokenId));
    expect(made.filter((t) => t.revoked)).toHaveLength(1);
    expect(made.filter((t) => !t.revoked)).toHaveLength(1);
    expect(made.filter((t) => !t.revoked)[0]!.tokenId).toBe(done.facts.newTokenId);
    expect(kv.versions('adb-prod-etl-token')).toHaveLength(versionsBefore + 1);
    expect(kv.readStoredValue('adb-prod-etl-token')).toBe(ws.model.tokens.get(String(done.facts.newTokenId))!.value);
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)!.revoked).toBe(true);
    expect(ws.requests().filter((r) => r.method === 'DELETE' && r.path.endsWith(`/tokens/${seeded.tokenId}`) && r.status < 300)).toHaveLength(1);
    const result = await connector.waitFor((x) => x.threadRootId === cardId && /^rotated: /.test(x.text ?? ''), 10_000);
    expect(result.text).toContain('verified');
    await new Promise((res) => setTimeout(res, 1_000));
    expect(connector.activities.filter((x) => x.threadRootId === cardId && /^rotated: /.test(x.text ?? ''))).toHaveLength(1);
    expect(store.listAudit({ subject: credentialId }).filter((e) => e.action === 'job.done')).toHaveLength(1);
    expect(store.verifyAudit().ok).toBe(true);
  }, 180_000);

  it('a click still being handled when the fence comes is told the replica is out of date, not that it failed', async () => {
    const lines: string[] = [];
    const spy: Spy = { late: [] };
    const a = await replica(configFor('kwinflightclick'), lines, { spy });
    const store = storeOf('kwinflightclick');
    // A card whose Rotate can work (a PAT held in a Key Vault secret) that the rotation test above has not rotated.
    const rotated = `databricks-pat:ws-prod:${clouds.seeds.databricks.tokens['ws-prod/adf-etl']!.tokenId}`;
    const alert = await until('the card of a PAT held in a secret', () => store.list<AlertRecord>('alerts').map((r) => r.value)
      .find((x) => x.credential.kind === 'databricks-pat' && x.credential.heldIn.length > 0 && x.credentialId !== rotated && x.message?.activityId), 60_000);
    // The approver check (Graph's checkMemberGroups) is held while the fence comes; the click goes on after it.
    const graph = clouds.handles.entra.graph;
    graph.injectFault({ method: 'POST', path: '/checkMemberGroups', status: 0, latencyMs: 3_000, times: 1 });
    const click = invokeActivity(connector.serviceUrl, 'rotate', { alertId: alert.id, nonce: alert.nonce }, alert.message!.activityId!, { kind: 'channel', user: ALEX });
    (click.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
    (click.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
    const answer = fetch(`${a.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(click) });
    // Requests are recorded when answered: one in flight at Graph now is the held check.
    await until('the approver check in flight', () => graph.load.inFlight > 0, 10_000);
    await writeFormatRow(azurite.connectionString, 'kwinflightclick', { ...NEWER, at: Date.now() });
    await fenced(a);
    const jobs = store.list<JobRecord>('jobs').length;

    const text = allText(await (await answer).json());
    expect(text).toContain('This Keywarden replica is out of date');
    expect(text).not.toContain('That did not work');
    expect(spy.late).toEqual([]);
    expect(store.list<JobRecord>('jobs')).toHaveLength(jobs);
    expect(logged(lines).filter((l) => /card action failed/.test(l.msg))).toEqual([]);
  }, 90_000);

  it('a scan running on the scan thread when the fence comes writes nothing after it (the thread has its own connection)', async () => {
    const lines: string[] = [];
    const graph = clouds.handles.entra.graph;
    // Graph answers slowly, so the start-up scan is still reading it when the fence comes.
    graph.setLatency(600);
    try {
      const a = await replica(configFor('kwinflightscan'), lines);
      await until('the start-up scan reading Graph', () => lines.some((l) => l.includes('"scan started"')) && graph.load.inFlight > 0, 30_000);
      await writeFormatRow(azurite.connectionString, 'kwinflightscan', { ...NEWER, at: Date.now() });
      await fenced(a);
      const atFence = await tablesState('kwinflightscan');
      await until('the scan to end', () => lines.some((l) => /"scan (failed|finished)"|scan failed/.test(l)), 30_000);
      await new Promise((res) => setTimeout(res, 1_000));
      expect(await tablesState('kwinflightscan')).toEqual(atFence);
    } finally {
      graph.setLatency(0);
    }
  }, 90_000);

  it('an alert pass sending cards when the fence comes writes nothing after it, and the replica keeps serving', async () => {
    const lines: string[] = [];
    const spy: Spy = { late: [] };
    const latency = (ms: number) => fetch(`${connector.serviceUrl}_emulator/latency`, { method: 'POST', body: JSON.stringify({ ms }) });
    // Every send to Teams takes a while: the alert pass after the scan at start is still posting cards at the fence.
    await latency(1_500);
    try {
      const a = await replica(configFor('kwalertpass'), lines, { spy });
      const store = storeOf('kwalertpass');
      await until('the first card posted', () => store.list<AlertRecord>('alerts').some((r) => r.value.message?.activityId), 60_000);
      const unposted = () => store.list<AlertRecord>('alerts').filter((r) => !r.value.message?.activityId).length;
      expect(unposted()).toBeGreaterThan(0);
      await writeFormatRow(azurite.connectionString, 'kwalertpass', { ...NEWER, at: Date.now() });
      await fenced(a);
      const head = store.auditHead();
      const alerts = store.list<AlertRecord>('alerts').map((r) => [r.id, r.version]);
      await new Promise((res) => setTimeout(res, 5_000));
      expect(spy.late).toEqual([]);
      expect(store.auditHead()).toEqual(head);
      expect(store.list<AlertRecord>('alerts').map((r) => [r.id, r.version])).toEqual(alerts);
      expect((await readyz(a)).status).toBe(503);
    } finally {
      await latency(0);
    }
  }, 120_000);

  it('a fenced replica answers a request without a valid token with 401 as before, and audits nothing', async () => {
    const lines: string[] = [];
    const appId = '00000000-0000-4000-8000-0000000000b2';
    const config = configFor('kwfenceauth', {
      scanner: { scanOnStart: false, schedule: '0 0 1 1 *' }, teams: { channels: [] },
      bot: { appId, appPassword: 'Xyz8Q~not-a-real-bot-password-0123456789cd', tenantId: clouds.tenantId, inbound: { openIdMetadataUrl: issuer.metadataUrl } },
    });
    const a = await replica(config, lines);
    const store = storeOf('kwfenceauth');
    const post = () => fetch(`${a.server.url}/api/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(invokeActivity('https://smba.trafficmanager.net/emea/', 'rotate', { alertId: 'a1', nonce: 'n1' }, '1700000000001', { kind: 'channel' })),
    });
    const refusedAudits = () => store.listAudit().filter((e) => e.action === 'bot.request.refused').length;

    const before = await post();
    expect(before.status).toBe(401);
    const answer = await before.json();
    expect(refusedAudits()).toBe(1);

    await writeFormatRow(azurite.connectionString, 'kwfenceauth', { ...NEWER, at: Date.now() });
    await fenced(a);
    const head = store.auditHead();
    const after = await post();
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual(answer);
    expect(store.auditHead()).toEqual(head);
    expect(refusedAudits()).toBe(1);
    expect(logged(lines).filter((l) => l.level >= 50 && !/a newer release took over this store/.test(l.msg))).toEqual([]);
  }, 60_000);
});
