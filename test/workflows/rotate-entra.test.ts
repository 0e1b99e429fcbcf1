import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/** Must show: rotate an Entra SP client secret, across Entra's replication delay (emulated: 3 s). */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ propagationDelayMs: 3000 });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('Rotate on an Entra client secret card', () => {
  it('adds a secret, stores it, waits out propagation, verifies, and removes the old one', async () => {
    const etl = h.clouds.seeds.entra.etlSecret;
    const credentialId = `entra-password:${etl.appId}:${etl.keyId}`;
    const alert = h.alertFor(credentialId)!;
    expect(alert.credential.heldIn).toEqual([{ vault: 'kv-prod', name: 'etl-ingest-client-secret' }]);
    const cardId = h.cardActivityId(credentialId);
    const app = h.clouds.handles.entra.directory.applications.get(h.clouds.seeds.entra.apps['etl-ingest']!.objectId)!;
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const versionsBefore = kv.versions('etl-ingest-client-secret').length;

    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(allText(answer.card)).toContain('Rotation in progress — approved by Alex Wilber');
    await h.passGraceWindow(credentialId);

    const job = await h.waitForJob((j) => j.kind === 'rotate-entra' && ['done', 'compensated', 'failed'].includes(j.state), 60_000);
    expect(job.state).toBe('done');
    // Refused while replicating, then accepted — before Key Vault published it; the test step then passes at once.
    expect(job.steps.find((s) => s.name === 'set')!.attempts).toBeGreaterThan(1);
    expect(job.steps.find((s) => s.name === 'test')!.attempts).toBe(1);

    const passwords = app.passwordCredentials;
    expect(passwords.some((p) => p.keyId === etl.keyId)).toBe(false);
    const added = passwords.filter((p) => p.displayName === `keywarden rotation ${job.id}`);
    expect(added).toHaveLength(1);
    const versions = kv.versions('etl-ingest-client-secret');
    expect(versions).toHaveLength(versionsBefore + 1);
    expect(versions.at(-1)!.tags).toMatchObject({ 'credential-kind': 'entra-password', 'credential-id': added[0]!.keyId, 'app-id': etl.appId, 'rotation-id': job.id });
    expect(versions.at(-1)!.exp).toBe(Math.floor(added[0]!.endDateTime / 1000) * 1000);

    // The verified milestone comes first; after the grace window the result says the old secret was removed.
    const result = await h.connector.waitFor((a) => a.threadRootId === cardId && /^rotated: new client secret/.test(a.text ?? '') && /old secret …\w{4} removed at/.test(a.text ?? ''));
    expect(result.text).toMatch(/verified, old secret …\w{4} removed at/);

    const newValue = kv.readStoredValue('etl-ingest-client-secret')!;
    expect(newValue).toContain('8Q~');
    const everywhere = allText([h.connector.activities.map((a) => a.activity), h.store.listAudit(), h.jobs(), h.logLines]);
    expect(everywhere).not.toContain(newValue);
    expect(everywhere).not.toContain(etl.value);
    expect(h.store.listAudit({ subject: credentialId }).filter((a) => a.action === 'job.step.set.failed').length).toBeGreaterThan(0);
  }, 90_000);
});
