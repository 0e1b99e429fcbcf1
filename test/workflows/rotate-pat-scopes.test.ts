import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, systemClock } from '../../src/clock.js';
import { KV_TAGS, MANAGED_BY_VALUE } from '../../src/domain/credential.js';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/** A scoped PAT (seeded ws-prod "reporting": sql, jobs:read) is rotated into a token with the same scopes, never an all-APIs one. */

let h: WorkflowHarness;
let autoscopedId: string;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  // An SP token whose scopes Databricks is still inferring (auto-scoping running), held in Key Vault.
  const ws = h.clouds.handles.databricks.workspace('ws-prod');
  const created = ws.addToken({
    ownerName: h.clouds.seeds.entra.apps['reporting-svc']!.appId, comment: 'reporting-autoscoped', expiryTime: systemClock.now() + 20 * DAY_MS,
    createdByName: 'alice.admin@contoso.com', autoscopeState: 'AUTOSCOPE_STATE_RUNNING',
  });
  autoscopedId = created.tokenId;
  h.clouds.handles.keyVault.vault('kv-prod').seedSecret('adb-prod-reporting-autoscoped', {
    value: created.tokenValue, exp: systemClock.now() + 20 * DAY_MS,
    tags: { [KV_TAGS.managedBy]: MANAGED_BY_VALUE, [KV_TAGS.credentialKind]: 'databricks-pat', [KV_TAGS.credentialId]: created.tokenId, [KV_TAGS.workspace]: 'ws-prod' },
  });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

async function threadText(cardId: string, needle: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  let text = '';
  while (Date.now() < deadline) {
    await h.alerts.tick();
    text = allText(h.thread(cardId).map((a) => a.attachments));
    if (text.includes(needle)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return text;
}

describe('rotating a scoped PAT', () => {
  it('the plan says the new token gets the same scopes', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/reporting']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    await h.click('details', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const text = await threadText(cardId, 'same scopes');
    expect(text).toContain('with the same scopes as the old token (sql, jobs:read)');
    expect(text).toContain('lists the new token with the same scopes');
  });

  it('creates the new token with the same scopes (read back from Databricks), verifies them and publishes it', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/reporting']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    expect(ws.tokens().find((t) => t.tokenId === seeded.tokenId)?.scopes).toEqual(['sql', 'jobs:read']);
    const before = new Set(ws.tokens({ includeRevoked: true }).map((t) => t.tokenId));
    const alert = await h.freshAlert(credentialId);
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(credentialId), ALEX);
    expect(allText(answer.card)).toContain('Rotation in progress');

    const job = await h.waitForJob((j) => j.kind === 'rotate-pat' && j.plan.subject === credentialId && typeof j.facts.verifiedAt === 'number');
    expect(job.plan.facts.scopes).toBe('sql,jobs:read');
    const created = ws.tokens({ includeRevoked: true }).filter((t) => !before.has(t.tokenId));
    expect(created).toHaveLength(1);
    expect(created[0]!.scopes).toEqual(['sql', 'jobs:read']);
    const current = h.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-reporting-token').at(-1)!;
    expect(current.tags?.['credential-id']).toBe(created[0]!.tokenId);
    // The old token is untouched until the grace window ends.
    expect(ws.tokens().some((t) => t.tokenId === seeded.tokenId)).toBe(true);
  });

  it('refuses, saying why, when the token\'s scopes cannot be read', async () => {
    const credentialId = `databricks-pat:ws-prod:${autoscopedId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const before = ws.tokens({ includeRevoked: true }).length;
    const alert = await h.freshAlert(credentialId);
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(credentialId), ALEX);
    const text = allText(answer);
    expect(text).toContain('Not done');
    expect(text).toContain("Keywarden cannot read this token's scopes (auto-scoping is still inferring them)");
    expect(text).toContain('set the token\'s scopes in Databricks');
    expect(ws.tokens({ includeRevoked: true })).toHaveLength(before);
    expect(h.jobs().some((j) => j.plan.subject === credentialId)).toBe(false);
  });
});
