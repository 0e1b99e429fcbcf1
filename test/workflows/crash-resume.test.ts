import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import { systemClock } from '../../src/clock.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { hashSecret } from '../../src/sandbox/entra/state.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { TEST_CRASH_MARKER } from './fixtures/crash-after.js';
import type { JobRecord } from '../../src/domain/job.js';
import { collectCanaries, findLeaks, recordMintedEntraSecrets } from '../invariants/canaries.js';
import { invokeActivity, SUPPORT_CHANNEL, TEAM } from '../helpers/bot.js';
import { killChild, startKeywardenChild, until, type KeywardenChild } from './fixtures/child-process.js';
import { ALEX, allText } from './harness.js';

/**
 * Crash safety beyond "SIGKILL after the PAT create" (crash.test.ts): a Keywarden child process is SIGKILLed
 * - right after the create step of an Entra client secret rotation (etl-ingest), and
 * - right after the set step of a PAT rotation (Key Vault written, not yet verified),
 * then started again. The rotation completes (or compensates); no credential exists that is neither stored in Key
 * Vault nor removed; and for the Entra case, the secret Key Vault publishes is accepted by Entra at every moment.
 */

const ENTRA_SECRET = 'etl-ingest-client-secret';
const PROPAGATION_MS = 2000;
let clouds: SandboxClouds;
let connector: ConnectorEmulator;
let dir: string;
let configPath: string;
let store: Store;
let minted: string[];
const children: KeywardenChild[] = [];

async function start(env: Record<string, string> = {}): Promise<KeywardenChild> {
  const child = await startKeywardenChild(configPath, env);
  children.push(child);
  return child;
}

