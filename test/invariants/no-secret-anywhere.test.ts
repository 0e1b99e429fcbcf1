import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionOffer, JitRequestRecord } from '../../src/approvals/types.js';
import { HOUR_MS, MINUTE_MS } from '../../src/clock.js';
import type { Collection } from '../../src/store/store.js';
import { ALEX, MEGAN, allText, startWorkflowHarness, type InvokeAnswer, type User, type WorkflowHarness } from '../workflows/harness.js';
import { collectCanaries, findLeaks, recordMintedEntraSecrets } from './canaries.js';

/**
 * Invariant: no secret value ever reaches a card, message, log, audit record, error or snapshot.
 * One canary run through the whole product over HTTP — scan, PAT rotation (with a Key Vault write failing first),
 * Entra secret rotation (across replication delay), a rotation that fails verification and compensates, rollback,
 * revoke, JIT request → approval → teardown — with debug logging captured. Then every secret value the clouds hold
 * or minted (read from the emulators, not through Keywarden) is searched for, whole and in part, everywhere
 * Keywarden writes: chat, logs, every store collection, the audit log, the raw SQLite file and its WAL, /metrics,
 * /readyz, and every error and answer text.
 */

const COLLECTIONS: Collection[] = ['conversations', 'alerts', 'alert-claims', 'deliveries', 'approvals', 'jobs', 'snapshots', 'settings', 'outbox', 'outbox-index'];
const TERMINAL = ['done', 'compensated', 'failed', 'cancelled'];

let h: WorkflowHarness;
let minted: string[];
/** Everything Keywarden answered to a click or command (refusals and errors included). */
const answers: unknown[] = [];

