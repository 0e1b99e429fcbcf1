import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { cardSize, CARD_SIZE_BUDGET_BYTES } from '../../src/cards/render.js';
import { expiringCommand, expiringPageAction } from '../../src/commands/expiring.js';
import { findingsCommand } from '../../src/commands/findings.js';
import { scanCommand } from '../../src/commands/scan.js';
import type { AdaptiveCard, ChatContext, Reply } from '../../src/domain/chat.js';
import type { EstateInventory } from '../../src/domain/credential.js';
import { credentialId } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { createScanner, type InventorySource, type Scanner } from '../../src/scanner/scanner.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { defaultConfig } from '../domain/fixtures.js';
import { EXPIRING_14D, SEED_MAPPINGS, seedLikeSources } from './estate-fixture.js';

const clock = new AdjustableClock({ frozenAt: Date.UTC(2026, 3, 1, 9, 0) });
const logger = createLogger({ level: 'silent' });
const ctx = (aadObjectId?: string): ChatContext => ({
  actor: { userId: '29:x', name: 'Alex', aadObjectId },
  conversation: { conversationId: '19:c@thread.tacv2', serviceUrl: 'https://smba', tenantId: 't', kind: 'channel' },
});
let store: Store;
let scanner: Scanner;

function setup(sources: InventorySource[] = seedLikeSources(clock.now())) {
  store = openSqliteStore({ path: ':memory:', clock });
  scanner = createScanner({ sources, config: defaultConfig({ keyVault: { mappings: SEED_MAPPINGS } }), store, clock, logger });
}
beforeEach(() => setup());
afterEach(async () => {
  await scanner.shutdown();
  store.close();
});

const deps = () => ({ scans: scanner, clock });
const cardOf = (r: Reply): AdaptiveCard => {
  if (r.kind !== 'card') throw new Error(`expected a card, got ${JSON.stringify(r)}`);
  return r.card;
};
type Node = Record<string, unknown>;
function walk(node: unknown, out: Node[] = []): Node[] {
  if (Array.isArray(node)) node.forEach((n) => walk(n, out));
  else if (node && typeof node === 'object') {
    out.push(node as Node);
    Object.values(node).forEach((v) => walk(v, out));
  }
  return out;
}
const rowHeadings = (card: AdaptiveCard) => walk(card.body)
  .filter((n) => n.type === 'TextBlock' && typeof n.text === 'string' && /^\d+\. /.test(n.text))
  .map((n) => (n.text as string).replace(/^\d+\. /, '').replace(/ — [^—]+$/, ''));

