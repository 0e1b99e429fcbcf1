import { describe, expect, it } from 'vitest';
import { isRotatable, renderAlertCard, renderDetailsCard, renderDigestCard } from '../../src/alerts/cards.js';
import { buildDigest } from '../../src/alerts/digest.js';
import type { AlertRecord } from '../../src/alerts/types.js';
import { cardSize, CARD_SIZE_BUDGET_BYTES } from '../../src/cards/render.js';
import { DAY_MS } from '../../src/clock.js';
import type { Credential, Finding } from '../../src/domain/credential.js';
import { cred, START } from './harness.js';

const SP = { name: 'sp-etl', kind: 'service-principal' as const, active: true };

function alertOf(c: Credential, over: Partial<AlertRecord> = {}): AlertRecord {
  return {
    id: 'alert-1', credentialId: c.id, credential: c, findings: [], threshold: 7, card: true, state: 'open',
    nonce: 'nonce-1', nonceIssuedAt: START, channel: 'config:support', revision: 1, deliveredRevision: 0,
    history: [{ at: START, event: 'opened', text: 'alert opened' }], createdAt: START, updatedAt: START, ...over,
  };
}

type Action = { type: string; verb?: string; data?: Record<string, unknown>; card?: { actions: Action[] } };

function actionsOf(card: Record<string, unknown>): Action[] {
  const top = card.actions as Action[];
  return [...top, ...top.flatMap((a) => a.card?.actions ?? [])];
}

