import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import { startKeywarden, type RunningKeywarden } from '../../src/cli/start.js';
import { systemClock } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import { createLogger } from '../../src/logging/logger.js';
import { productModules } from '../../src/modules.js';
import { blobLeaseLeadership, type BlobLeaseLeadership } from '../../src/replicas/blob-lease.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import type { Store } from '../../src/store/store.js';
import { openAzureTablesStore } from '../../src/store/tables/store.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { invokeActivity, messageActivity, SUPPORT_CHANNEL, TEAM } from '../helpers/bot.js';
import { until } from '../workflows/fixtures/child-process.js';
import { ALEX } from '../workflows/harness.js';
import { NEWER, readyz, writeFormatRow } from './format-edge.js';

/**
 * Replicas on Azure Table Storage (azurite) while a newer release takes the store: the running replica re-reads
 * settings/store-format every period and, once it is newer, fences itself — /readyz 503 (store-format), the lease
 * released, clicks and commands answered with a refusal that executes nothing. A replica that raises the format waits
 * one check period plus a margin before the modules index the store.
 */

const CHECK_MS = 1_000;
let azurite: Azurite;
let clouds: SandboxClouds;
let connector: ConnectorEmulator;
let dir: string;
const running: RunningKeywarden[] = [];
const holders: BlobLeaseLeadership[] = [];
const stores: Store[] = [];

beforeAll(async () => {
  [azurite, clouds, connector] = await Promise.all([startAzurite(), startSandboxClouds({ clock: systemClock }), startConnectorEmulator({ clock: systemClock })]);
  dir = mkdtempSync(join(tmpdir(), 'kw-format-fence-'));
}, 60_000);

