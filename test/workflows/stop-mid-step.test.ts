import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * Keywarden stopping (a deploy, SIGTERM) while a rotation's step is talking to a cloud must hand the job over like a
 * crash does: the next process resumes it and the rotation completes. Stopping is not a failure: it must not undo the
 * rotation or tell the thread it failed.
 */

const OBO_CREATE = /\/api\/2\.0\/token-management\/on-behalf-of\/tokens$/;
let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

describe('stopping during a step', () => {
  it('leaves the rotation to the next process, which completes it with one new token', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-prod/adf-etl']!;
    const credentialId = `databricks-pat:ws-prod:${seeded.tokenId}`;
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const before = new Set(ws.tokens({ includeRevoked: true }).map((t) => t.tokenId));
    // The token creation is slow: Keywarden stops while it is in flight (the token is still made, a moment later).
    ws.injectFault({ method: 'POST', path: OBO_CREATE, status: 0, latencyMs: 1_500, times: 1 });
    const alert = h.alertFor(credentialId)!;
    const cardId = h.cardActivityId(credentialId);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, cardId, ALEX);
    // In flight: the create step has started and the workspace is holding a request (the slow one).
    const creating = () => h.jobs().some((j) => j.subject === credentialId && j.steps.find((s) => s.name === 'create')?.status === 'started') && ws.server.load.inFlight > 0;
    const started = Date.now();
    while (!creating()) {
      if (Date.now() - started > 10_000) throw new Error('the rotation never asked for a token');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(ws.requests().some((r) => OBO_CREATE.test(r.path))).toBe(false);
    await h.workflows.engine.stop();

    const handedBack = h.jobs().find((j) => j.kind === 'rotate-pat' && j.subject === credentialId)!;
    expect(handedBack.state).not.toBe('compensating');
    expect(handedBack.error).toBeUndefined();
    expect(handedBack.steps.find((s) => s.name === 'create')?.status).toBe('started');

    // The slow request lands after the process stopped; then the next process starts on the same store.
    await new Promise((r) => setTimeout(r, 1_700));
    await h.restart();
    const done = await h.passGraceWindow(credentialId);
    const finished = await h.waitForJob((j) => j.id === done.id && ['done', 'compensated', 'failed'].includes(j.state));
    expect(finished.state).toBe('done');
    const live = ws.tokens().filter((t) => !before.has(t.tokenId));
    expect(live).toHaveLength(1);
    expect(h.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-etl-token').at(-1)?.tags?.['credential-id']).toBe(live[0]!.tokenId);
    await h.connector.waitFor((a) => a.threadRootId === cardId && /verified, old token .* revoked at/.test(a.text ?? ''), 10_000);
    expect(h.connector.repliesTo(cardId).map((a) => a.text ?? '').join('\n')).not.toMatch(/fail|compensat|stopping/i);
  }, 60_000);
});
