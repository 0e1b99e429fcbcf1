import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { scannerModule } from '../../src/scanner/module.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { ALICE, invokeActivity, startBotHarness, type BotHarness } from '../helpers/bot.js';

/** /expiring, /findings and /scan sent as Teams would send them, answered from a real scan of the sandbox estate. */

const CARD_TYPE = 'application/vnd.microsoft.card.adaptive';
const LEE = { id: '29:lee-mri', name: 'Lee Gu', aadObjectId: '00000000-0000-0000-0000-0000000000a3' };
const clock = new AdjustableClock();
let clouds: SandboxClouds;
let scannerStore: Store;
let scanner: Scanner;
let h: BotHarness;

type Node = Record<string, unknown>;
function walk(node: unknown, out: Node[] = []): Node[] {
  if (Array.isArray(node)) node.forEach((n) => walk(n, out));
  else if (node && typeof node === 'object') {
    out.push(node as Node);
    Object.values(node).forEach((v) => walk(v, out));
  }
  return out;
}

/** Fixed hex values of the chart renderer's well-known colours (Fluent charts in Teams / the Agents Playground). */
const WELL_KNOWN_HEX: Record<string, string> = {
  good: '#107C10', warning: '#FFC300', attention: '#D13438', neutral: '#CCCCCC', categoricalRed: '#c50f1f', categoricalPurple: '#80215d',
  categoricalLavender: '#3f3682', categoricalBlue: '#2461ca', categoricalLightBlue: '#0078d4', categoricalTeal: '#00b7c3',
  categoricalGreen: '#00cc6a', categoricalLime: '#a4cd6c', categoricalMarigold: '#f3c761', sequential3: '#5b5fc7', sequential4: '#7f85f5',
  divergingLightBlue: '#2c72a8', divergingRed: '#d33f4c', divergingLightRed: '#e37d81', divergingGray: '#4b5356',
};
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}
type ChartSeries = { legend: string; color: string; values: Array<{ x: string; y: number }> };

/**
 * The renderer draws 5 y ticks from yMin to yMax: with yMax a multiple of 4 every tick is a whole number. x labels
 * are cut with "…" past ~8 characters, a legend folds into "+N items" when it does not fit, and well-known colours
 * are the same hex on both themes: each must keep 3:1 contrast on white and on Teams' dark card (#292929).
 */
function expectReadableChart(chart: Node): void {
  expect(chart.yMin).toBe(0);
  const yMax = chart.yMax as number;
  expect(Number.isInteger(yMax) && yMax >= 4 && yMax % 4 === 0).toBe(true);
  for (let i = 0; i <= 4; i++) expect(Number.isInteger((yMax / 4) * i)).toBe(true);
  const series = chart.data as ChartSeries[];
  expect(series.length).toBeGreaterThan(0);
  expect(series.length).toBeLessThanOrEqual(3);
  expect(series.reduce((n, s) => n + s.legend.length, 0)).toBeLessThanOrEqual(40);
  for (const s of series) {
    expect(s.legend.length).toBeGreaterThan(0);
    const hex = WELL_KNOWN_HEX[s.color];
    expect(hex, `${s.color} is a well-known chart colour`).toBeDefined();
    expect(contrast(hex!, '#FFFFFF')).toBeGreaterThanOrEqual(3);
    expect(contrast(hex!, '#292929')).toBeGreaterThanOrEqual(3);
    expect(s.values.length).toBeLessThanOrEqual(7);
    for (const v of s.values) {
      expect(Number.isInteger(v.y) && v.y >= 0 && v.y <= yMax).toBe(true);
      expect(v.x).toMatch(/^(Expired|[A-Z][a-z]{2} \d{1,2})$/);
    }
  }
  expect(new Set(series.map((s) => s.color)).size).toBe(series.length);
  expect(new Set(series.map((s) => s.values.map((v) => v.x).join('|'))).size).toBe(1);
}