afterAll(async () => {
  for (const r of running) await r.stop().catch(() => undefined);
  for (const h of holders) await h.stop({ release: false });
  for (const s of stores) if (s.isOpen) s.close();
  await Promise.all([connector?.close(), clouds?.close(), azurite?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function configFor(table: string): string {
  const channel = { name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id };
  const config = withSandboxConfig({
    mode: 'sandbox', log: { level: 'info' },
    store: { type: 'azure-tables', azure: { connectionString: 'env:KW_TEST_STORAGE', table, container: table, leaseSeconds: 15 } },
    scanner: { scanOnStart: true, schedule: '0 0 1 1 *' }, teams: { channels: [channel] }, alerts: { cardAtDays: 31 },
  }, clouds.config);
  const path = join(dir, `${table}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

async function replica(table: string, lines: string[], format?: number): Promise<RunningKeywarden> {
  const r = await startKeywarden({
    configPath: configFor(table), env: { ...process.env, KW_TEST_STORAGE: azurite.connectionString }, port: 0, handleSignals: false,
    logger: createLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } }),
    modules: productModules(), storeFormat: { checkEveryMs: CHECK_MS, ...(format ? { format } : {}) },
  });
  running.push(r);
  return r;
}

function storeOf(table: string): Store {
  const s = openAzureTablesStore({ connectionString: azurite.connectionString, table, container: table });
  stores.push(s);
  return s;
}

const formatErrors = (lines: string[]) => lines.map((l) => JSON.parse(l) as { level: number; msg: string; time: number })
  .filter((l) => l.level >= 50 && /a newer release took over this store/.test(l.msg));

describe('the store-format gate on running replicas', () => {
  it('a running replica that sees a newer format fences: /readyz 503, the lease released, clicks and commands refused and not executed', async () => {
    const lines: string[] = [];
    const a = await replica('kwfence', lines);
    const store = storeOf('kwfence');
    expect(a.keywarden.leadership.isLeader()).toBe(true);
    const alert = await until('a card from the scan at start', () => store.list<AlertRecord>('alerts').map((r) => r.value).find((x) => x.message?.activityId && x.credentialId.startsWith('databricks-pat:ws-prod:')), 60_000);
    const probe = blobLeaseLeadership({
      blob: BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('kwfence').getBlobClient('leader'),
      leaseSeconds: 15, tryEveryMs: 200, name: 'probe', logger: createLogger({ level: 'silent' }),
    });
    holders.push(probe);
    await probe.start();
    expect(probe.isLeader()).toBe(false);

    await writeFormatRow(azurite.connectionString, 'kwfence', { ...NEWER, at: Date.now() });
    const fencedAt = Date.now();
    let ready = await readyz(a);
    while (!(ready.status === 503 && ready.checks.some((c) => c.name === 'store-format' && !c.ok))) {
      if (Date.now() - fencedAt > 10_000) throw new Error(`not fenced: ${JSON.stringify(ready)}`);
      await new Promise((res) => setTimeout(res, 100));
      ready = await readyz(a);
    }
    expect(ready.checks.find((c) => c.name === 'store-format')?.detail).toBe(
      'store format 2 is newer than this replica\'s 1 (Keywarden 0.1.0): upgrade this replica to Keywarden 9.9.9 or newer; do not run an older release against this store');
    // Released, not lapsed: the probe leads long before the 15 s lease could have run out.
    await until('the probe to take the released lease', () => probe.isLeader(), 5_000);
    expect(Date.now() - fencedAt).toBeLessThan(8_000);
    expect(a.keywarden.leadership.isLeader()).toBe(false);
    expect(formatErrors(lines)).toHaveLength(1);
    expect(formatErrors(lines)[0]!.msg).toContain('upgrade this replica to Keywarden 9.9.9 or newer');

    const auditBefore = store.auditHead();
    const jobsBefore = store.list<JobRecord>('jobs').length;
    const click = invokeActivity(connector.serviceUrl, 'rotate', { alertId: alert.id, nonce: alert.nonce }, alert.message!.activityId!, { kind: 'channel', user: ALEX });
    (click.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
    (click.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
    const clicked = await fetch(`${a.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(click) });
    expect(clicked.status).toBe(200);
    const answer = JSON.stringify(await clicked.json());
    expect(answer).toContain('This Keywarden replica is out of date');
    expect(answer).toContain('did nothing with this');

    const command = messageActivity(connector.serviceUrl, '/bind', { kind: 'channel', user: ALEX });
    (command.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
    (command.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
    const sent = await fetch(`${a.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(command) });
    expect(sent.status).toBe(200);
    const reply = await connector.waitFor((x) => x.replyToId === command.id, 5_000);
    expect(reply.text).toContain('This Keywarden replica is out of date');

    // The pipeline API: 503 with Retry-After, so the pipeline's retry reaches a replica of the new release.
    const api = await fetch(`${a.server.url}/api/jit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(api.status).toBe(503);
    expect(api.headers.get('retry-after')).toBe('30');
    expect(await api.json()).toMatchObject({ error: { code: 'ReplicaFenced', message: expect.stringContaining('upgrade this replica to Keywarden 9.9.9 or newer') } });

    await new Promise((res) => setTimeout(res, 1_000));
    expect(store.list<JobRecord>('jobs')).toHaveLength(jobsBefore);
    expect(store.list<JobRecord>('jobs').filter((j) => j.value.subject === alert.credentialId)).toHaveLength(0);
    expect(store.auditHead()).toEqual(auditBefore);
    expect(store.list('channelBindings')).toHaveLength(0);
  }, 120_000);

  it('a replica that raises the format waits a check period plus a margin before the modules index the store', async () => {
    const linesA: string[] = [];
    const a = await replica('kwraise', linesA);
    const store = storeOf('kwraise');
    const markers = ['outbox-index-v1', 'job-pointers-v1', 'alerts:snooze-keys-v1'];
    await until('the first replica\'s markers', () => markers.every((m) => store.get('settings', m)), 30_000);
    // The new release adds index records: its markers are not in the store yet.
    for (const m of markers) store.delete('settings', m);

    const linesB: string[] = [];
    const b = await replica('kwraise', linesB, 2);
    const format = store.get<{ format: number; at: number }>('settings', 'store-format')!;
    expect(format.value.format).toBe(2);
    expect(format.version).toBe(2);
    const written = await until('the new replica\'s markers', () => {
      const got = markers.map((m) => store.get('settings', m));
      return got.every(Boolean) && got.map((r) => r!.createdAt);
    }, 30_000);
    // Every backfill ran after the wait, and after the older replica had fenced itself.
    for (const at of written) expect(at - format.value.at).toBeGreaterThanOrEqual(CHECK_MS + 5_000 - 50);
    const fenced = formatErrors(linesA);
    expect(fenced).toHaveLength(1);
    for (const at of written) expect(at).toBeGreaterThan(fenced[0]!.time);
    expect(linesB.some((l) => /the store format was just raised to 2: waiting 6 s/.test(l))).toBe(true);
    expect((await readyz(a)).status).toBe(503);
    await until('the new replica to lead', () => b.keywarden.leadership.isLeader(), 20_000);
    expect((await readyz(b)).checks.find((c) => c.name === 'store-format')).toMatchObject({ ok: true });
  }, 120_000);
});