async function clickRotate(child: KeywardenChild, credentialId: string): Promise<void> {
  const alert = await until('the alert card', () => store.list<AlertRecord>('alerts').map((r) => r.value).find((a) => a.credentialId === credentialId && a.message?.activityId));
  const activity = invokeActivity(connector.serviceUrl, 'rotate', { alertId: alert.id, nonce: alert.nonce }, alert.message!.activityId!, { kind: 'channel', user: ALEX });
  (activity.conversation as Record<string, unknown>).tenantId = clouds.tenantId;
  (activity.channelData as Record<string, unknown>).tenant = { id: clouds.tenantId };
  const res = await fetch(`${child.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  expect(allText(await res.json())).toContain('Rotation in progress — approved by Alex Wilber');
}

const jobOf = (subject: string) => store.list<JobRecord>('jobs').map((r) => r.value).find((j) => j.subject === subject);
const settled = (subject: string) => () => {
  const j = jobOf(subject);
  return j && ['waiting', 'done', 'compensated', 'failed', 'cancelled'].includes(j.state) && (j.state !== 'waiting' || typeof j.facts.verifiedAt === 'number') ? j : undefined;
};

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock: systemClock });
  clouds.handles.entra.propagationDelayMs = PROPAGATION_MS;
  minted = recordMintedEntraSecrets(clouds);
  connector = await startConnectorEmulator({ clock: systemClock });
  dir = mkdtempSync(join(tmpdir(), 'keywarden-crash2-'));
  configPath = join(dir, 'keywarden.json');
  const channel = { name: 'support', conversationId: SUPPORT_CHANNEL.id, serviceUrl: connector.serviceUrl, tenantId: clouds.tenantId, teamId: TEAM.id };
  writeFileSync(configPath, JSON.stringify(withSandboxConfig({
    mode: 'sandbox', store: { path: join(dir, 'keywarden.db') }, log: { level: 'debug' },
    scanner: { scanOnStart: true, schedule: '0 0 1 1 *' }, teams: { channels: [channel] },
  }, clouds.config), null, 2));
  store = openSqliteStore({ path: join(dir, 'keywarden.db') });
}, 60_000);

afterAll(async () => {
  for (const c of children) await killChild(c);
  store?.close();
  await connector?.close();
  await clouds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('SIGKILL right after the create step of an Entra client secret rotation', () => {
  it('removes the orphaned secret, rotates again, and Key Vault publishes an accepted secret throughout', async () => {
    const etl = clouds.seeds.entra.etlSecret;
    const credentialId = `entra-password:${etl.appId}:${etl.keyId}`;
    const entra = clouds.handles.entra;
    const app = entra.directory.applications.get(clouds.seeds.entra.apps['etl-ingest']!.objectId)!;
    const sp = entra.directory.servicePrincipals.get(clouds.seeds.entra.apps['etl-ingest']!.spObjectId)!;
    const kv = clouds.handles.keyVault.vault('kv-prod');
    const passwords = () => [...app.passwordCredentials, ...sp.passwordCredentials];

    // Watches what consumers reading "latest" get, every few ms: it must always be a secret Entra accepts now.
    const problems = new Set<string>();
    const watch = setInterval(() => {
      const current = kv.versions(ENTRA_SECRET).at(-1)!;
      const value = kv.readStoredValue(ENTRA_SECRET, current.version)!;
      const match = passwords().find((p) => p.secretHash === hashSecret(value));
      const now = Date.now();
      if (!current.enabled) problems.add(`current version ${current.version.slice(0, 8)} is disabled`);
      else if (!match) problems.add(`current version ${current.version.slice(0, 8)} holds a secret the app no longer has`);
      else if (match.endDateTime <= now) problems.add(`current version ${current.version.slice(0, 8)} holds an expired secret`);
      else if (now - match.addedAt < entra.propagationDelayMs) problems.add(`current version ${current.version.slice(0, 8)} holds secret …${match.keyId.slice(-4)} that Entra does not accept yet (replicating)`);
    }, 10);

    try {
      const first = await start({ KEYWARDEN_TEST_CRASH_AFTER: 'create' });
      await clickRotate(first, credentialId);
      await until('the crash point', () => first.stderr().includes(`${TEST_CRASH_MARKER} after=create`));
      const job = jobOf(credentialId)!;
      expect(job.steps[0]).toMatchObject({ name: 'create', status: 'done' });
      const orphanKeyId = String(job.facts.newKeyId);
      // The dangerous moment: the new secret exists on the app; Key Vault does not hold it, and its value dies with the process.
      expect(passwords().some((p) => p.keyId === orphanKeyId)).toBe(true);
      expect(kv.versions(ENTRA_SECRET).some((v) => v.tags?.['rotation-id'] === job.id)).toBe(false);
      await killChild(first);

      const second = await start();
      const resumed = await until('the rotation to settle', settled(credentialId), 60_000);
      expect(resumed.state).toBe('waiting');
      expect(resumed.facts.verifiedAt).toBeTypeOf('number');
      expect(allText(resumed.steps)).toMatch(/value was lost in a restart; removed it/);

      // Exactly one secret of this rotation is left, and it is the one Key Vault publishes.
      const marker = `keywarden rotation ${job.id}`;
      const mine = passwords().filter((p) => p.displayName === marker);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.keyId).not.toBe(orphanKeyId);
      expect(passwords().some((p) => p.keyId === orphanKeyId)).toBe(false);
      const current = kv.versions(ENTRA_SECRET).at(-1)!;
      expect(current.tags).toMatchObject({ 'rotation-id': job.id, 'credential-id': mine[0]!.keyId });
      expect(hashSecret(kv.readStoredValue(ENTRA_SECRET)!)).toBe(mine[0]!.secretHash);
      // Every secret on the app is held by an enabled Key Vault version: nothing unstored is left behind.
      const held = new Set(kv.versions(ENTRA_SECRET).filter((v) => v.enabled).map((v) => hashSecret(kv.readStoredValue(ENTRA_SECRET, v.version)!)));
      for (const p of passwords()) expect({ keyId: p.keyId, held: held.has(p.secretHash) }).toEqual({ keyId: p.keyId, held: true });
      // Grace window: the old secret still works until the rotation finishes.
      expect(passwords().some((p) => p.keyId === etl.keyId)).toBe(true);
      expect(minted.length).toBe(2);

      // Neither process printed a secret (their logs are redacted in their own process, not ours).
      const leaks = findLeaks(collectCanaries(clouds, minted), {
        'first child output': first.stdout() + first.stderr(), 'second child output': second.stdout() + second.stderr(),
      });
      expect(leaks).toEqual([]);
      await killChild(second, 'SIGTERM');
    } finally {
      clearInterval(watch);
    }
    expect([...problems]).toEqual([]);
  }, 180_000);
});

describe('SIGKILL right after the set step of a PAT rotation', () => {
  it('verifies with the value Key Vault already holds and does not create another token', async () => {
    const seeded = clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = clouds.handles.databricks.workspace('ws-prod');
    const kv = clouds.handles.keyVault.vault('kv-prod');

    const first = await start({ KEYWARDEN_TEST_CRASH_AFTER: 'set' });
    await clickRotate(first, credentialId);
    await until('the crash point', () => first.stderr().includes(`${TEST_CRASH_MARKER} after=set`));
    const job = jobOf(credentialId)!;
    expect(job.steps.map((s) => s.status)).toEqual(['done', 'done', 'pending', 'pending']);
    const newTokenId = String(job.facts.newTokenId);
    // Key Vault already holds the new token; it was not verified yet.
    expect(kv.versions('adb-prod-etl-token').at(-1)!.tags).toMatchObject({ 'rotation-id': job.id, 'credential-id': newTokenId });
    await killChild(first);

    const second = await start();
    const resumed = await until('the rotation to settle', settled(credentialId), 60_000);
    expect(resumed.state).toBe('waiting');
    expect(resumed.facts.verifiedAt).toBeTypeOf('number');
    expect(resumed.facts.redos).toBeUndefined();
    expect(resumed.steps.find((s) => s.name === 'test')).toMatchObject({ status: 'done', attempts: 1 });

    // One token made by this rotation, live, and it is what Key Vault holds; the old one is untouched (grace window).
    const mine = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(`[keywarden rotation ${job.id}]`));
    expect(mine.map((t) => ({ id: t.tokenId, revoked: t.revoked }))).toEqual([{ id: newTokenId, revoked: false }]);
    expect(kv.readStoredValue('adb-prod-etl-token')).toBe(ws.model.tokens.get(newTokenId)!.value);
    expect(ws.tokens().some((t) => t.tokenId === seeded.tokenId)).toBe(true);

    const leaks = findLeaks(collectCanaries(clouds, minted), {
      'first child output': first.stdout() + first.stderr(), 'second child output': second.stdout() + second.stderr(),
    });
    expect(leaks).toEqual([]);
    await killChild(second, 'SIGTERM');
  }, 180_000);
});
