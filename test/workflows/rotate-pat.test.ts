import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/** Must show: an approver clicks Rotate on an SP-owned PAT card, over HTTP, against the sandbox clouds. */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('Rotate on an SP-owned PAT card', () => {
  it('answers with the in-progress card, rotates, verifies, and revokes the old token after the grace window', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const tokensBefore = new Set(ws.tokens({ includeRevoked: true }).map((t) => t.tokenId));
    const versionsBefore = kv.versions('adb-prod-etl-token');

    const started = Date.now();
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(Date.now() - started).toBeLessThan(5_000); // generous: Teams gives up after 10-15 s
    expect(allText(answer.card)).toContain('Rotation in progress — approved by Alex Wilber');

    const verified = await h.waitForJob((j) => j.kind === 'rotate-pat' && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const created = ws.tokens({ includeRevoked: true }).filter((t) => !tokensBefore.has(t.tokenId));
    expect(created).toHaveLength(1);
    const newToken = created[0]!;
    expect(newToken.comment).toBe(`adf-etl [keywarden rotation ${verified.id}]`);
    expect(newToken.ownerName).toBe(h.clouds.seeds.entra.apps['etl-ingest']!.appId);
    expect(newToken.revoked).toBe(false);

    const versions = kv.versions('adb-prod-etl-token');
    expect(versions).toHaveLength(versionsBefore.length + 1);
    const current = versions[versions.length - 1]!;
    expect(current.tags).toMatchObject({
      'managed-by': 'keywarden', 'credential-kind': 'databricks-pat', 'credential-id': newToken.tokenId,
      workspace: 'ws-prod', 'rotation-id': verified.id,
    });
    expect(current.exp).toBe(Math.floor(newToken.expiryTime / 1000) * 1000); // Key Vault keeps whole seconds
    // Grace window: the old token still works and is still what the previous version holds.
    expect(ws.tokens().some((t) => t.tokenId === seeded.tokenId)).toBe(true);

    const midThread = await h.connector.waitFor((a) => a.threadRootId === cardId && (a.text ?? '').includes('verified; the old token'));
    expect(midThread.text).toMatch(/will be revoked at/);

    h.clock.advance(24 * HOUR_MS + MINUTE_MS);
    const done = await h.waitForJob((j) => j.id === verified.id && j.state === 'done');
    const old = ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === seeded.tokenId)!;
    expect(old.revoked).toBe(true);
    expect(ws.tokens({ includeRevoked: true }).filter((t) => !tokensBefore.has(t.tokenId))).toHaveLength(1);
    expect(kv.versions('adb-prod-etl-token')).toHaveLength(versionsBefore.length + 1);

    let auditedWhenPosted = false;
    const result = await h.connector.waitFor((a) => {
      const match = a.threadRootId === cardId && /^rotated: .*, verified, old token .* revoked at/.test(a.text ?? '');
      // Evaluated as the message arrives: the audit log must already say done.
      if (match) auditedWhenPosted = h.store.listAudit({ subject: credentialId }).some((e) => e.action === 'job.done');
      return match;
    });
    expect(auditedWhenPosted).toBe(true);
    expect(result.text).toMatch(new RegExp(`^rotated: new token …${newToken.tokenId.slice(-4)} \\(expires \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\), Key Vault version ${current.version.slice(0, 8)}, verified, old token …${seeded.tokenId.slice(-4)} revoked at \\d{4}-`));

    // The card was updated in place to the resolved state.
    await h.alerts.tick();
    await h.alerts.delivery.idle();
    const updates = h.connector.updatesOf(cardId);
    expect(allText(updates[updates.length - 1]?.attachments)).toContain('Resolved');

    // Audit: the decision (with plan hash and approver) and every step, before the thread said done.
    const audit = h.store.listAudit({ subject: credentialId });
    const granted = audit.find((a) => a.action === 'approval.granted')!;
    expect(granted.actor).toMatchObject({ aadObjectId: ALEX.aadObjectId, name: 'Alex Wilber' });
    expect(granted.details).toMatchObject({ planHash: done.planHash, jobId: done.id });
    for (const step of ['create', 'set', 'test', 'finish']) expect(audit.some((a) => a.action === `job.step.${step}.done`)).toBe(true);
    expect(h.store.verifyAudit().ok).toBe(true);

    // The new value exists only in the provider and Key Vault: nowhere in chat, jobs, audit or logs.
    const newValue = kv.readStoredValue('adb-prod-etl-token')!;
    expect(newValue).toMatch(/^dapi/);
    const everywhere = allText([h.connector.activities.map((a) => a.activity), h.store.listAudit(), h.jobs(), h.store.list('approvals'), h.logLines]);
    expect(everywhere).not.toContain(newValue);
    expect(everywhere).not.toContain(seeded.tokenValue);
    expect(done.facts).not.toHaveProperty('token');

    // Operators see it on /metrics: the scan that found it and the action that fixed it.
    const metrics = await (await fetch(`${h.botUrl}/metrics`)).text();
    expect(metrics).toMatch(/keywarden_scans_total\{trigger="command",outcome="ok"\} 1/);
    expect(metrics).toMatch(/keywarden_actions_total\{action="rotate-pat",result="done"\} 1/);
    expect(metrics).toMatch(/keywarden_teams_sends_total\{operation="post",result="ok"\} \d+/);
    expect(metrics).not.toContain(newValue);
  }, 60_000);

  it('a second click on the same card starts nothing', async () => {
    const jobs = h.jobs().length;
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const alert = h.store.list<{ credentialId: string; id: string; nonce: string }>('alerts').map((r) => r.value).find((a) => a.credentialId.endsWith(seeded.tokenId))!;
    const first = h.store.listAudit().find((a) => a.action === 'approval.granted')!;
    const answer = await h.click('rotate', { alertId: alert.id, nonce: String((first.details as { approvalId: string }).approvalId).split(':')[2] }, h.cardActivityId(alert.credentialId), ALEX);
    expect(answer.text ?? allText(answer.card)).toMatch(/out of date|already/);
    expect(h.jobs()).toHaveLength(jobs);
    expect((h.jobs() as JobRecord[]).filter((j) => j.kind === 'rotate-pat')).toHaveLength(1);
  });
});

