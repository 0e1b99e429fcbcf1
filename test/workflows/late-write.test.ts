import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import { createAzureCredential } from '../../src/providers/azure-credential.js';
import { hashSecret } from '../../src/sandbox/entra/state.js';
import { providersFromConfig } from '../../src/workflows/engine/providers.js';
import { createEntraRotation } from '../../src/workflows/rotate/rotate-entra.js';
import { createPatRotation } from '../../src/workflows/rotate/rotate-pat.js';
import type { JobRecord } from '../../src/domain/job.js';
import type { WorkflowDefinition } from '../../src/workflows/engine/workflow.js';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * A stalled runner that lost the job during `set` can land its Key Vault write late: a newer version tagged with the
 * same rotation but holding the token it created — which the runner that took over has revoked meanwhile. Consumers
 * reading "latest" would get a revoked credential. The test step checks what Key Vault's current version actually
 * holds and writes the new credential again; so does the finish step before it revokes the old credential.
 *
 * The late write is landed in the Key Vault emulator at an exact point: between the set and test steps (the real
 * rotation workflow runs, registered with a hook that acts on the cloud before test starts), or during the grace
 * window. The rotations themselves run as clicked, over HTTP, against the sandbox clouds.
 */

const TERMINAL = ['done', 'compensated', 'failed', 'cancelled'];
let h: WorkflowHarness;
const lateWrites = new Map<string, (job: JobRecord) => void>();

/** The real workflow, with a late write landing (once per job) just before its test step runs. */
function withLateWriteBeforeTest(real: WorkflowDefinition): WorkflowDefinition {
  return {
    ...real,
    run(step, ctx) {
      const land = lateWrites.get(ctx.job.subject);
      if (step === 'test' && land) {
        lateWrites.delete(ctx.job.subject);
        land(ctx.job);
      }
      return real.run(step, ctx);
    },
  };
}

beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  const deps = { providers: providersFromConfig(h.config, { credential: createAzureCredential(h.config.azure), clock: h.clock }), config: h.config, clock: h.clock };
  h.workflows.engine.register(withLateWriteBeforeTest(createPatRotation(deps)));
  h.workflows.engine.register(withLateWriteBeforeTest(createEntraRotation(deps)));
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

async function rotate(credentialId: string, extra: Record<string, unknown> = {}): Promise<void> {
  const alert = await h.freshAlert(credentialId);
  const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce, ...extra }, h.cardActivityId(credentialId), ALEX);
  expect(allText(answer.card)).toContain('Rotation in progress');
}

const verifiedOrOver = (subject: string) => (j: JobRecord) =>
  j.subject === subject && (TERMINAL.includes(j.state) || (j.state === 'waiting' && typeof j.facts.verifiedAt === 'number'));

describe('a late Key Vault write by a runner that lost the job (PAT rotation)', () => {
  it('a newer version of this rotation holding a revoked token lands before test: set runs again and "latest" holds the verified new token', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-dev');
    const kv = h.clouds.handles.keyVault.vault('kv-dev');
    const owner = ws.tokens().find((t) => t.tokenId === seeded.tokenId)!.ownerName;
    let staleTokenId = '';
    let staleVersion = '';
    lateWrites.set(credentialId, (job) => {
      // What the stalled runner wrote: its own token (since revoked by the runner that took over), tagged with this rotation.
      const stale = ws.addToken({ ownerName: owner, comment: `dev-ci [keywarden rotation ${job.id}]`, expiryTime: Date.now() + 30 * 86_400_000 });
      ws.revokeToken(stale.tokenId);
      staleTokenId = stale.tokenId;
      const tags = { ...kv.versions('adb-dev-ci-token').at(-1)!.tags, 'credential-id': stale.tokenId, 'rotation-id': job.id };
      staleVersion = kv.seedSecret('adb-dev-ci-token', { value: stale.tokenValue, tags }).version;
    });

    await rotate(credentialId);
    const job = await h.waitForJob(verifiedOrOver(credentialId), 30_000);
    expect(job.state).toBe('waiting');
    expect(staleVersion).not.toBe('');
    const newTokenId = String(job.facts.newTokenId);
    expect(newTokenId).not.toBe(staleTokenId);

    // "latest" holds the new, live token — not the revoked one — and says so in its tags.
    const current = kv.versions('adb-dev-ci-token').at(-1)!;
    expect(current.version).not.toBe(staleVersion);
    expect(current.enabled).toBe(true);
    expect(current.tags).toMatchObject({ 'rotation-id': job.id, 'credential-id': newTokenId });
    expect(kv.readStoredValue('adb-dev-ci-token')).toBe(ws.model.tokens.get(newTokenId)!.value);
    expect(ws.tokens().some((t) => t.tokenId === newTokenId)).toBe(true);
    expect(job.facts.kvVersion).toBe(current.version);
    // The late write's version is disabled; the set step ran again once, and the test step said why.
    expect(kv.versions('adb-dev-ci-token').find((v) => v.version === staleVersion)?.enabled).toBe(false);
    expect(job.facts.redos).toBe(1);
    expect(job.steps.find((s) => s.name === 'set')!.attempts).toBe(2);
    expect(allText(job.steps)).toMatch(/Key Vault does not publish the new token: .*holds credential …\w{4}, not the new/);
    // What compensation or rollback would restore is the value from before the rotation, not the late write.
    expect(kv.readStoredValue('adb-dev-ci-token', String(job.facts.previousKvVersion))).toBe(seeded.tokenValue);

    h.clock.advance(25 * HOUR_MS);
    const done = await h.waitForJob((j) => j.id === job.id && TERMINAL.includes(j.state), 30_000);
    expect(done.state).toBe('done');
    expect(kv.readStoredValue('adb-dev-ci-token')).toBe(ws.model.tokens.get(newTokenId)!.value);
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(true);
    expect(allText([h.jobs(), h.store.listAudit(), h.logLines])).not.toContain(ws.model.tokens.get(newTokenId)!.value);
  }, 60_000);

  it('a version tagged with this rotation and the new token id but holding another value is caught by comparing the value', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const owner = ws.tokens().find((t) => t.tokenId === seeded.tokenId)!.ownerName;
    lateWrites.set(credentialId, (job) => {
      const stale = ws.addToken({ ownerName: owner, comment: 'revoked elsewhere', expiryTime: Date.now() + 30 * 86_400_000 });
      ws.revokeToken(stale.tokenId);
      kv.seedSecret('adb-prod-etl-token', { value: stale.tokenValue, tags: { ...kv.versions('adb-prod-etl-token').at(-1)!.tags, 'rotation-id': job.id } });
    });

    await rotate(credentialId);
    await h.passGraceWindow(credentialId);
    const job = await h.waitForJob((j) => j.subject === credentialId && TERMINAL.includes(j.state), 30_000);
    expect(job.state).toBe('done');
    const newValue = ws.model.tokens.get(String(job.facts.newTokenId))!.value;
    expect(kv.readStoredValue('adb-prod-etl-token')).toBe(newValue);
    expect(kv.versions('adb-prod-etl-token').at(-1)!.tags).toMatchObject({ 'rotation-id': job.id, 'credential-id': job.facts.newTokenId });
    expect(allText(job.steps)).toMatch(/holds a value other than the new credential's/);
    expect(ws.tokens().some((t) => t.tokenId === job.facts.newTokenId)).toBe(true);
  }, 60_000);
});

