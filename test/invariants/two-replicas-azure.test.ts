import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import { systemClock } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import type { Store } from '../../src/store/store.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { invokeActivity, SUPPORT_CHANNEL, TEAM } from '../helpers/bot.js';
import { killChild, until, type KeywardenChild } from '../workflows/fixtures/child-process.js';
import { ALEX, MEGAN } from '../workflows/harness.js';
import { nodeEntry } from '../helpers/test-build.js';

/**
 * Two Keywarden processes on one Azure Storage account (azurite), the sandbox clouds and the Bot Connector emulator.
 * The blob lease elects the leader (scan schedule, scan at start, job resumption); both serve clicks. SIGKILL the
 * leader mid-scan and mid-rotation: the other takes the lease within the lease period (15 s, the minimum) and finishes
 * the work, and nothing is posted, created or rotated twice.
 */

const CHILD = 'test/invariants/fixtures/replica-child.ts';
const OBO_CREATE = /\/api\/2\.0\/token-management\/on-behalf-of\/tokens$/;
const LIST_TOKENS = /\/api\/2\.0\/token-management\/tokens$/;
const TERMINAL = ['done', 'compensated', 'failed', 'cancelled'];

let azurite: Azurite;
let clouds: SandboxClouds;
let connector: ConnectorEmulator;
let dir: string;
let configPath: string;
let store: Store;
const children: KeywardenChild[] = [];

async function startReplica(): Promise<KeywardenChild> {
  const proc = spawn(process.execPath, [...nodeEntry(CHILD), configPath], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  if (process.env.KW_DEBUG) proc.stdout!.pipe(createWriteStream(`/tmp/kw-replica-${children.length}.log`));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await until('the replica to serve', () => {
    if (proc.exitCode !== null) throw new Error(`replica exited with ${proc.exitCode}:\n${err.slice(-3000)}`);
    return /KEYWARDEN_READY (\S+)/.exec(out)?.[1];
  }, 180_000).catch((e: Error) => { throw new Error(`${e.message}\n${err.slice(-4000)}`); });
  const child = { proc, url, stdout: () => out, stderr: () => err, exited };
  children.push(child);
  return child;
}

async function role(child: KeywardenChild): Promise<string> {
  const body = await (await fetch(`${child.url}/readyz`)).json() as { checks: Array<{ name: string; detail?: string }> };
  return body.checks.find((c) => c.name === 'role')?.detail ?? '';
}

async function waitForLeader(child: KeywardenChild, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await role(child)).startsWith('leader')) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`no takeover within ${timeoutMs} ms: ${await role(child)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function click(child: KeywardenChild, alert: AlertRecord, user = ALEX): Promise<string> {
  const activity = invokeActivity(connector.serviceUrl, 'rotate', { alertId: alert.id, nonce: alert.nonce }, alert.message!.activityId!, { kind: 'channel', user });
  (activity.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
  const res = await fetch(`${child.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  return res.text();
}

const alerts = () => store.list<AlertRecord>('alerts').map((r) => r.value);
const jobs = () => store.list<JobRecord>('jobs').map((r) => r.value);
const alertFor = (credentialId: string) => alerts().find((a) => a.credentialId === credentialId && a.message?.activityId);
const finalResult = (a: { text?: string }) => /^rotated: /.test(a.text ?? '') && !/will be/.test(a.text ?? '');

beforeAll(async () => {
  [azurite, clouds, connector] = await Promise.all([startAzurite(), startSandboxClouds({ clock: systemClock }), startConnectorEmulator({ clock: systemClock })]);
  dir = mkdtempSync(join(tmpdir(), 'keywarden-replicas-'));
  configPath = join(dir, 'keywarden.json');
  const channel = { name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id };
  process.env.KW_TEST_STORAGE = azurite.connectionString;
  const config = withSandboxConfig({
    mode: 'sandbox', log: { level: 'info' },
    store: { type: 'azure-tables', azure: { connectionString: 'env:KW_TEST_STORAGE', leaseSeconds: 15 } },
    scanner: { scanOnStart: true, schedule: '0 0 1 1 *' }, teams: { channels: [channel] },
    alerts: { cardAtDays: 31 }, workflows: { graceHours: 0 },
  }, clouds.config);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  store = openAzureTablesStore({ connectionString: azurite.connectionString, table: 'keywarden', container: 'keywarden' });
}, 60_000);

