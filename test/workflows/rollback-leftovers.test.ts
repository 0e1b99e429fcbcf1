import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionOffer } from '../../src/approvals/types.js';
import type { JobRecord } from '../../src/domain/job.js';
import { ALEX, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * Rollback during the grace window also revokes leftovers: any other credential carrying the rotation's marker (a
 * stalled runner's late create that the finish step would have revoked), and disables any version of the rotation
 * in Key Vault (a late write) — so after a rollback only the old credential is live, and it is what "latest" holds.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

const verified = (subject: string) => (j: JobRecord) => j.subject === subject && j.kind !== 'rollback' && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number';

/** Clicks Rotate, waits for verification, lets `plant` leave its leftovers, then Megan clicks Rollback; returns both jobs. */
async function rotateThenRollBack(credentialId: string, plant: (rotation: JobRecord) => void): Promise<{ rotation: JobRecord; rollback: JobRecord; cardId: string }> {
  const alert = await h.freshAlert(credentialId);
  const cardId = h.cardActivityId(credentialId);
  await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
  const rotation = await h.waitForJob(verified(credentialId), 30_000);
  plant(rotation);
  const offerMessage = await h.connector.waitFor((a) => a.threadRootId === cardId && allText(a.attachments).includes('"verb":"rollback"'));
  const offer = h.store.get<ActionOffer>('approvals', `offer:${rotation.id}`)!.value;
  const answer = await h.click('rollback', { jobId: rotation.id, nonce: offer.nonce }, offerMessage.activityId, MEGAN);
  expect(allText(answer.card)).toContain('Rollback in progress');
  const rollback = await h.waitForJob((j) => j.kind === 'rollback' && j.subject === credentialId && ['done', 'failed', 'compensated'].includes(j.state), 30_000);
  return { rotation, rollback, cardId };
}

describe('Rollback revokes the rotation\'s leftovers', () => {
  it('PAT: the new token and a late-created token with the rotation\'s marker are revoked; a late Key Vault version is disabled', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const owner = ws.tokens().find((t) => t.tokenId === seeded.tokenId)!.ownerName;
    let leftoverId = '';
    let lateVersion = '';
    const { rotation, rollback, cardId } = await rotateThenRollBack(credentialId, (job) => {
      const leftover = ws.addToken({ ownerName: owner, comment: `adf-etl [keywarden rotation ${job.id}]`, expiryTime: Date.now() + 30 * 86_400_000 });
      leftoverId = leftover.tokenId;
      lateVersion = kv.seedSecret('adb-prod-etl-token', {
        value: leftover.tokenValue, tags: { ...kv.versions('adb-prod-etl-token').at(-1)!.tags, 'credential-id': leftover.tokenId, 'rotation-id': job.id },
      }).version;
    });

    expect(rollback.state).toBe('done');
    expect(rollback.facts.leftoversRevoked).toBe(1);
    const tokens = ws.tokens({ includeRevoked: true });
    expect(tokens.find((t) => t.tokenId === rotation.facts.newTokenId)?.revoked).toBe(true);
    expect(tokens.find((t) => t.tokenId === leftoverId)?.revoked).toBe(true);
    expect(tokens.find((t) => t.tokenId === seeded.tokenId)?.revoked).toBe(false);
    // Only the old token is live among this rotation's and the original: and "latest" holds it.
    expect(tokens.filter((t) => !t.revoked && t.comment.includes(`[keywarden rotation ${rotation.id}]`))).toEqual([]);
    expect(kv.readStoredValue('adb-prod-etl-token')).toBe(seeded.tokenValue);
    const versions = kv.versions('adb-prod-etl-token');
    expect(versions.find((v) => v.version === lateVersion)?.enabled).toBe(false);
    expect(versions.find((v) => v.version === rotation.facts.kvVersion)?.enabled).toBe(false);
    const message = await h.connector.waitFor((a) => a.threadRootId === cardId && /^rolled back: /.test(a.text ?? ''));
    expect(message.text).toMatch(/and 1 leftover of the rotation/);
  }, 60_000);

  it('Entra: the new client secret and a late-added secret named for the rotation are removed; the old secret stays', async () => {
    const etl = h.clouds.seeds.entra.etlSecret;
    const credentialId = `entra-password:${etl.appId}:${etl.keyId}`;
    const objectId = h.clouds.seeds.entra.apps['etl-ingest']!.objectId;
    const directory = h.clouds.handles.entra.directory;
    const app = directory.applications.get(objectId)!;
    let leftoverKeyId = '';
    const { rotation, rollback } = await rotateThenRollBack(credentialId, (job) => {
      leftoverKeyId = directory.addPassword({ kind: 'application', id: objectId }, { displayName: `keywarden rotation ${job.id}`, endDateTime: Date.now() + 30 * 86_400_000 }).password.keyId;
    });

    expect(rollback.state).toBe('done');
    expect(rollback.facts.leftoversRevoked).toBe(1);
    const keyIds = app.passwordCredentials.map((p) => p.keyId);
    expect(keyIds).not.toContain(rotation.facts.newKeyId);
    expect(keyIds).not.toContain(leftoverKeyId);
    expect(keyIds).toContain(etl.keyId);
    expect(app.passwordCredentials.filter((p) => p.displayName === `keywarden rotation ${rotation.id}`)).toEqual([]);
    expect(h.clouds.handles.keyVault.vault('kv-prod').readStoredValue('etl-ingest-client-secret')).toBe(etl.value);
  }, 60_000);
});
