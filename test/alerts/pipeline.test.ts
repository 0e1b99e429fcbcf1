import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { KV_TAGS, MANAGED_BY_VALUE } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { AdjustableClock } from '../../src/clock.js';
import { cardIn, cardText, isDigest, START, startAlertsHarness, type AlertsHarness } from './harness.js';

/**
 * The real pipeline: the seeded sandbox estate scanned by the real providers and scanner, alerts posted through
 * the real ChatGateway into the Bot Connector emulator; then a PAT rotated by hand in the emulators.
 */

let clouds: SandboxClouds;
let h: AlertsHarness;
let scanner: Scanner;

beforeAll(async () => {
  // One clock for the product and every emulator.
  const clock = new AdjustableClock({ frozenAt: START });
  clouds = await startSandboxClouds({ clock });
  h = await startAlertsHarness({ clock, config: { ...clouds.config } });
  const { sources } = createInventorySources(h.config, { clock, retry: { maxRetries: 1, baseDelayMs: 5 } });
  scanner = createScanner({ sources, config: h.config, store: h.store, clock, logger: createLogger({ level: 'silent' }) });
  scanner.onScan(async (result) => { await h.alerts.onScan(result); });
}, 60_000);

afterAll(async () => {
  await scanner?.shutdown();
  await h?.close();
  await clouds?.close();
});

describe('alerts from a real scan of the sandbox estate', () => {
  it('posts one digest and cards for what expires within 14 days; Rotate only where Keywarden can rotate', async () => {
    const result = await scanner.runScan('command');
    expect(result.errors).toEqual([]);
    await h.drainAll(10 * 60_000);
    const activities = h.channelActivities();
    expect(activities.filter(isDigest)).toHaveLength(1);
    const cards = activities.filter((a) => !isDigest(a));
    const titles = cards.map((a) => JSON.stringify((cardIn(a)!.body as unknown[])[0]));
    expect(titles.some((t) => t.includes('Databricks PAT adf-etl'))).toBe(true);
    expect(titles.some((t) => t.includes('Key Vault secret storage-account-key has expired'))).toBe(true);
    const adfEtl = cards.find((a) => cardText(a).includes('Databricks PAT adf-etl'))!;
    expect(cardText(adfEtl)).toContain('"verb":"rotate"');
    const bob = cards.find((a) => cardText(a).includes('Databricks PAT bob-jdbc'));
    if (bob) expect(cardText(bob)).not.toContain('"verb":"rotate"'); // human-owned: not rotatable
    expect(h.connector.limitViolations()).toEqual([]);

    // A second scan with nothing changed sends nothing.
    const seq = h.connector.lastSeq;
    await scanner.runScan('command');
    await h.drainAll(10 * 60_000);
    expect(h.connector.lastSeq).toBe(seq);
  });

  it('a PAT rotated by hand (new token, new Key Vault version pointing at it) gets its card resolved', async () => {
    const ws = clouds.handles.databricks.workspace('ws-prod');
    const old = ws.tokens().find((t) => t.comment === 'adf-etl')!;
    const oldAlert = h.store.list<{ credentialId: string; credential: { name: string; where: { scope: string } }; message?: { activityId?: string } }>('alerts')
      .map((r) => r.value).find((a) => a.credential.name === 'adf-etl' && a.credential.where.scope === 'ws-prod')!;
    expect(oldAlert.message?.activityId).toBeDefined();

    h.clock.advance(20 * 60_000); // inside the cached access tokens' hour
    const fresh = ws.addToken({ ownerName: old.ownerName, comment: 'adf-etl', expiryTime: h.clock.now() + 90 * DAY_MS });
    clouds.handles.keyVault.vault('kv-prod').seedSecret('adb-prod-etl-token', {
      value: fresh.tokenValue, exp: h.clock.now() + 90 * DAY_MS,
      tags: { [KV_TAGS.managedBy]: MANAGED_BY_VALUE, [KV_TAGS.credentialKind]: 'databricks-pat', [KV_TAGS.credentialId]: fresh.tokenId, [KV_TAGS.workspace]: 'ws-prod' },
    });
    ws.revokeToken(old.tokenId);

    const seq = h.connector.lastSeq;
    const rescan = await scanner.runScan('command');
    expect(rescan.errors).toEqual([]);
    await h.drainAll(10 * 60_000);
    const update = h.connector.since(seq).find((a) => a.op === 'update' && a.activityId === oldAlert.message!.activityId);
    expect(update).toBeDefined();
    expect(cardText(update!)).toContain('Resolved');
    expect(cardText(update!)).toContain('kv-prod/adb-prod-etl-token now holds');
    expect(cardIn(update!)!.actions).toEqual([]);
    // No new post for the replacement token: it has 90 days.
    expect(h.connector.since(seq).filter((a) => a.op === 'post' && cardText(a).includes('adf-etl') && !isDigest(a))).toHaveLength(0);
  });
});
