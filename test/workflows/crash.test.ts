import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import { systemClock } from '../../src/clock.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { TEST_CRASH_MARKER } from './fixtures/crash-after.js';
import type { JobRecord } from '../../src/domain/job.js';
import { invokeActivity, SUPPORT_CHANNEL, TEAM } from '../helpers/bot.js';
import { ALEX, allText } from './harness.js';
import { nodeEntry } from '../helpers/test-build.js';

/**
 * Must show: Keywarden (a child process) is SIGKILLed right after the create step of a PAT rotation and started
 * again: the rotation completes, and no token exists that is neither stored in Key Vault nor revoked.
 * The clouds run in this process; the child reaches them through its config file and inherits NODE_EXTRA_CA_CERTS.
 */

const CHILD = 'test/workflows/fixtures/keywarden-child.ts';
let clouds: SandboxClouds;
let connector: ConnectorEmulator;
let dir: string;
let configPath: string;
let store: Store;
const children: ChildProcess[] = [];

interface Child {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startChild(env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, [...nodeEntry(CHILD), configPath], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not start in time:\n${err.slice(-3000)}`)), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /KEYWARDEN_READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => reject(new Error(`child exited with ${code} before it was ready:\n${err.slice(-3000)}`)));
  });
  return { proc, url, stderr: () => err, exited };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock: systemClock });
  connector = await startConnectorEmulator({ clock: systemClock });
  dir = mkdtempSync(join(tmpdir(), 'keywarden-crash-'));
  configPath = join(dir, 'keywarden.json');
  const channel = { name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id };
  const config = withSandboxConfig({
    mode: 'sandbox', store: { path: join(dir, 'keywarden.db') }, log: { level: 'info' },
    scanner: { scanOnStart: true, schedule: '0 0 1 1 *' }, teams: { channels: [channel] },
  }, clouds.config);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  store?.close();
  await connector?.close();
  await clouds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('crash right after the create step', () => {
  it('resumes after SIGKILL and leaves no token that is neither in Key Vault nor revoked', async () => {
    const first = await startChild({ KEYWARDEN_TEST_CRASH_AFTER: 'create' });
    store = openSqliteStore({ path: join(dir, 'keywarden.db') });
    const seeded = clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = await until('the alert card', () => store.list<AlertRecord>('alerts').map((r) => r.value).find((a) => a.credentialId === credentialId && a.message?.activityId));
    const ws = clouds.handles.databricks.workspace('ws-prod');
    const kv = clouds.handles.keyVault.vault('kv-prod');

    const activity = invokeActivity(connector.serviceUrl, 'rotate', { alertId: alert.id, nonce: alert.nonce }, alert.message!.activityId!, { kind: 'channel', user: ALEX });
    (activity.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
    (activity.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
    const res = await fetch(`${first.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
    expect(allText(await res.json())).toContain('Rotation in progress — approved by Alex Wilber');

    await until('the crash point', () => first.stderr().includes(`${TEST_CRASH_MARKER} after=create`));
    const job = store.list<JobRecord>('jobs').map((r) => r.value).find((j) => j.subject === credentialId)!;
    expect(job.steps[0]).toMatchObject({ name: 'create', status: 'done' });
    const orphanId = String(job.facts.newTokenId);
    // The dangerous moment: a new token exists, Key Vault does not hold it yet.
    expect(ws.tokens().some((t) => t.tokenId === orphanId)).toBe(true);
    expect(kv.versions('adb-prod-etl-token').some((v) => v.tags?.['rotation-id'] === job.id)).toBe(false);

    first.proc.kill('SIGKILL');
    await first.exited;

    const second = await startChild();
    const resumed = await until('the rotation to be verified', () => {
      const j = store.get<JobRecord>('jobs', job.id)?.value;
      return j && (j.state === 'waiting' || j.state === 'done' || j.state === 'compensated' || j.state === 'failed') ? j : undefined;
    }, 60_000);
    expect(resumed.state).toBe('waiting');
    expect(resumed.facts.verifiedAt).toBeTypeOf('number');
    expect(resumed.steps.find((s) => s.name === 'create')!.notes?.join(' ')).toMatch(/value was lost in a restart; revoked it/);

    // Every token this rotation created is either what Key Vault holds now, or revoked.
    const current = kv.versions('adb-prod-etl-token').at(-1)!;
    const mine = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(`[keywarden rotation ${job.id}]`));
    expect(mine.length).toBe(2);
    for (const t of mine) expect(t.revoked || current.tags?.['credential-id'] === t.tokenId).toBe(true);
    expect(mine.find((t) => t.tokenId === orphanId)?.revoked).toBe(true);
    expect(mine.filter((t) => !t.revoked)).toHaveLength(1);
    expect(kv.readStoredValue('adb-prod-etl-token')).not.toBe(seeded.tokenValue);
    // At least one valid credential stayed published throughout: the old token is untouched until the grace window ends.
    expect(ws.tokens().some((t) => t.tokenId === seeded.tokenId)).toBe(true);

    second.proc.kill('SIGTERM');
    await second.exited;
  }, 180_000);
});
