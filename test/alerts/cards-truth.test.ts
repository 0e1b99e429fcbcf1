import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionOffer } from '../../src/approvals/types.js';
import { DAY_MS } from '../../src/clock.js';
import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';
import { ALEX, MEGAN, SUPPORT_CHANNEL, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cardIn, isDigest } from './harness.js';

/**
 * Issue 10, points 1–4 and 13, over the Bot Framework protocol against the sandbox estate: what the support channel
 * sees after a scan, a Rotate click, a rescan in the grace window, a Rollback, and /expiring and /findings.
 */

let h: WorkflowHarness;
const cloudNow = Date.now();

/** Top-level posts in the support channel (alert cards and digests), in order. */
const posts = (): ConnectorActivity[] => h.connector.activities.filter((a) => a.conversationId === SUPPORT_CHANNEL.id && a.op === 'post');
const alertPosts = (since = 0): ConnectorActivity[] => posts().filter((a) => a.seq > since && a.attachments.length > 0 && !isDigest(a));
const headline = (a: ConnectorActivity): string => String(((cardIn(a) as { body: Array<{ text?: string }> }).body.find((b) => b.text && !b.text.startsWith('${'))?.text) ?? '');
/** The card as the channel shows it now: the last update of the post, or the post itself. */
const currentCard = (activityId: string): string => {
  const updates = h.connector.updatesOf(activityId);
  const post = h.connector.activities.find((a) => a.op === 'post' && a.activityId === activityId);
  return allText((updates.at(-1) ?? post)?.attachments);
};
const patId = (key: string): string => {
  const seeded = h.clouds.seeds.databricks.tokens[key]!;
  return `databricks-pat:${key.split('/')[0]}:${seeded.tokenId}`;
};
async function deliver(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    await h.alerts.delivery.idle();
    const report = await h.alerts.tick();
    if (report.nextDueAt === undefined && report.sent === 0) break;
    if (report.nextDueAt !== undefined) h.clock.advanceTo(report.nextDueAt);
  }
  await h.alerts.delivery.idle();
}
async function ask(text: string): Promise<string> {
  const { replies } = await h.command(text, ALEX);
  return allText(replies[0]!.attachments.length ? replies[0]!.attachments : replies[0]!.text);
}