beforeAll(async () => {
  h = await startWorkflowHarness({
    propagationDelayMs: 1500,
    config: { alerts: { cardAtDays: 31 }, workflows: { jit: { maxHours: 4, maxCapacity: 5, vault: 'kv-prod' } } },
  });
  minted = recordMintedEntraSecrets(h.clouds);
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

async function click(verb: string, data: Record<string, unknown>, activityId: string, user: User): Promise<InvokeAnswer> {
  const answer = await h.click(verb, data, activityId, user);
  answers.push(answer);
  return answer;
}

async function rotate(credentialId: string) {
  const alert = await h.freshAlert(credentialId);
  const answer = await click('rotate', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(credentialId), ALEX);
  expect(allText(answer.card)).toContain('in progress — approved by Alex Wilber');
}

describe('no secret value anywhere (canary run)', () => {
  it('runs every action, then finds no secret, whole or partial, in anything Keywarden wrote', async () => {
    const seeds = h.clouds.seeds;
    const prod = h.clouds.handles.databricks.workspace('ws-prod');
    const kvProd = h.clouds.handles.keyVault.vault('kv-prod');

    // 1. PAT rotation; its first Key Vault write fails (the request that carries the value errors out).
    const etlPat = `databricks-pat:ws-prod:${seeds.databricks.tokens['ws-prod/adf-etl']!.tokenId}`;
    h.clouds.handles.keyVault.injectFault({ method: 'PUT', path: '/secrets/adb-prod-etl-token', status: 500, times: Infinity }, 'kv-prod');
    await rotate(etlPat);
    await h.waitForJob((j) => j.subject === etlPat && j.steps.some((s) => s.name === 'set' && s.status === 'failed'));
    h.clouds.handles.keyVault.clearFaults();
    await h.passGraceWindow(etlPat); // card data cannot skip the grace window: wait it out so the old token is revoked
    const patJob = await h.waitForJob((j) => j.subject === etlPat && TERMINAL.includes(j.state), 60_000);
    expect(patJob.state).toBe('done');

    // 2. Entra client secret rotation (refused while it replicates, then accepted).
    const etl = seeds.entra.etlSecret;
    const entraId = `entra-password:${etl.appId}:${etl.keyId}`;
    await rotate(entraId);
    await h.passGraceWindow(entraId);
    const entraJob = await h.waitForJob((j) => j.subject === entraId && TERMINAL.includes(j.state), 60_000);
    expect(entraJob.state).toBe('done');
    expect(minted.length).toBeGreaterThanOrEqual(1);

    // 3. A rotation whose new token fails verification: compensation restores the previous value through Key Vault.
    const reporting = `databricks-pat:ws-prod:${seeds.databricks.tokens['ws-prod/reporting']!.tokenId}`;
    // "reporting" is scoped (sql, jobs:read): its new token is verified by reading it back through token-management.
    const reportingId = seeds.databricks.tokens['ws-prod/reporting']!.tokenId;
    prod.injectFault({ method: 'GET', path: new RegExp(`/api/2\\.0/token-management/tokens/(?!${reportingId})`), status: 403, times: Infinity, body: { error_code: 'PERMISSION_DENIED', message: 'Invalid access token.' } });
    try {
      await rotate(reporting);
      const failed = await h.waitForJob((j) => j.subject === reporting && TERMINAL.includes(j.state), 60_000);
      expect(failed.state).toBe('compensated');
    } finally {
      prod.clearFaults();
    }

    // 4. Rotation in its grace window, then Rollback.
    const devCi = `databricks-pat:ws-dev:${seeds.databricks.tokens['ws-dev/dev-ci']!.tokenId}`;
    await rotate(devCi);
    const rotation = await h.waitForJob((j) => j.subject === devCi && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    const offerMessage = await h.connector.waitFor((a) => a.threadRootId === h.cardActivityId(devCi) && allText(a.attachments).includes('"verb":"rollback"'));
    const offer = h.store.get<ActionOffer>('approvals', `offer:${rotation.id}`)!.value;
    expect(allText((await click('rollback', { jobId: rotation.id, nonce: offer.nonce }, offerMessage.activityId, MEGAN)).card)).toContain('Rollback in progress');
    expect((await h.waitForJob((j) => j.kind === 'rollback' && TERMINAL.includes(j.state))).state).toBe('done');

    // 5. Revoke a user-owned PAT (justification; a second approver when the rules ask for one).
    const bob = `databricks-pat:ws-prod:${seeds.databricks.tokens['ws-prod/bob-jdbc']!.tokenId}`;
    const bobAlert = await h.freshAlert(bob);
    const first = await click('revoke', { alertId: bobAlert.id, nonce: bobAlert.nonce, confirmed: true, justification: 'canary run INC-1', overrideReason: 'canary run' }, h.cardActivityId(bob), ALEX);
    const confirm = (first.card?.actions as Array<{ verb?: string; data?: Record<string, unknown> }> | undefined)?.find((a) => a.verb === 'confirm');
    if (confirm) await click('confirm', confirm.data!, h.cardActivityId(bob), MEGAN);
    expect((await h.waitForJob((j) => j.subject === bob && TERMINAL.includes(j.state))).state).toBe('done');

    // 6. JIT: request, approval, ready, teardown at TTL.
    const { replies } = await h.command('/jit ws-prod 2 Standard_DS3_v2 3 -- canary run', ALEX);
    answers.push(replies);
    const request = h.store.list<JitRequestRecord>('approvals', { prefix: 'jitreq:' })[0]!.value;
    await click('jitApprove', { requestId: request.requestId, nonce: request.nonce }, replies[0]!.activityId, MEGAN);
    await h.waitForJob((j) => j.kind === 'jit' && j.state === 'waiting' && typeof j.facts.readyAt === 'number');
    expect(kvProd.readStoredValue(`jit-${request.requestId}-token`)).toMatch(/^dapi/);
    h.clock.advance(2 * HOUR_MS + MINUTE_MS);
    expect((await h.waitForJob((j) => j.kind === 'jit' && TERMINAL.includes(j.state), 30_000)).state).toBe('done');

    // Read-side commands render cards from everything above (hints, audit entries).
    for (const text of ['/audit', `/audit ${entraId}`, '/expiring 90d', '/findings']) answers.push((await h.command(text, ALEX)).replies);
    await h.alerts.tick();
    await h.alerts.delivery.idle();

    // ---- the canaries: every secret value in the clouds now, read from the emulators ----
    const canaries = collectCanaries(h.clouds, minted);
    const made = h.clouds.handles.databricks.workspaces.flatMap((ws) => ws.tokens({ includeRevoked: true })).filter((t) => /keywarden rotation|keywarden-jit:/.test(t.comment));
    expect(made.length).toBeGreaterThanOrEqual(4); // rotated, compensated, rolled back, JIT
    expect(canaries.length).toBeGreaterThan(20);

    const metrics = await (await fetch(`${h.botUrl}/metrics`)).text();
    const readyz = await (await fetch(`${h.botUrl}/readyz`)).text();
    expect(metrics).toContain('keywarden_actions_total');
    const jobs = h.jobs();
    const errors = jobs.flatMap((j) => [j.error?.message, j.waitingFor, j.compensation?.error, ...j.steps.flatMap((s) => [s.error, ...(s.notes ?? [])])]).filter(Boolean);
    expect(errors.length).toBeGreaterThan(0); // the failures above left error text to check
    const dbPath = h.config.store.path;
    const haystacks: Record<string, string | Buffer> = {
      'connector activities (cards and messages)': allText(h.connector.activities),
      'log lines': h.logLines.join('\n'),
      'audit log': allText(h.store.listAudit()),
      'job and step errors': errors.join('\n'),
      'click and command answers': allText(answers),
      '/metrics': metrics,
      '/readyz': readyz,
      'SQLite file (raw bytes)': readFileSync(dbPath),
      ...(existsSync(`${dbPath}-wal`) ? { 'SQLite WAL (raw bytes)': readFileSync(`${dbPath}-wal`) } : {}),
    };
    for (const c of COLLECTIONS) haystacks[`store collection ${c}`] = allText(h.store.list(c));
    expect(h.keywarden.logger.isLevelEnabled('debug')).toBe(true); // everything down to debug was captured
    expect(h.logLines.length).toBeGreaterThan(0);

    expect(findLeaks(canaries, haystacks)).toEqual([]);

    // Entra hints: Graph's 3-character hint is the only fragment of a secret Keywarden shows or keeps.
    const alerts = h.store.list<{ credential: { kind: string; nativeId: string; attributes: Record<string, unknown> } }>('alerts').map((r) => r.value.credential);
    const hints = alerts.filter((c) => c.kind === 'entra-password').map((c) => c.attributes.hint);
    expect(hints.length).toBeGreaterThan(0);
    for (const hint of hints) expect(hint === null || (typeof hint === 'string' && hint.length <= 3)).toBe(true);
    expect(alerts.find((c) => c.nativeId === etl.keyId)?.attributes.hint).toBe(etl.value.slice(0, 3));

    // Entra access tokens are secrets too: no JWT in chat, logs, the store or its files.
    const jwt = /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./;
    for (const [place, hay] of Object.entries(haystacks)) expect({ place, jwt: jwt.test(hay.toString('latin1')) }).toEqual({ place, jwt: false });
  }, 240_000);
});