describe('alert cards', () => {
  it('offer Rotate only for SP-owned PATs and Entra passwords held in Key Vault, Revoke only where Keywarden can revoke', () => {
    const held = [{ vault: 'kv-prod', name: 's' }];
    expect(isRotatable(cred('databricks-pat', 'ws', '1', 5, { owner: SP, heldIn: held }))).toBe(true);
    expect(isRotatable(cred('databricks-pat', 'ws', '1', 5, { owner: { name: 'bob', kind: 'user' }, heldIn: held }))).toBe(false);
    expect(isRotatable(cred('databricks-pat', 'ws', '1', 5, { owner: SP }))).toBe(false);
    expect(isRotatable(cred('entra-password', 'app', 'k', 5, { heldIn: held }))).toBe(true);
    expect(isRotatable(cred('keyvault-secret', 'kv', 's', 5))).toBe(false);
    const verbs = (c: Credential) => actionsOf(renderAlertCard(alertOf(c), START)).map((a) => a.verb ?? a.type);
    expect(verbs(cred('databricks-pat', 'ws', '1', 5, { owner: SP, heldIn: held }))).toEqual(['rotate', 'autoRotate', 'revoke', 'details', 'Action.ShowCard', 'Action.ShowCard', 'acknowledge', 'snooze']);
    // A rule in force: the card names it instead of offering another.
    const covered = renderAlertCard(alertOf(cred('databricks-pat', 'ws', '1', 5, { owner: SP, heldIn: held })), START, { autoRotation: 'rule R1 — 14 days before expiry (approved by Alex Wilber, Megan Bowen)' });
    expect(actionsOf(covered).map((a) => a.verb ?? a.type)).not.toContain('autoRotate');
    expect(JSON.stringify(covered)).toContain('{"title":"Auto-rotation","value":"rule R1 — 14 days before expiry (approved by Alex Wilber, Megan Bowen)"}');
    expect(verbs(cred('keyvault-secret', 'kv', 's', 5))).toEqual(['details', 'Action.ShowCard', 'Action.ShowCard', 'acknowledge', 'snooze']);
    expect(verbs(cred('entra-certificate', 'app', 'c', 5))).toEqual(['details', 'Action.ShowCard', 'Action.ShowCard', 'acknowledge', 'snooze']);
    expect(verbs(cred('entra-password', 'app', 'k', 5, { attributes: { objectId: 'o1' } }))).toContain('revoke');
  });

  it('carry only the alert id and nonce in button data; version 1.5 Action.Execute; snooze date bounded by the configured maximum', () => {
    const card = renderAlertCard(alertOf(cred('keyvault-secret', 'kv', 's', 5)), START, { snoozeMaxDays: 10 });
    expect(card.version).toBe('1.5');
    for (const a of actionsOf(card).filter((x) => x.type === 'Action.Execute')) expect(a.data).toEqual({ alertId: 'alert-1', nonce: 'nonce-1' });
    const form = JSON.stringify(card);
    expect(form).toContain(`"max":"${new Date(START + 10 * DAY_MS).toISOString().slice(0, 10)}"`);
  });

  it('show kind, name, where, owner, expiry (relative + absolute), findings, consumers, and the status line', () => {
    const c = cred('databricks-pat', 'ws-prod', '42', 5, {
      name: 'bob-jdbc', owner: { name: 'bob.dev@contoso.com', kind: 'user', active: true }, heldIn: [{ vault: 'kv-prod', name: 'adb-prod-bob-pipeline' }],
      consumers: [{ kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_Prod', pipelines: ['bob-reports'] }],
    });
    const finding: Finding = { code: 'human-owned-pipeline', severity: 'high', credentialId: c.id, scope: 'ws-prod', estate: 'databricks', message: 'A pipeline runs as a person.', remedy: 'Use an SP token.' };
    const text = JSON.stringify(renderAlertCard(alertOf(c, { findings: [finding], state: 'acknowledged', acknowledged: { by: { name: 'Megan Bowen' }, at: START } }), START));
    for (const s of ['Databricks PAT', 'bob-jdbc', 'ws-prod · held in kv-prod/adb-prod-bob-pipeline', 'bob.dev@contoso.com (user)', 'in 5 days (2026-04-06 09:00 UTC)',
      '7-day warning', 'HIGH · A pipeline runs as a person.', 'Data Factory adf-prod / LS_Databricks_Prod → pipelines bob-reports', 'Acknowledged by Megan Bowen at 2026-04-01 09:00 UTC']) {
      expect(text).toContain(s);
    }
  });

  it('a resolved card says what happened and has no buttons; an urgent one carries the mention entity', () => {
    const c = cred('keyvault-secret', 'kv', 's', 5);
    const resolved = renderAlertCard(alertOf(c, { state: 'resolved', resolution: { kind: 'removed', text: 'no longer exists in kv', at: START } }), START);
    expect(resolved.actions).toEqual([]);
    expect(JSON.stringify(resolved)).toContain('Resolved at 2026-04-01 09:00 UTC: no longer exists in kv');
    const urgent = renderAlertCard(alertOf(c), START, { mentions: [{ aadObjectId: 'oid-1', name: 'Alex' }] });
    expect(urgent.msteams).toMatchObject({ entities: [{ type: 'mention', text: '<at>Alex</at>', mentioned: { id: 'oid-1', name: 'Alex' } }] });
    expect(JSON.stringify(urgent.body)).toContain('<at>Alex</at>');
  });

  it('stay under the Teams size budget with many findings and consumers; details list every finding with its fix', () => {
    const c = cred('keyvault-secret', 'kv', 's', 5, {
      consumers: Array.from({ length: 60 }, (_, i) => ({ kind: 'adf-linked-service' as const, factory: 'adf-prod', name: `LS_${i}_${'x'.repeat(40)}`, pipelines: ['p1', 'p2', 'p3'] })),
    });
    const findings: Finding[] = Array.from({ length: 40 }, (_, i) => ({ code: 'not-rotated', severity: 'high', credentialId: c.id, scope: 'kv', estate: 'keyvault', message: `finding ${i} ${'y'.repeat(80)}`, remedy: `fix ${i}` }));
    const card = renderAlertCard(alertOf(c, { findings }), START);
    expect(cardSize(card)).toBeLessThan(CARD_SIZE_BUDGET_BYTES);
    expect(JSON.stringify(card)).toContain('…and 32 more (Details)');
    const details = JSON.stringify(renderDetailsCard(alertOf(c, { findings: findings.slice(0, 3) }), START));
    expect(details).toContain('Fix: fix 2');
  });

  it('digest: counts by urgency and kind, two charts with fallbacks, most urgent rows first', () => {
    const alerts = [
      alertOf(cred('keyvault-secret', 'kv', 'late', 20), { id: 'a', threshold: 30 }),
      alertOf(cred('databricks-pat', 'ws', 'gone', -1), { id: 'b', threshold: 'expired' }),
      alertOf(cred('entra-password', 'app', 'soon', 0.5), { id: 'c', threshold: 1 }),
    ];
    const digest = buildDigest(alerts, { scanId: 's1', channel: 'config:support', newCount: 3, now: START });
    expect(digest.byUrgency).toEqual([{ urgency: 'expired', count: 1 }, { urgency: '≤ 1 day', count: 1 }, { urgency: '≤ 30 days', count: 1 }]);
    expect(digest.items.map((i) => i.name)).toEqual(['gone', 'soon', 'late']);
    const card = renderDigestCard(digest);
    const body = card.body as Array<{ type: string; fallback?: string; data?: unknown[] }>;
    expect(body.find((b) => b.type === 'Chart.Donut')).toMatchObject({ fallback: 'drop', data: [{ legend: 'expired', value: 1 }, { legend: '≤ 1 day', value: 1 }, { legend: '≤ 30 days', value: 1 }] });
    expect(body.find((b) => b.type === 'Chart.VerticalBar')?.data).toHaveLength(3);
    expect(JSON.stringify(card)).toContain('3 credentials need attention (3 new)');
  });
  it('digest charts use only the named colours the Adaptive Cards chart renderer knows (an unknown name falls back to the text colour)', () => {
    const known = /^(categorical(Red|Purple|Lavender|Blue|LightBlue|Teal|Green|Lime|Marigold)|sequential[1-8]|diverging(Blue|LightBlue|Cyan|Teal|Yellow|Peach|LightRed|Red|Maroon|Gray))$/;
    const alerts = [
      alertOf(cred('keyvault-secret', 'kv', 'month', 20), { id: 'a', threshold: 30 }),
      alertOf(cred('keyvault-secret', 'kv', 'fortnight', 10), { id: 'b', threshold: 14 }),
      alertOf(cred('databricks-pat', 'ws', 'week', 5), { id: 'c', threshold: 7 }),
      alertOf(cred('entra-password', 'app', 'day', 0.5), { id: 'd', threshold: 1 }),
      alertOf(cred('databricks-pat', 'ws', 'gone', -1), { id: 'e', threshold: 'expired' }),
    ];
    const card = renderDigestCard(buildDigest(alerts, { scanId: 's1', channel: 'config:support', newCount: 5, now: START }));
    const colours = [...JSON.stringify(card).matchAll(/"color":"([^"]+)"/g)].map((m) => m[1]!)
      .filter((c) => !/^(Default|Good|Warning|Attention|Accent|Light|Dark)$/.test(c));
    expect(colours.length).toBeGreaterThan(0);
    expect(colours.filter((c) => !known.test(c))).toEqual([]);
  });
});