/** Sends a message and returns the bot's answer (a typing indicator may come first when a scan is needed). */
async function ask(text: string, where?: Parameters<BotHarness['message']>[1]) {
  const activity = h.message(text, where);
  const r = await h.send(activity);
  const reply = await h.connector.waitFor((a) => a.type === 'message' && a.replyToId === activity.id, 30_000);
  return { status: r.status, reply, messages: h.connector.activities.filter((a) => a.type === 'message' && a.replyToId === activity.id) };
}

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  const input = withSandboxConfig({ approvals: { users: [ALICE.aadObjectId] }, scanner: { scanOnStart: false } }, clouds.config);
  const config = configSchema.parse(input);
  scannerStore = openSqliteStore({ path: ':memory:', clock });
  scanner = createScanner({ sources: createInventorySources(config, { clock }).sources, config, store: scannerStore, clock, logger: createLogger({ level: 'silent' }) });
  h = await startBotHarness({ clock, config: input, modules: [scannerModule({ scanner, config, clock })] });
});
afterAll(async () => {
  await h?.close();
  await scanner?.shutdown();
  scannerStore?.close();
  await clouds?.close();
});

/** Days left per credential as seeded in docs/sandbox-estate.md; secrets that hold one of these fold into its row. */
const WITHIN_14_DAYS: Record<string, number> = {
  'legacy-crm / legacy-crm-secret': -5, 'storage-account-key': -3, 'expired-etl': -2,
  'hr-sync / hr-sync-secret': 1, 'dev-ci': 1, 'sql-admin-password': 1,
  'partner-sftp / CN=partner-sftp.contoso.com': 7, 'adf-etl': 7,
  'etl-ingest / etl-ingest-2026': 14, 'bob-jdbc': 14, 'analytics-nightly': 12, 'analytics-adhoc': 12,
};