describe('/expiring', () => {
  it('14d lists exactly what expires within 14 days, most urgent first, with a chart of expiries per week', async () => {
    const card = cardOf(await expiringCommand(deps()).handle('14d', ctx()));
    expect(rowHeadings(card)).toEqual(EXPIRING_14D);
    const chart = walk(card.body).find((n) => n.type === 'Chart.Line')!;
    const lines = chart.data as Array<{ values: Array<{ x: string; y: number }> }>;
    const totals = Object.fromEntries(lines[lines.length - 1]!.values.map((v) => [v.x, v.y]));
    expect(totals).toEqual({ Expired: 3, 'Apr 1': 3, 'Apr 8': 4 });
    expect(chart).toMatchObject({ yMin: 0, yMax: 4, yAxisTitle: 'Credentials', xAxisTitle: 'Week starting (UTC)' });
    expect((chart.fallback as Node).type).toBe('TextBlock');
    expect(card.version).toBe('1.5');
    expect(cardSize(card)).toBeLessThan(CARD_SIZE_BUDGET_BYTES);
  });

  it('each row shows kind, where (and the secret holding it), owner, relative and absolute expiry, findings and consumers at risk', async () => {
    const text = JSON.stringify(cardOf(await expiringCommand(deps()).handle('14 d pat bob', ctx())));
    expect(text).toContain('bob-jdbc — Databricks PAT');
    expect(text).toContain('ws-prod · held in kv-prod/adb-prod-bob-pipeline');
    expect(text).toContain('bob.dev@contoso.com (user)');
    expect(text).toContain('in 14 days (2026-04-15 09:00 UTC)');
    expect(text).toContain('human-owned-pipeline');
    expect(text).toContain('ADF adf-prod/LS_Databricks_Prod (pipelines: bob-reports)');
  });

  it('filters by kind and name', async () => {
    expect(rowHeadings(cardOf(await expiringCommand(deps()).handle('pat', ctx())))).toEqual(['expired-etl', 'dev-ci', 'adf-etl', 'bob-jdbc', 'reporting']);
    expect(rowHeadings(cardOf(await expiringCommand(deps()).handle('2w secret', ctx())))).toEqual(['storage-account-key', 'sql-admin-password']);
    expect(rowHeadings(cardOf(await expiringCommand(deps()).handle('7 sp', ctx())))).toEqual(['legacy-crm / legacy-crm-secret', 'hr-sync / hr-sync-secret', 'partner-sftp / cert']);
  });

  it('says so when nothing matches', async () => {
    const text = JSON.stringify(cardOf(await expiringCommand(deps()).handle('30d nothing-like-this', ctx())));
    expect(text).toContain('Nothing expires within 30 days matching');
    expect(text).not.toContain('Chart.Line');
  });

  it('bad arguments get the syntax and an example', async () => {
    const reply = await expiringCommand(deps()).handle('14x', ctx());
    expect(reply).toEqual({ kind: 'text', text: expect.stringContaining('Usage: `/expiring [N d] [pat|secret|sp|all] [disabled] [name filter]`') });
    expect((reply as { text: string }).text).toMatch(/"14x" is not a time span[\s\S]*Example: `\/expiring 14d pat etl`/);
  });

  it('runs a scan when there is none yet, then reads the stored snapshot', async () => {
    expect(scanner.lastScan()).toBeUndefined();
    await expiringCommand(deps()).handle('', ctx());
    const first = scanner.lastScan()!.id;
    await expiringCommand(deps()).handle('', ctx());
    expect(scanner.lastScan()!.id).toBe(first);
  });

  it('pages a long list under 25 KB per message with a "show more" button that says how many more', async () => {
    const many: EstateInventory = { estate: 'databricks', scope: 'ws-big', facts: {}, credentials: Array.from({ length: 40 }, (_, i) => ({
      id: credentialId('databricks-pat', 'ws-big', String(i)), kind: 'databricks-pat' as const, nativeId: String(i),
      name: `pipeline-token-${String(i).padStart(2, '0')}-${'x'.repeat(60)}`, where: { estate: 'databricks' as const, scope: 'ws-big', label: 'ws-big' },
      owner: { name: 'sp-etl', kind: 'service-principal' as const, active: true }, createdAt: clock.now() - DAY_MS,
      expiresAt: clock.now() + (i + 1) * 3_600_000, heldIn: [], attributes: {},
      consumers: [{ kind: 'adf-linked-service' as const, factory: 'adf-prod', name: `LS_${i}_${'y'.repeat(80)}`, pipelines: ['p1', 'p2', 'p3'] }],
    })) };
    await scanner.shutdown();
    store.close();
    setup([{ estate: 'databricks', scope: 'ws-big', scan: async () => many }]);

    const first = cardOf(await expiringCommand(deps()).handle('2d', ctx()));
    expect(cardSize(first)).toBeLessThan(CARD_SIZE_BUDGET_BYTES);
    const firstRows = rowHeadings(first);
    expect(firstRows.length).toBeGreaterThan(5);
    const action = (first.actions as Node[])[0]!;
    expect(action).toMatchObject({ type: 'Action.Execute', verb: 'expiringPage', data: { page: 2, query: '2d' } });
    expect(JSON.stringify(first)).toContain(`${40 - firstRows.length} more credentials after these`);

    const seen = [...firstRows];
    let data = action.data as Record<string, unknown>;
    for (let guard = 0; guard < 10 && data; guard++) {
      const next = await expiringPageAction(deps()).handle(data, ctx());
      if (!('card' in next)) throw new Error('expected a card');
      expect(cardSize(next.card)).toBeLessThan(CARD_SIZE_BUDGET_BYTES);
      seen.push(...rowHeadings(next.card));
      data = (next.card.actions as Node[])[0]?.data as Record<string, unknown>;
    }
    expect(seen).toHaveLength(40);
    expect(new Set(seen).size).toBe(40);
    expect(seen).toEqual([...seen].sort());
  });

  it('a tampered page link gets a clear answer, not a crash', async () => {
    const action = expiringPageAction(deps());
    expect(await action.handle({ page: -1, query: '14d' }, ctx())).toEqual({ text: expect.stringMatching(/not valid any more/) });
    expect(await action.handle({ page: 2, query: { evil: true } }, ctx())).toEqual({ text: expect.stringMatching(/not valid any more/) });
    expect(await action.handle({ page: 1, query: '14x' }, ctx())).toEqual({ text: expect.stringMatching(/not valid any more/) });
  });

  it('shows estates that could not be scanned', async () => {
    await scanner.shutdown();
    store.close();
    setup([...seedLikeSources(clock.now()), { estate: 'databricks', scope: 'ws-broken', host: 'https://broken', scan: async () => { throw new Error('HTTP 500 from token-management'); } }]);
    const text = JSON.stringify(cardOf(await expiringCommand(deps()).handle('14d', ctx())));
    expect(text).toContain('Not scanned');
    expect(text).toContain('could not scan databricks ws-broken (https://broken): HTTP 500 from token-management');
  });
});