afterAll(async () => {
  if (process.env.KW_DEBUG) for (const c of children) console.log(c.stderr().split('\n').filter((l) => /leader|follower|scan|error|ERROR|warn/i.test(l)).slice(-40).join('\n'));
  for (const c of children) await killChild(c);
  store?.close();
  await Promise.all([connector?.close(), clouds?.close(), azurite?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('two replicas on Azure Table Storage with a blob lease', () => {
  let leader: KeywardenChild;
  let follower: KeywardenChild;

  it('SIGKILL the leader mid-scan: the follower takes the lease, scans, and every card is posted once', async () => {
    // The first scan hangs on one workspace until long after both replicas are up: the leader dies in the middle of it.
    const prod = clouds.handles.databricks.workspace('ws-prod');
    prod.injectFault({ method: 'GET', path: LIST_TOKENS, status: 0, latencyMs: 150_000, times: 1 });
    const both = await Promise.all([startReplica(), startReplica()]);
    const roles = await Promise.all(both.map(role));
    expect(roles.filter((r) => r.startsWith('leader'))).toHaveLength(1);
    expect(roles.filter((r) => /^follower .*leader: \S/.test(r))).toHaveLength(1);
    // Both claimed the store format at once on a fresh table: one insert won, the other left it alone.
    expect(store.get('settings', 'store-format')).toMatchObject({ version: 1, value: { format: 1 } });
    leader = both[roles.findIndex((r) => r.startsWith('leader'))]!;
    follower = both.find((c) => c !== leader)!;
    await until('the leader to be scanning', () => prod.requests().some((r) => LIST_TOKENS.test(r.path)), 60_000);
    expect(connector.postsIn(SUPPORT_CHANNEL.id)).toHaveLength(0);

    leader.proc.kill('SIGKILL');
    await leader.exited;
    const takeover = await waitForLeader(follower, 30_000);
    expect(takeover).toBeLessThan(19_000); // lease period (15 s) + one try (2 s) + the 200 ms status polls on a loaded machine

    await until('the cards of the new leader\'s scan', () => {
      const carded = alerts().filter((a) => a.message?.activityId);
      return carded.length >= 5 && carded.every((a) => connector.activities.some((x) => x.activityId === a.message!.activityId)) && carded;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const byCredential = new Map<string, number>();
    for (const a of alerts()) byCredential.set(a.credentialId, (byCredential.get(a.credentialId) ?? 0) + 1);
    expect([...byCredential.values()].every((n) => n === 1)).toBe(true);
    const posts = connector.postsIn(SUPPORT_CHANNEL.id).map((p) => JSON.stringify([p.text, p.attachments]));
    expect(new Set(posts).size).toBe(posts.length);
    expect(store.get<{ trigger: string }>('snapshots', 'latest')?.value.trigger).toBe('start');
    expect(store.verifyAudit().ok).toBe(true);
  }, 300_000);

  it('clicks at either replica execute once: one approval, one job, one new token, one message', async () => {
    leader = follower;
    follower = await startReplica();
    expect(await role(follower)).toMatch(/^follower/);
    const seeded = clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = clouds.handles.databricks.workspace('ws-prod');
    const kv = clouds.handles.keyVault.vault('kv-prod');
    const alert = alertFor(credentialId)!;
    const versionsBefore = kv.versions('adb-prod-etl-token').length;
    ws.clearRequests();

    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => click(i % 2 ? leader : follower, alert, i % 3 ? ALEX : MEGAN)));
    // The winner says so (unless its turn overran on a starved machine and got 503); no loser does.
    expect(answers.filter((a) => a.includes('Rotation in progress')).length).toBeLessThanOrEqual(1);
    const job = await until('the rotation to finish', () => jobs().find((j) => j.subject === credentialId && TERMINAL.includes(j.state)), 120_000);
    expect(job.state).toBe('done');
    await connector.waitFor((a) => a.threadRootId === alert.message!.activityId && finalResult(a), 10_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(jobs().filter((j) => j.subject === credentialId)).toHaveLength(1);
    expect(store.listAudit({ subject: credentialId }).filter((a) => a.action === 'approval.granted')).toHaveLength(1);
    expect(ws.requests().filter((r) => r.method === 'POST' && OBO_CREATE.test(r.path))).toHaveLength(1);
    expect(kv.versions('adb-prod-etl-token')).toHaveLength(versionsBefore + 1);
    expect(connector.repliesTo(alert.message!.activityId!).filter(finalResult)).toHaveLength(1);
  }, 300_000);

  it('SIGKILL the leader mid-rotation: the other replica resumes the job and the rotation completes once', async () => {
    const seeded = clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const ws = clouds.handles.databricks.workspace('ws-dev');
    const kv = clouds.handles.keyVault.vault('kv-dev');
    const alert = alertFor(credentialId)!;
    const versionsBefore = kv.versions('adb-dev-ci-token').length;
    ws.clearRequests();
    // The test step (the new token lists its own tokens) hangs: the leader dies with create and set done.
    ws.injectFault({ method: 'GET', path: /\/api\/2\.0\/token\/list$/, status: 0, latencyMs: 60_000, times: 1 });

    expect(await click(leader, alert)).toContain('Rotation in progress');
    const midway = await until('the leader to be in the test step', () => jobs().find((j) => j.subject === credentialId && j.steps.find((s) => s.name === 'test')?.status === 'started'), 30_000);
    expect(kv.versions('adb-dev-ci-token')).toHaveLength(versionsBefore + 1);
    leader.proc.kill('SIGKILL');
    await leader.exited;

    expect(await waitForLeader(follower, 30_000)).toBeLessThan(19_000);
    const done = await until('the rotation to finish on the new leader', () => jobs().find((j) => j.id === midway.id && TERMINAL.includes(j.state)), 120_000);
    expect(done.state).toBe('done');
    await connector.waitFor((a) => a.threadRootId === alert.message!.activityId && finalResult(a), 10_000);
    await new Promise((r) => setTimeout(r, 1_000));
    // Created once, published once, the old token revoked once, one result in the thread.
    expect(ws.requests().filter((r) => r.method === 'POST' && OBO_CREATE.test(r.path))).toHaveLength(1);
    expect(kv.versions('adb-dev-ci-token')).toHaveLength(versionsBefore + 1);
    expect(ws.requests().filter((r) => r.method === 'DELETE' && r.path.includes(seeded.tokenId))).toHaveLength(1);
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(true);
    expect(connector.repliesTo(alert.message!.activityId!).filter(finalResult)).toHaveLength(1);
    expect(store.verifyAudit().ok).toBe(true);
  }, 300_000);
});
