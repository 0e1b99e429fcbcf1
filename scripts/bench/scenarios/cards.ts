import { randomUUID } from 'node:crypto';
import { replyActivity } from '../../../bot/messages.js';
import { CARD_SIZE_BUDGET_BYTES, cardSize } from '../../../src/cards/render.js';
import { buildExpiringCard, selectExpiring } from '../../../src/commands/expiring.js';
import { parseExpiringArgs, type ExpiringQuery } from '../../../src/commands/args.js';
import { configSchema } from '../../../src/config/schema.js';
import { correlate } from '../../../src/domain/correlate.js';
import { evaluatePolicy } from '../../../src/domain/policy.js';
import type { ScanResult } from '../../../src/domain/scan.js';
import { count, kb, ms } from '../format.js';
import { measurePhase, median, timeRuns, type RssSampler } from '../measure.js';
import { syntheticInventories } from '../synthetic.js';
import type { ScenarioResult } from '../types.js';

/** 4. `/expiring` for 500 matching credentials: render time, pages, and each page's size against Teams' 28 KB. */

const NOW = Date.UTC(2026, 3, 1, 9, 0, 0);
const WANTED = 500;
/** Teams refuses a message over about 28 KB (the Bot Connector emulator uses the same limit). */
const TEAMS_LIMIT_BYTES = 28 * 1024;

/** A scan whose /expiring (30 days, all kinds) selects exactly `wanted` rows, with held-in secrets, consumers and findings. */
export function expiringScan(now: number, wanted: number): ScanResult {
  const inventories = syntheticInventories({
    workspaces: 2, patsPerWorkspace: 300, vaults: 2, secretsPerVault: 200, entraApps: 150, credentialsPerApp: 2, consumers: 150, now, expiryDays: [-3, 45], seed: 11,
  });
  const config = configSchema.parse({});
  const scopes = inventories.map((i) => ({ estate: i.estate, scope: i.scope, facts: i.facts }));
  let { credentials } = correlate(inventories, {});
  const query = parse('');
  for (let round = 0; round < 20; round++) {
    const findings = evaluatePolicy({ credentials, scopes, policy: config.policy, now });
    const scan: ScanResult = { id: `scan-${randomUUID()}`, trigger: 'schedule', startedAt: now - 60_000, finishedAt: now - 1_000, credentials, findings, errors: [], changes: { added: [], removed: [], changed: [] } };
    const rows = selectExpiring(scan, query, now);
    if (rows.length === wanted) return scan;
    if (rows.length < wanted) throw new Error(`the synthetic estate has only ${rows.length} expiring credentials; make it larger`);
    // Drop the least urgent surplus rows (dropping a PAT can un-mirror its secret, hence the loop).
    const drop = new Set(rows.slice(wanted).map((r) => r.id));
    credentials = credentials.filter((c) => !drop.has(c.id));
  }
  throw new Error(`could not shape a scan with exactly ${wanted} expiring credentials`);
}

function parse(args: string): ExpiringQuery {
  const parsed = parseExpiringArgs(args);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}

export async function runCardsScenario(sampler: RssSampler): Promise<ScenarioResult> {
  const scan = expiringScan(NOW, WANTED);
  const query = parse('30d');

  const first = await measurePhase(sampler, () => timeRuns(15, () => buildExpiringCard(scan, query, NOW, 1)));
  const { pages, total } = first.value.last;
  const all = await measurePhase(sampler, () => timeRuns(3, () => {
    const sizes: Array<{ card: number; message: number }> = [];
    for (let p = 1; p <= pages; p++) {
      const built = buildExpiringCard(scan, query, NOW, p);
      sizes.push({ card: cardSize(built.card), message: Buffer.byteLength(JSON.stringify(replyActivity({ kind: 'card', card: built.card })), 'utf8') });
    }
    return sizes;
  }));
  const sizes = all.value.last;
  const maxCard = Math.max(...sizes.map((s) => s.card));
  const maxMessage = Math.max(...sizes.map((s) => s.message));
  const perPage = median(all.value.times) / pages;
  const over = sizes.filter((s) => s.message > TEAMS_LIMIT_BYTES).length;
  const kinds = new Map<string, number>();
  for (const c of selectExpiring(scan, query, NOW)) kinds.set(c.kindLabel, (kinds.get(c.kindLabel) ?? 0) + 1);

  return {
    id: 'cards', title: '/expiring card for 500 matching credentials',
    rows: [
      { label: '4a /expiring page 1 (select + paginate + render)', runs: 15, wallMs: median(first.value.times), timings: { min: Math.min(...first.value.times), max: Math.max(...first.value.times) }, throughput: { value: 1000 / median(first.value.times), unit: 'cards/s' }, memory: first.memory },
      { label: `4b /expiring all ${pages} pages`, runs: 3, wallMs: median(all.value.times), throughput: { value: 1000 / perPage, unit: 'pages/s' }, memory: all.memory },
    ],
    details: [
      `${count(total)} matching credentials (${[...kinds.entries()].map(([k, v]) => `${k} ${v}`).join(', ')}) out of ${count(scan.credentials.length)} in the scan, ${count(scan.findings.length)} findings`,
      `${pages} pages (at most 15 rows each, packed by size); largest card ${kb(maxCard)}, largest message ${kb(maxMessage)} — Teams limit ${kb(TEAMS_LIMIT_BYTES)}, Keywarden's budget ${kb(CARD_SIZE_BUDGET_BYTES)}; ${over === 0 ? 'no page over the limit' : `${over} page(s) OVER the limit`}`,
      `page sizes: ${sizes.map((s) => kb(s.message).replace(' KB', '')).join(', ')} KB`,
      `each page re-selects and re-paginates all ${count(total)} rows (pages are not cached): ${ms(perPage)} per page; page 1 runs ${first.value.times.slice(0, 5).map(ms).join(', ')}…`,
    ],
    data: { total, pages, maxCardBytes: maxCard, maxMessageBytes: maxMessage, limitBytes: TEAMS_LIMIT_BYTES, budgetBytes: CARD_SIZE_BUDGET_BYTES, pageBytes: sizes.map((s) => s.message) },
  };
}