describe('failures', () => {
  it('a new token that fails verification is undone: Key Vault holds the old value again and the new token is revoked', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    const ws = h.clouds.handles.databricks.workspace('ws-dev');
    const kv = h.clouds.handles.keyVault.vault('kv-dev');
    ws.injectFault({ method: 'GET', path: '/api/2.0/token/list', status: 403, times: Infinity, body: { error_code: 'PERMISSION_DENIED', message: 'Invalid access token.' } });
    try {
      await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
      const job = await h.waitForJob((j) => j.subject === credentialId && ['compensated', 'failed', 'done'].includes(j.state));
      expect(job.state).toBe('compensated');
      expect(job.error).toMatchObject({ step: 'test' });
      expect(kv.readStoredValue('adb-dev-ci-token')).toBe(seeded.tokenValue);
      const created = ws.tokens({ includeRevoked: true }).filter((t) => t.comment.includes(`[keywarden rotation ${job.id}]`));
      expect(created).toHaveLength(1);
      expect(created[0]!.revoked).toBe(true);
      expect(ws.tokens().some((t) => t.tokenId === seeded.tokenId)).toBe(true);
      const message = await h.connector.waitFor((a) => a.threadRootId === cardId && /^failed at test/.test(a.text ?? ''));
      expect(message.text).toMatch(/still works until .* \(\d+ days left\)/);
      expect(allText([job, h.store.listAudit({ subject: credentialId }), message.activity])).not.toContain(seeded.tokenValue);
    } finally {
      ws.clearFaults();
    }
  }, 60_000);

  it('a credential that changed after approval is not touched: the job stops and says what changed', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/reporting']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    ws.revokeToken(seeded.tokenId); // someone removed it by hand after the card was posted
    const before = ws.tokens({ includeRevoked: true }).length;
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const job = await h.waitForJob((j) => j.subject === credentialId && ['cancelled', 'compensated', 'failed', 'done'].includes(j.state));
    expect(job.state).toBe('cancelled');
    expect(job.error?.message).toMatch(/no longer exists/);
    expect(ws.tokens({ includeRevoked: true })).toHaveLength(before);
    const message = await h.connector.waitFor((a) => a.threadRootId === cardId && /^not done: stopped before acting/.test(a.text ?? ''));
    expect(message.text).toMatch(/no longer exists in ws-prod/);
  }, 60_000);
});