describe('/findings', () => {
  it('groups the non-expiry findings by severity, highest first, each with a fix', async () => {
    const card = cardOf(await findingsCommand(deps()).handle('', ctx()));
    const text = JSON.stringify(card);
    const headings = walk(card.body).filter((n) => n.size === 'Medium' && n.type === 'TextBlock').map((n) => n.text as string).slice(1);
    expect(headings.map((h) => h.replace(/ \(\d+\)$/, ''))).toEqual(['High', 'Medium']);
    for (const code of ['no-expiry', 'owner-deactivated', 'human-owned-pipeline', 'pat-creation-open', 'lifetime-too-long', 'not-rotated', 'unused', 'kv-expiry-mismatch']) {
      expect(text).toContain(`${code} — `);
    }
    expect(text).not.toMatch(/"expiring — |"expired — /);
    expect(text).toContain('Fix: ');
  });

  it('a severity shows that level and above', async () => {
    const text = JSON.stringify(cardOf(await findingsCommand(deps()).handle('high', ctx())));
    expect(text).toContain('owner-deactivated');
    expect(text).not.toContain('not-rotated');
  });

  it('bad severity gets the syntax', async () => {
    expect(await findingsCommand(deps()).handle('urgent', ctx())).toEqual({ kind: 'text', text: expect.stringMatching(/Usage: `\/findings \[info\|low\|medium\|high\|critical\]`/) });
  });
});

describe('/scan', () => {
  const approver = '00000000-0000-0000-0000-0000000000a1';
  const isApprover = (a: { aadObjectId?: string }) => a.aadObjectId === approver;

  it('refuses someone who is not an approver and does not scan', async () => {
    const reply = await scanCommand({ ...deps(), isApprover }).handle('', ctx('00000000-0000-0000-0000-0000000000a3'));
    expect(reply).toEqual({ kind: 'text', text: expect.stringMatching(/Only approvers can start a scan/) });
    expect(scanner.lastScan()).toBeUndefined();
  });

  it('runs a scan for an approver and reports counts by kind, severity and estate errors', async () => {
    const card = cardOf(await scanCommand({ ...deps(), isApprover }).handle('', ctx(approver)));
    const facts = walk(card.body).filter((n) => n.type === 'FactSet').flatMap((n) => n.facts as Array<{ title: string; value: string }>);
    const fact = (t: string) => facts.find((f) => f.title === t)?.value;
    expect(fact('Databricks PAT')).toBe('10');
    expect(fact('Key Vault secret')).toBe('10');
    expect(fact('Entra client secret')).toBe('5');
    expect(fact('Entra certificate')).toBe('1');
    expect(Number(fact('critical'))).toBeGreaterThan(0);
    expect(JSON.stringify(card)).toContain('Scan finished');
    expect(scanner.lastScan()?.trigger).toBe('command');
  });
});
