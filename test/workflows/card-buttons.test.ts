import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import type { ActionOffer } from '../../src/approvals/types.js';
import { HOUR_MS } from '../../src/clock.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { ALEX, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * Buttons only where the action can run (no Revoke on Key Vault secret / certificate cards, no Rollback once the old
 * credential is gone, the revoke confirmation shows the hash that runs), plan placeholders that say what is filled in,
 * and card data that cannot choose a workflow parameter (grace:"now").
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

const patId = (key: string) => `databricks-pat:${key.split('/')[0]}:${h.clouds.seeds.databricks.tokens[key]!.tokenId}`;

/** The card as Teams shows it now: the last post or update of that activity. */
function shownCard(activityId: string): string {
  const all = h.connector.activities.filter((a) => a.activityId === activityId && (a.op === 'post' || a.op === 'update'));
  return allText(all.at(-1)?.attachments);
}

const verbsIn = (text: string) => [...text.matchAll(/"verb":"([^"]+)"/g)].map((m) => m[1]);

async function threadText(cardId: string, atLeast: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  let thread: ConnectorActivity[] = h.thread(cardId);
  while (thread.length < atLeast && Date.now() < deadline) {
    await h.alerts.tick();
    await new Promise((r) => setTimeout(r, 50));
    thread = h.thread(cardId);
  }
  return allText(thread.map((a) => a.attachments));
}

describe('buttons only where the action can run', () => {
  it('a Key Vault secret card offers no Revoke (Keywarden always refuses it there)', async () => {
    const kvAlerts = h.store.list<AlertRecord>('alerts').map((r) => r.value)
      .filter((a) => (a.credential.kind === 'keyvault-secret' || a.credential.kind === 'entra-certificate') && a.message?.activityId);
    expect(kvAlerts.length).toBeGreaterThan(0);
    for (const alert of kvAlerts) {
      const verbs = verbsIn(shownCard(alert.message!.activityId!));
      expect(verbs).toContain('details');
      expect(verbs, `${alert.credential.kind} ${alert.credential.name}`).not.toContain('revoke');
    }
    // A PAT card still has it.
    expect(verbsIn(shownCard(h.cardActivityId(patId('ws-prod/bob-jdbc'))))).toContain('revoke');
  });

  it('the revoke confirmation shows the plan hash that then runs', async () => {
    const credentialId = patId('ws-prod/bob-jdbc');
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    const form = await h.click('revoke', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const shown = /Plan hash ([0-9a-f]{12})/.exec(allText(form.card))?.[1];
    expect(shown).toBeDefined();
    const answer = await h.click('revoke', {
      alertId: alert.id, nonce: alert.nonce, confirmed: true, justification: 'left the company, token in a notebook', overrideReason: 'owner confirmed it is unused',
    }, cardId, ALEX);
    expect(allText(answer.card)).toContain('Revoke in progress');
    const job = await h.waitForJob((j) => j.subject === credentialId && j.kind === 'revoke');
    expect(job.planHash.slice(0, 12)).toBe(shown);
    expect(allText(answer.card)).toContain(shown);
  });

  it('the plan says what will be filled in instead of showing empty values', async () => {
    const credentialId = patId('ws-prod/reporting');
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    await h.click('details', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const pat = await threadText(cardId, 2);
    expect(pat).toContain('Plan hash');
    // Teams drops "<…>" as markup, which left "credential-id=" and "rotation-id=" empty on the card.
    expect(pat).not.toMatch(/[=("]<[^>]*>/);
    expect(pat).toMatch(/credential-id=\[new token id[^\]]*\]/);
    expect(pat).toMatch(/rotation-id=\[[^\]]+\]/);

    const etl = h.clouds.seeds.entra.etlSecret;
    const entraId = `entra-password:${etl.appId}:${etl.keyId}`;
    const entraAlert = h.alertFor(entraId)!;
    const entraCard = h.cardActivityId(entraId);
    await h.click('details', { alertId: entraAlert.id, nonce: entraAlert.nonce }, entraCard, ALEX);
    const entra = await threadText(entraCard, 2);
    expect(entra).not.toMatch(/[=("]<[^>]*>/);
    expect(entra).toContain(`app-id=${etl.appId}`);
    expect(entra).toMatch(/credential-id=\[new key id[^\]]*\]/);
    expect(entra).toMatch(/rotation-id=\[[^\]]+\]/);
    expect(entra).not.toMatch(/(app-id|rotation-id),/);
  });

  it('a click carrying grace:"now" keeps the 24 h grace window and audits the ignored key', async () => {
    const credentialId = patId('ws-prod/reporting');
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const oldTokenId = h.clouds.seeds.databricks.tokens['ws-prod/reporting']!.tokenId;
    const answer = await h.click('rotate', { alertId: alert.id, nonce: alert.nonce, grace: 'now', lifetimeDays: 3650 }, cardId, ALEX);
    expect(allText(answer.card)).toContain('Rotation in progress');
    const job = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    expect(job.plan.parameters).toMatchObject({ graceHours: 24, lifetimeDays: 90 });
    expect(job.dueAt! - Number(job.facts.verifiedAt)).toBeGreaterThanOrEqual(24 * HOUR_MS - 60_000);
    expect(ws.tokens({ includeRevoked: true }).find((t) => t.tokenId === oldTokenId)?.revoked).toBe(false);
    const ignored = h.store.listAudit({ subject: alert.id }).filter((a) => a.action === 'card.data-ignored');
    expect(ignored.at(-1)).toMatchObject({ actor: { aadObjectId: ALEX.aadObjectId }, details: { verb: 'rotate', keys: ['grace', 'lifetimeDays'] } });
  });

  it('the Rollback button goes away once the grace window ends and the old credential is revoked', async () => {
    const credentialId = patId('ws-prod/adf-etl');
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const rotation = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const offerMessage = await h.connector.waitFor((a) => a.threadRootId === cardId && allText(a.attachments).includes('"verb":"rollback"'));
    expect(h.store.get<ActionOffer>('approvals', `offer:${rotation.id}`)).toBeDefined();

    h.clock.advance(25 * HOUR_MS);
    await h.workflows.engine.tick();
    await h.waitForJob((j) => j.id === rotation.id && j.state === 'done');
    const updated = await h.connector.waitFor((a) => a.op === 'update' && a.activityId === offerMessage.activityId, 10_000);
    expect(verbsIn(allText(updated.attachments))).not.toContain('rollback');
    expect(allText(updated.attachments)).toMatch(/old token .* revoked|rollback is no longer possible/i);
    expect(verbsIn(shownCard(offerMessage.activityId))).not.toContain('rollback');
  }, 60_000);
});