describe('a late Key Vault write by a runner that lost the job (Entra client secret rotation)', () => {
  it('is caught before test and again during the grace window: "latest" ends holding the new secret, which Entra accepts', async () => {
    const etl = h.clouds.seeds.entra.etlSecret;
    const credentialId = `entra-password:${etl.appId}:${etl.keyId}`;
    const app = h.clouds.handles.entra.directory.applications.get(h.clouds.seeds.entra.apps['etl-ingest']!.objectId)!;
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const secret = 'etl-ingest-client-secret';
    const landStale = (job: JobRecord, keyId: string) => kv.seedSecret(secret, {
      value: `stale~${keyId}~value-of-a-removed-secret`,
      tags: { ...kv.versions(secret).at(-1)!.tags, 'credential-id': keyId, 'rotation-id': job.id },
    }).version;
    let before = '';
    lateWrites.set(credentialId, (job) => { before = landStale(job, '11111111-2222-3333-4444-555555555555'); });

    await rotate(credentialId);
    const job = await h.waitForJob(verifiedOrOver(credentialId), 60_000);
    expect(job.state).toBe('waiting');
    expect(before).not.toBe('');
    const mine = () => app.passwordCredentials.filter((p) => p.displayName === `keywarden rotation ${job.id}`);
    expect(mine()).toHaveLength(1);
    expect(mine()[0]!.keyId).toBe(job.facts.newKeyId);
    expect(hashSecret(kv.readStoredValue(secret)!)).toBe(mine()[0]!.secretHash);
    expect(kv.versions(secret).find((v) => v.version === before)?.enabled).toBe(false);
    expect(job.facts.redos).toBe(1);

    // Another late write lands after verification, during the grace window: the finish step publishes the new secret
    // again before it removes the old one.
    const during = landStale(job, '66666666-7777-8888-9999-000000000000');
    h.clock.advance(24 * HOUR_MS + MINUTE_MS);
    const done = await h.waitForJob((j) => j.id === job.id && TERMINAL.includes(j.state), 60_000);
    expect(done.state).toBe('done');
    expect(done.facts.redos).toBe(2);
    expect(done.facts.graceUntil).toBe(job.facts.graceUntil); // re-verifying does not restart the grace window
    expect(allText(done.steps)).toMatch(/before removing the old secret: Key Vault's current version \w{8} holds credential …0000/);
    expect(hashSecret(kv.readStoredValue(secret)!)).toBe(mine()[0]!.secretHash);
    expect(kv.versions(secret).at(-1)!.tags).toMatchObject({ 'rotation-id': job.id, 'credential-id': job.facts.newKeyId });
    expect(kv.versions(secret).find((v) => v.version === during)?.enabled).toBe(false);
    expect(app.passwordCredentials.some((p) => p.keyId === etl.keyId)).toBe(false);
  }, 90_000);
});