describe('/expiring over the Bot Framework protocol', () => {
  it('/expiring 14d returns one card listing exactly what expires within 14 days, most urgent first, with the chart', async () => {
    const r = await ask('/expiring 14d', { kind: 'channel' });
    expect(r.status).toBe(200);
    expect(r.messages).toHaveLength(1);
    const attachment = r.reply.attachments[0]!;
    expect(attachment.contentType).toBe(CARD_TYPE);
    const card = attachment.content as Node;
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.5' });

    const headings = walk(card.body).filter((n) => n.type === 'TextBlock' && /^\d+\. /.test(String(n.text))).map((n) => String(n.text));
    const names = headings.map((t) => t.replace(/^\d+\. /, '').replace(/ — [^—]+$/, ''));
    expect([...names].sort()).toEqual(Object.keys(WITHIN_14_DAYS).sort());
    // Ranked by blast radius × urgency: expired first; a PAT read by a pipeline before an equally or less urgent one nobody reads.
    expect(names.slice(0, 3).map((n) => WITHIN_14_DAYS[n])).toEqual([-5, -3, -2]);
    expect(names.indexOf('bob-jdbc')).toBeLessThan(names.indexOf('partner-sftp / CN=partner-sftp.contoso.com'));
    expect(names.indexOf('analytics-nightly')).toBeLessThan(names.indexOf('analytics-adhoc'));
    expect(headings.map((t) => Number(t.split('.')[0]))).toEqual(names.map((_, i) => i + 1));

    const chart = walk(card.body).find((n) => n.type === 'Chart.Line')!;
    expect(chart).toBeDefined();
    expect(chart.fallback).toMatchObject({ type: 'TextBlock' });
    expectReadableChart(chart);
    const series = chart.data as ChartSeries[];
    // Stacked lines: the top one is the total per period, and no line ever dips below the one under it.
    const total = (x: string) => series[series.length - 1]!.values.find((v) => v.x === x)!.y;
    for (let i = 1; i < series.length; i++) series[i]!.values.forEach((v, j) => expect(v.y).toBeGreaterThanOrEqual(series[i - 1]!.values[j]!.y));
    const labels = series[0]!.values.map((v) => v.x);
    expect(labels[0]).toBe('Expired');
    expect(total('Expired')).toBe(3);
    expect(labels.slice(1).reduce((n, x) => n + total(x), 0)).toBe(9);
    expect(series.map((s) => s.legend)).toEqual(['Databricks PATs', '+ Key Vault', '+ Entra']);
    expect(Buffer.byteLength(JSON.stringify(r.reply.activity))).toBeLessThan(25 * 1024);

    const text = JSON.stringify(card);
    expect(text).toContain('ws-prod · held in kv-prod/adb-prod-bob-pipeline');
    expect(text).toContain('ADF adf-prod/LS_Databricks_Prod (pipelines: bob-reports)');
    expect(text).not.toMatch(/dapi[0-9a-f]{32}/);
  });

  it('a long span folds weeks into at most 7 readable points and keeps the axis whole', async () => {
    const { reply } = await ask('/expiring 400d');
    const chart = walk((reply.attachments[0]!.content as Node).body).find((n) => n.type === 'Chart.Line')!;
    expectReadableChart(chart);
    expect(chart.title).toBe('Expiries per 10 weeks');
  });

  it('bad arguments answer with the syntax and an example', async () => {
    const { reply } = await ask('/expiring soon-ish 3x');
    expect(reply.text).toMatch(/"3x" is not a time span/);
    expect(reply.text).toContain('/expiring [N d] [pat|secret|sp|all] [disabled] [name filter]');
  });

  it('"show more" pages through the list with Action.Execute', async () => {
    const { reply } = await ask('/expiring 400d');
    const card = reply.attachments[0]!.content as Node;
    const action = (card.actions as Node[])[0]!;
    expect(action).toMatchObject({ type: 'Action.Execute', verb: 'expiringPage', data: { page: 2, query: '400d' } });
    const next = await h.send(invokeActivity(h.serviceUrl, 'expiringPage', action.data as Record<string, unknown>, reply.activityId));
    expect(next.body).toMatchObject({ statusCode: 200, type: CARD_TYPE });
    const page2 = JSON.stringify(next.body);
    expect(page2).toContain('page 2 of 2');
  });
});

describe('/findings and /scan over the Bot Framework protocol', () => {
  it('/findings high lists the high findings with their fixes', async () => {
    const { reply } = await ask('/findings high');
    const text = JSON.stringify(reply.attachments[0]!.content);
    for (const code of ['owner-deactivated', 'human-owned-pipeline', 'pat-creation-open', 'no-expiry']) expect(text).toContain(`${code} — `);
    expect(text).not.toContain('not-rotated');
  });

  it('/scan is refused for someone who is not an approver', async () => {
    const before = scanner.lastScan()?.id;
    const { reply } = await ask('/scan', { user: LEE });
    expect(reply.text).toMatch(/Only approvers can start a scan/);
    expect(scanner.lastScan()?.id).toBe(before);
  });

  it('/scan by an approver runs a scan and reports the counts', async () => {
    const before = scanner.lastScan()?.id;
    const { reply } = await ask('/scan');
    const card = reply.attachments[0]!.content as Node;
    const facts = walk(card.body).filter((n) => n.type === 'FactSet').flatMap((n) => n.facts as Array<{ title: string; value: string }>);
    expect(facts.find((f) => f.title === 'Databricks PAT')?.value).toBe('16');
    expect(facts.find((f) => f.title === 'Key Vault secret')?.value).toBe('12');
    expect(JSON.stringify(card)).toContain('Scan finished');
    expect(scanner.lastScan()?.id).not.toBe(before);
  });

  it('readiness reports the scheduler and the last scan', async () => {
    const report = await h.keywarden.readiness();
    expect(report.checks.find((c) => c.name === 'scheduler')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'lastScan')).toMatchObject({ ok: true });
  });
});