beforeAll(async () => {
  h = await startWorkflowHarness();
  const kvDev = h.clouds.handles.keyVault.vault('kv-dev');
  const kvProd = h.clouds.handles.keyVault.vault('kv-prod');
  // A torn-down JIT secret: disabled, its expiry passed.
  kvDev.seedSecret('jit-req42-token', { value: 'torn-down', enabled: false, exp: cloudNow - 2 * DAY_MS, tags: { 'managed-by': 'keywarden' } });
  // bob-jdbc's secret says +60 d while the token expires in 14: the mismatch belongs on bob-jdbc's card.
  kvProd.seedSecret('adb-prod-bob-pipeline', { value: kvProd.readStoredValue('adb-prod-bob-pipeline')!, exp: cloudNow + 60 * DAY_MS });
  // PATs switched off in ws-analytics; a ws-dev token whose lifetime is the 90-day maximum and half a second.
  h.clouds.handles.databricks.workspace('ws-analytics').setConf({ enableTokensConfig: 'false' });
  const created = cloudNow - DAY_MS;
  h.clouds.handles.databricks.workspace('ws-dev').addToken({ ownerName: 'bob.dev@contoso.com', comment: 'halfsec', createdAt: created, expiryTime: created + 90 * DAY_MS + 500 });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('2. one card per credential chain', () => {
  it('a Key Vault secret holding a PAT or client secret gets no card of its own; the held credential\'s card names it and shows its findings', () => {
    const heads = alertPosts().map(headline);
    for (const secret of ['adb-prod-etl-token', 'adb-dev-ci-token', 'adb-prod-bob-pipeline', 'etl-ingest-client-secret']) {
      expect(heads.filter((t) => t.includes(secret))).toEqual([]);
    }
    expect(heads.sort()).toEqual([
      '⚠️ Databricks PAT bob-jdbc expires in 14 days', '⚠️ Databricks PAT carol-notebook needs attention', '⚠️ Databricks PAT legacy-never needs attention',
      '⚠️ Entra client secret etl-ingest / etl-ingest-2026 expires in 14 days', '⛔ Databricks PAT expired-etl has expired',
      '⛔ Entra client secret legacy-crm / legacy-crm-secret has expired', '⛔ Key Vault secret storage-account-key has expired',
      '🔴 Databricks PAT adf-etl expires in 7 days', '🔴 Databricks PAT dev-ci expires in 1 day', '🔴 Entra certificate partner-sftp / CN=partner-sftp.contoso.com expires in 7 days',
      '🔴 Entra client secret hr-sync / hr-sync-secret expires in 1 day', '🔴 Key Vault secret sql-admin-password expires in 1 day',
    ].sort());
    const bob = currentCard(h.cardActivityId(patId('ws-prod/bob-jdbc')));
    expect(bob).toContain('held in kv-prod/adb-prod-bob-pipeline');
    expect(bob).toMatch(/Key Vault secret kv-prod\/adb-prod-bob-pipeline says it expires \d{4}-\d\d-\d\d, but the Databricks PAT it holds \(bob-jdbc in ws-prod\)/);
    expect(currentCard(h.cardActivityId(patId('ws-prod/adf-etl')))).toContain('held in kv-prod/adb-prod-etl-token');
  });
});

describe('3. disabled credentials are not "expired"', () => {
  it('a disabled Key Vault secret raises no card, and /expiring lists it only on request, as disabled', async () => {
    expect(alertPosts().map(headline).filter((t) => t.includes('jit-req42-token'))).toEqual([]);
    const plain = await ask('/expiring 30d');
    expect(plain).not.toContain('jit-req42-token');
    expect(plain).toContain('3 disabled not shown');
    const asked = await ask('/expiring 30d disabled');
    expect(asked).toMatch(/jit-req42-token — Key Vault secret/);
    expect(asked).toMatch(/disabled · expired 2 days ago/);
    // A workspace with PATs switched off: its tokens are disabled too, and say why.
    expect(await ask('/expiring 60d pat disabled')).toContain('disabled (personal access tokens are disabled in ws-analytics)');
    // /help says how to ask for them.
    const help = await ask('/help expiring');
    expect(help).toContain('/expiring [N d] [pat|secret|sp|all] [disabled] [name filter]');
    expect(help).toContain('Disabled credentials are left out unless you add \\"disabled\\"');
  }, 30_000);
});

describe('13. workspace-conf findings', () => {
  it('/findings names a workspace without maxTokenLifetimeDays and one with PATs disabled; 90 days and half a second is not over 90', async () => {
    const text = await ask('/findings');
    expect(text).toContain('no-max-token-lifetime — ws-prod (databricks)');
    expect(text).not.toContain('no-max-token-lifetime — ws-dev');
    expect(text).not.toContain('no-max-token-lifetime — ws-analytics');
    expect(text).toContain('tokens-disabled — ws-analytics (databricks)');
    expect(text).toMatch(/Personal access tokens are disabled in ws-analytics \(workspace-conf enableTokensConfig is \\"false\\"\): its 7 tokens cannot authenticate/);
    expect(text).toContain('lifetime-too-long — long-lived');
    expect(text).not.toContain('lifetime-too-long — halfsec');
  }, 30_000);
});

describe('1. a credential in its rotation grace window is not re-alerted', () => {
  it('after Rotate on adf-etl, a rescan posts no new card for the old token; card, /expiring and digest say when it is revoked', async () => {
    const credentialId = patId('ws-prod/adf-etl');
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    await deliver();
    const before = h.connector.lastSeq;

    // Something new elsewhere, so the rescan sends a digest too.
    h.clouds.handles.keyVault.vault('kv-dev').seedSecret('partner-new-key', { value: 'not-a-credential', exp: cloudNow + 3 * DAY_MS });
    await h.scanAndDeliver();

    const fresh = alertPosts(before).map(headline);
    expect(fresh).toEqual(['🔴 Key Vault secret partner-new-key expires in 3 days']);
    const card = currentCard(cardId);
    expect(card).toContain('✅ Resolved: Databricks PAT adf-etl');
    expect(card).toMatch(/rotated — old token revoked at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    const digest = posts().find((a) => a.seq > before && isDigest(a));
    expect(allText(digest?.attachments)).toMatch(/\*\*adf-etl\*\* · Databricks PAT · ws-prod · owner sp-etl \(service principal\) · rotated — old token revoked at \d{4}-/);
    expect(await ask('/expiring 14d')).toMatch(/"title":"Expires","value":"rotated — old token revoked at \d{4}-/);
  }, 60_000);
});

describe('4. after Rollback the card shows the rolled-back state', () => {
  it('the card no longer says "Resolved: rotated"; it shows the rollback and the current credential\'s expiry, and Rotate again', async () => {
    const credentialId = patId('ws-dev/dev-ci');
    const alert = await h.freshAlert(credentialId);
    const cardId = h.cardActivityId(credentialId);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    const rotation = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const offerMessage = await h.connector.waitFor((a) => a.threadRootId === cardId && allText(a.attachments).includes('"verb":"rollback"'));
    await deliver();
    expect(currentCard(cardId)).toContain('Resolved');

    const offer = h.store.get<ActionOffer>('approvals', `offer:${rotation.id}`)!.value;
    await h.click('rollback', { jobId: rotation.id, nonce: offer.nonce }, offerMessage.activityId, MEGAN);
    await h.waitForJob((j) => j.kind === 'rollback' && j.state === 'done');
    await h.connector.waitFor((a) => a.threadRootId === cardId && /^rolled back: /.test(a.text ?? ''));
    await deliver();

    const card = currentCard(cardId);
    expect(card).not.toContain('Resolved');
    expect(card).toContain('🔴 Databricks PAT dev-ci expires in 1 day');
    expect(card).toMatch(/"title":"Expires","value":"in \d+ hours? \(\d{4}-/);
    expect(card).toMatch(/Rotation rolled back by Megan Bowen at \d{4}-\d\d-\d\d \d\d:\d\d UTC: rolled back: Key Vault kv-dev\/adb-dev-ci-token holds the previous value again/);
    expect(card).toContain('"verb":"rotate"');

    // The next scan keeps that one card: nothing new is posted for dev-ci.
    const before = h.connector.lastSeq;
    await h.scanAndDeliver();
    expect(alertPosts(before).map(headline).filter((t) => t.includes('dev-ci'))).toEqual([]);
    expect(h.alertFor(credentialId)?.id).toBe(alert.id);
  }, 60_000);
});
