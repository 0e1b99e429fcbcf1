import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { cardIn, cardText, cred, START, startAlertsHarness, type AlertsHarness } from './harness.js';

const SP = { name: 'sp-etl', kind: 'service-principal' as const, applicationId: '11111111-1111-4111-8111-000000000001', active: true };

describe('alerts resolve when the credential is dealt with, also outside Keywarden', () => {
  let h: AlertsHarness;
  afterEach(async () => { await h?.close(); });

  it('a PAT replaced out-of-band (new token, Key Vault secret now holds it) gets its card resolved in place, buttons gone', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    const ref = { vault: 'kv-prod', name: 'adb-prod-etl-token' };
    const oldPat = cred('databricks-pat', 'ws-prod', '1001', 5, { name: 'adf-etl', owner: SP, heldIn: [ref] });
    const secretV1 = cred('keyvault-secret', 'kv-prod', 'adb-prod-etl-token', 5, { holds: oldPat.id, attributes: { version: 'v1' } });
    await h.scan([oldPat, secretV1]);
    const patAlert = h.alertFor(oldPat.id)!;
    // One card per chain: the secret holding the PAT has no card of its own.
    expect(h.alertFor(secretV1.id)).toBeUndefined();
    const patPost = h.connector.postsIn(patAlert.message!.conversationId).find((a) => a.activityId === patAlert.message!.activityId)!;
    expect(cardText(patPost)).toContain('"verb":"rotate"');

    // Someone rotated by hand: new token 2002, new secret version whose tags point at it.
    h.clock.advance(DAY_MS);
    const newPat = cred('databricks-pat', 'ws-prod', '2002', 91, { name: 'adf-etl', owner: SP, heldIn: [ref], createdAt: h.clock.now() });
    const secretV2 = cred('keyvault-secret', 'kv-prod', 'adb-prod-etl-token', 91, { holds: newPat.id, attributes: { version: 'v2' }, createdAt: h.clock.now() });
    const before = h.connector.lastSeq;
    await h.scan([newPat, secretV2]);

    const sent = h.connector.since(before);
    expect(sent.map((a) => a.op)).toEqual(['update']);
    const patUpdate = sent.find((a) => a.activityId === patAlert.message!.activityId)!;
    const text = cardText(patUpdate);
    expect(text).toContain('Resolved');
    expect(text).toContain('Key Vault secret kv-prod/adb-prod-etl-token now holds Databricks PAT adf-etl');
    expect((cardIn(patUpdate)!.actions as unknown[])).toHaveLength(0);

    expect(h.alertFor(oldPat.id)!.state).toBe('resolved');
    // The new token is fine (91 days): no new alert, nothing more sent on rescans.
    expect(h.alertFor(newPat.id)).toBeUndefined();
    await h.scan([newPat, secretV2]);
    expect(h.connector.lastSeq).toBe(before + 1);
  });

  it('removed → resolved "no longer exists"; extended → resolved; an estate error proves nothing', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    const gone = cred('databricks-pat', 'ws-dev', '7', 3, { name: 'dev-ci' });
    const extended = cred('entra-password', 'hr-sync', 'key-1', 1, { name: 'hr-sync / ci' });
    const unseen = cred('keyvault-secret', 'kv-dev', 'api-key', 2);
    await h.scan([gone, extended, unseen]);
    expect(h.channelActivities().filter((a) => a.op === 'post')).toHaveLength(3);

    const before = h.connector.lastSeq;
    const later = { ...extended, expiresAt: START + 180 * DAY_MS };
    await h.scan([later], [], [{ estate: 'keyvault', scope: 'kv-dev', message: 'vault answered 503' }]);
    const sent = h.connector.since(before);
    expect(sent).toHaveLength(2);
    expect(sent.every((a) => a.op === 'update')).toBe(true);
    expect(sent.map(cardText).join()).toContain('no longer exists in ws-dev');
    expect(sent.map(cardText).join()).toContain('extended: now expires');
    expect(h.alertFor(unseen.id)!.state).toBe('open');
  });

  it('an estate-level error (Entra names the tenant, credentials name the app) resolves nothing', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    const entra = cred('entra-password', '11111111-1111-4111-8111-000000000004', 'key-9', 3, { name: 'legacy-crm / old' });
    await h.scan([entra]);
    const before = h.connector.lastSeq;
    await h.scan([], [], [{ estate: 'entra', scope: 'contoso-tenant', message: 'Graph answered 401' }]);
    expect(h.connector.lastSeq).toBe(before);
    expect(h.alertFor(entra.id)!.state).toBe('open');
  });

  it('resolve() (for workflows) updates the card in place and audits it', async () => {
    h = await startAlertsHarness({ alerts: { digest: false } });
    const pat = cred('databricks-pat', 'ws-prod', '1001', 5, { name: 'adf-etl', owner: SP, heldIn: [{ vault: 'kv-prod', name: 'x' }] });
    await h.scan([pat]);
    const alert = h.alertFor(pat.id)!;
    h.alerts.setProgress(alert.id, 'Rotation started by Alex Wilber');
    await h.drainAll(0);
    expect(cardText(h.connector.updatesOf(alert.message!.activityId!).at(-1)!)).toContain('Rotation started by Alex Wilber');
    h.alerts.resolve(alert.id, { kind: 'rotated', text: 'rotated by Keywarden (job j-1)', at: h.clock.now(), by: { name: 'Alex Wilber' } });
    await h.drainAll(0);
    const last = h.connector.updatesOf(alert.message!.activityId!).at(-1)!;
    expect(cardText(last)).toContain('Resolved by Alex Wilber');
    expect(cardText(last)).not.toContain('Rotation started');
    expect(h.store.listAudit({ subject: alert.id }).map((e) => e.action)).toContain('alert.resolved');
  });
});
