import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import { RUNS_KEYWARDEN } from '../../src/domain/self-credential.js';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * Must show (issue 10, point 21): Keywarden runs ws-prod on a PAT it reads from Key Vault. That PAT's card says so,
 * Revoke is refused with the reason, the rotation plan switches Keywarden itself before the old token goes, and after
 * the grace window every Databricks call carries the new token: the old one is revoked and nothing got a 401/403.
 */

const SELF_SECRET = 'keywarden-ws-prod-pat';
let h: WorkflowHarness;
let self: { tokenId: string; tokenValue: string };

beforeAll(async () => {
  h = await startWorkflowHarness({
    config: { alerts: { cardAtDays: 31 } },
    adjust: (c) => {
      const databricks = c.databricks as { workspaces: Array<Record<string, unknown>> };
      databricks.workspaces = databricks.workspaces.map((w) => (w.name === 'ws-prod' ? { ...w, auth: { type: 'pat', keyVaultSecret: `kv-prod/${SELF_SECRET}` } } : w));
      return c;
    },
  });
  // Keywarden's own service principal (a workspace admin) holds the PAT Keywarden uses for ws-prod.
  const ws = h.clouds.handles.databricks.workspace('ws-prod');
  self = ws.addToken({ ownerName: 'keywarden', comment: 'keywarden-self', expiryTime: Date.now() + 7 * DAY_MS, createdByName: 'alice.admin@contoso.com' });
  h.clouds.handles.keyVault.vault('kv-prod').seedSecret(SELF_SECRET, {
    value: self.tokenValue,
    tags: { 'managed-by': 'keywarden', 'credential-kind': 'databricks-pat', 'credential-id': self.tokenId, workspace: 'ws-prod' },
  });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe("Keywarden's own credentials", () => {
  it('are marked from config: the workspace PAT and the Azure client secret it signs in with', async () => {
    const scan = await h.scanner.runScan('command');
    const pat = scan.credentials.find((c) => c.id === `databricks-pat:ws-prod:${self.tokenId}`)!;
    expect(pat.attributes[RUNS_KEYWARDEN]).toBe(`the PAT it uses for ws-prod, read from Key Vault kv-prod/${SELF_SECRET}`);
    const appId = h.clouds.seeds.entra.apps['keywarden-bot']!.appId;
    const own = scan.credentials.filter((c) => c.kind === 'entra-password' && c.where.scope === appId);
    expect(own.length).toBeGreaterThan(0);
    for (const c of own) expect(c.attributes[RUNS_KEYWARDEN]).toMatch(/Azure client secret/);
    expect(scan.credentials.filter((c) => c.attributes[RUNS_KEYWARDEN]).length).toBe(own.length + 1);
  });

  it('card says so, Revoke is refused with the reason, and rotation switches Keywarden before revoking the old PAT', async () => {
    const credentialId = `databricks-pat:ws-prod:${self.tokenId}`;
    const cardId = h.cardActivityId(credentialId);
    const posted = h.connector.activities.find((a) => a.activityId === cardId)!;
    expect(allText(posted.attachments)).toContain('Keywarden runs on this credential (the PAT it uses for ws-prod');

    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    let alert = await h.freshAlert(credentialId);
    const refused = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(refused.text).toMatch(/^Not done: Keywarden runs on this credential \(the PAT it uses for ws-prod.*revoking it would cut Keywarden off.*rotate it instead/);
    expect(ws.tokens().some((t) => t.tokenId === self.tokenId)).toBe(true);
    expect(h.jobs()).toHaveLength(0);
    expect(h.store.listAudit({ subject: credentialId }).some((e) => e.action === 'approval.refused' && String(e.details?.reason).includes('Keywarden runs on this credential'))).toBe(true);

    alert = await h.freshAlert(credentialId);
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    expect(allText(answer.card)).toContain('Rotation in progress');
    const verified = await h.waitForJob((j) => j.kind === 'rotate-pat' && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const ops = verified.plan.operations;
    const switchAt = ops.findIndex((o) => o.startsWith('switch Keywarden to the new credential'));
    const revokeAt = ops.findIndex((o) => o.startsWith('finish: revoke the old token'));
    expect(switchAt).toBeGreaterThan(-1);
    expect(switchAt).toBeLessThan(revokeAt);
    expect(ops[switchAt]).toContain(`re-read kv-prod/${SELF_SECRET} from Key Vault`);

    const newValue = kv.readStoredValue(SELF_SECRET)!;
    expect(newValue).not.toBe(self.tokenValue);
    const oldPrefix = self.tokenValue.slice(0, 8);
    const newPrefix = newValue.slice(0, 8);
    expect(newPrefix).not.toBe(oldPrefix);

    h.clock.advance(24 * HOUR_MS + MINUTE_MS);
    const done = await h.waitForJob((j) => j.id === verified.id && j.state === 'done');
    expect(typeof done.facts.keywardenSwitchedAt).toBe('number');
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === self.tokenId)!.revoked).toBe(true);

    // Keywarden keeps working on the new PAT: a scan and a workflow client both call ws-prod after the revoke.
    await h.scanner.runScan('command');
    const log = ws.requests();
    const revokeCall = log.findIndex((r) => r.method === 'DELETE' && r.path.endsWith(`/token-management/tokens/${self.tokenId}`));
    expect(revokeCall).toBeGreaterThan(-1);
    expect(log[revokeCall]!.authPrefix).toBe(newPrefix);
    const after = log.slice(revokeCall);
    expect(after.length).toBeGreaterThan(3);
    expect(after.every((r) => r.authPrefix === newPrefix || r.authPrefix?.startsWith('eyJ'))).toBe(true);
    expect(after.filter((r) => r.authPrefix === newPrefix).length).toBeGreaterThan(3);
    expect(log.filter((r) => r.status === 401 || r.status === 403)).toEqual([]);
  }, 90_000);

  it('/audit <credential> after the rotation lists the alert events, the approval and every step entry', async () => {
    const credentialId = `databricks-pat:ws-prod:${self.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const details = await h.click('details', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(credentialId), ALEX);
    expect(details.status).toBe(200);
    const { replies } = await h.command(`/audit ${credentialId}`, ALEX);
    const text = replies[0]!.text!;
    expect(text).toMatch(new RegExp(`^All \\d+ audit entries for "${credentialId}", oldest first \\(hash chain intact`));
    for (const action of ['alert.details', 'approval.refused', 'approval.granted', 'job.step.create.done', 'job.step.set.done', 'job.step.test.done', 'job.waiting', 'job.step.finish.done', 'job.done']) {
      expect(text).toContain(` · ${action} · `);
    }
    const job = h.jobs().find((j) => j.kind === 'rotate-pat')!;
    const steps = h.store.listAudit().filter((e) => e.details?.jobId === job.id);
    expect(steps.length).toBeGreaterThan(10);
    for (const e of steps) expect(text).toContain(`#${e.seq} `);
    const lines = text.split('\n\n').slice(1).map((l) => Number(l.slice(1, l.indexOf(' '))));
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  }, 30_000);

  it('a PAT replaced behind its back (new Key Vault version, old token revoked) is re-read after the 403, and the scan goes on', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const kv = h.clouds.handles.keyVault.vault('kv-prod');
    const current = kv.readStoredValue(SELF_SECRET)!;
    const currentId = ws.tokens().find((t) => t.comment.startsWith('keywarden-self [keywarden rotation'))!.tokenId;
    const replaced = ws.addToken({ ownerName: 'keywarden', comment: 'keywarden-self by hand', expiryTime: Date.now() + 30 * DAY_MS });
    kv.seedSecret(SELF_SECRET, { value: replaced.tokenValue, tags: { 'managed-by': 'keywarden', 'credential-kind': 'databricks-pat', 'credential-id': replaced.tokenId, workspace: 'ws-prod' } });
    ws.revokeToken(currentId);
    ws.clearRequests();

    const scan = await h.scanner.runScan('command');
    expect(scan.errors.filter((e) => e.scope === 'ws-prod')).toEqual([]);
    const log = ws.requests();
    // Calls already in flight with the old token each get one 403, re-read Key Vault once, and retry with the new one.
    const oldPrefix = current.slice(0, 8);
    const newPrefix = replaced.tokenValue.slice(0, 8);
    const rejected = log.filter((r) => r.status === 401 || r.status === 403);
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.every((r) => r.authPrefix === oldPrefix)).toBe(true);
    const lastOld = log.map((r) => r.authPrefix).lastIndexOf(oldPrefix);
    const firstNew = log.findIndex((r) => r.authPrefix === newPrefix);
    expect(lastOld).toBeLessThan(firstNew);
    expect(log.slice(firstNew).every((r) => r.authPrefix === newPrefix && r.status < 400)).toBe(true);
    for (const r of rejected) expect(log.slice(firstNew).some((n) => n.method === r.method && n.path === r.path && n.query === r.query)).toBe(true);
  }, 30_000);
});

