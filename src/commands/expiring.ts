import { DAY_MS, type Clock } from '../clock.js';
import { CARD_SIZE_BUDGET_BYTES, cardSize, renderCard } from '../cards/render.js';
import type { AdaptiveCard, CardAction, ChatCommand, Reply } from '../domain/chat.js';
import type { Credential } from '../domain/credential.js';
import { expiresWithin } from '../domain/expiry.js';
import { compareRisk, consumersLabel } from '../domain/blast-radius.js';
import { rotationText, type CredentialInRotation } from '../domain/rotation-state.js';
import { expiryChart } from './expiring-chart.js';
import { yieldToLoop, type ScanResult } from '../domain/scan.js';
import type { ScanTrigger } from '../scanner/scanner.js';
import {
  EXPIRING_EXAMPLE, EXPIRING_USAGE, formatExpiringQuery, parseExpiringArgs, usageText, type ExpiringQuery,
} from './args.js';
import {
  credentialView, errorLine, findingsByCredential, foldedFindings, heldCredentialOf, scannedText, type CredentialView,
  readScanWindow, scanWindow,
} from './view.js';

/**
 * `/expiring [N d] [pat|secret|sp|all] [disabled] [name filter]`: a ranked card of what expires soon, with a chart and
 * pages. One row per credential chain (a secret holding a scanned credential is that credential's row); disabled
 * credentials only with `disabled`; an old credential in a rotation grace window reads "rotated — old token revoked at …".
 */

export const EXPIRING_PAGE_VERB = 'expiringPage';
/** Rows per page at most; fewer when rows are long, so every message stays under the size budget. */
export const MAX_ROWS_PER_PAGE = 15;
const ROWS_BUDGET_BYTES = 17 * 1024;
const MAX_PAGE = 1000;

export interface ExpiringDeps {
  scans: { latestOrScan(trigger: ScanTrigger): Promise<ScanResult> };
  clock: Clock;
  /** Credentials Keywarden's rotations are handling now (from the job records); none when not given. */
  rotations?: () => ReadonlyMap<string, CredentialInRotation>;
}

type Rotations = ReadonlyMap<string, CredentialInRotation>;
const NO_ROTATIONS: Rotations = new Map();

/** "disabled · expired 3 days ago (…)", or why a PAT is disabled when its whole workspace has tokens switched off. */
function disabledText(c: Credential, expires: string): string {
  return c.attributes.tokensDisabled === true ? `disabled (personal access tokens are disabled in ${c.where.scope}) · ${expires}` : `disabled · ${expires}`;
}

/** What the query selects before the enabled/disabled split: one row per chain, the right kinds, window and words. */
function candidates(scan: Pick<ScanResult, 'credentials'>, query: ExpiringQuery, now: number): Credential[] {
  const byId = new Map(scan.credentials.map((c) => [c.id, c]));
  const matches = (c: Credential) => {
    if (query.filter.length === 0) return true;
    const text = `${c.name} ${c.where.label} ${c.where.scope} ${c.owner?.name ?? ''} ${c.heldIn.map((r) => `${r.vault}/${r.name}`).join(' ')}`.toLowerCase();
    return query.filter.every((w) => text.includes(w));
  };
  return scan.credentials.filter((c) => query.kinds.includes(c.kind) && expiresWithin(c, query.days, now) && !heldCredentialOf(c, byId) && matches(c));
}

/** Disabled credentials the query would list with `disabled`. */
export function hiddenDisabled(scan: Pick<ScanResult, 'credentials'>, query: ExpiringQuery, now: number): number {
  return query.disabled ? 0 : candidates(scan, query, now).filter((c) => c.enabled === false).length;
}

/** The rows the query selects, highest blast radius × urgency first (src/domain/blast-radius.ts). */
export function selectExpiring(scan: Pick<ScanResult, 'credentials' | 'findings'>, query: ExpiringQuery, now: number, rotations: Rotations = NO_ROTATIONS): CredentialView[] {
  const ranked = rankExpiring(scan, query, now, rotations);
  return ranked.credentials.map(ranked.row);
}

/** The chosen credentials in order, and how each reads as a row (separate, so a long list can be turned into rows in slices). */
function rankExpiring(scan: Pick<ScanResult, 'credentials' | 'findings'>, query: ExpiringQuery, now: number, rotations: Rotations) {
  const perCredential = findingsByCredential(scan.findings);
  const folded = foldedFindings(scan);
  const credentials = candidates(scan, query, now)
    .filter((c) => c.enabled !== false || query.disabled)
    .sort(compareRisk(now));
  const row = (c: Credential): CredentialView => {
    const view = credentialView(c, perCredential.get(c.id) ?? [], now, folded.get(c.id));
    const rotation = rotations.get(c.id);
    if (c.enabled === false) return { ...view, expires: disabledText(c, view.expires) };
    return rotation ? { ...view, expires: rotationText(rotation) } : view;
  };
  return { credentials, row };
}

/** Slices of a long answer, with a turn for the event loop between them. */
const SLICE = 500;

/** selectExpiring, yielding between slices of rows. */
async function selectExpiringInSlices(scan: Pick<ScanResult, 'credentials' | 'findings'>, query: ExpiringQuery, now: number, rotations: Rotations): Promise<CredentialView[]> {
  const ranked = rankExpiring(scan, query, now, rotations);
  const rows: CredentialView[] = [];
  for (let i = 0; i < ranked.credentials.length; i += SLICE) {
    if (i > 0) await yieldToLoop();
    for (const c of ranked.credentials.slice(i, i + SLICE)) rows.push(ranked.row(c));
  }
  return rows;
}

function rowData(r: CredentialView, rank: number) {
  const color = r.daysLeft !== null && r.daysLeft <= 1 ? 'Attention' : r.daysLeft !== null && r.daysLeft <= 7 ? 'Warning' : 'Default';
  const facts = [
    { title: 'Where', value: r.where },
    { title: 'Owner', value: r.owner },
    { title: 'Expires', value: r.expires },
    ...(r.findings.length ? [{ title: 'Findings', value: r.findings.join(', ') }] : []),
    { title: 'Consumers', value: consumersLabel(r.consumerCount) },
    ...(r.consumers ? [{ title: 'At risk', value: r.consumers }] : []),
  ];
  return { heading: `${rank}. ${r.name} — ${r.kindLabel}`, color, facts };
}

/** Page boundaries packed by size, so every page is the same however it is reached. */
export function paginate(rows: readonly CredentialView[]): Array<{ start: number; end: number }> {
  const packer = pagePacker();
  for (let i = 0; i < rows.length; i++) packer.add(rows[i]!, i);
  return packer.pages(rows.length);
}

function pagePacker() {
  const pages: Array<{ start: number; end: number }> = [];
  let start = 0;
  let bytes = 0;
  return {
    add(row: CredentialView, i: number): void {
      const size = Buffer.byteLength(JSON.stringify(rowData(row, i + 1)), 'utf8') + 250;
      if (i > start && (i - start >= MAX_ROWS_PER_PAGE || bytes + size > ROWS_BUDGET_BYTES)) {
        pages.push({ start, end: i });
        start = i;
        bytes = 0;
      }
      bytes += size;
    },
    pages(total: number): Array<{ start: number; end: number }> {
      if (total > start || pages.length === 0) pages.push({ start, end: total });
      return pages;
    },
  };
}

/** paginate, yielding between slices of rows. */
async function paginateInSlices(rows: readonly CredentialView[]): Promise<Array<{ start: number; end: number }>> {
  const packer = pagePacker();
  for (let i = 0; i < rows.length; i++) {
    if (i > 0 && i % SLICE === 0) await yieldToLoop();
    packer.add(rows[i]!, i);
  }
  return packer.pages(rows.length);
}

function describeQuery(q: ExpiringQuery): string {
  const kinds = q.kinds.length === 4 ? 'Credentials' : q.kinds.includes('databricks-pat') && q.kinds.length === 1 ? 'Databricks PATs'
    : q.kinds.length === 1 && q.kinds[0] === 'keyvault-secret' ? 'Key Vault secrets'
      : q.kinds.every((k) => k.startsWith('entra-')) ? 'Entra credentials' : 'Credentials';
  const filter = q.filter.length ? ` matching "${q.filter.join(' ')}"` : '';
  return `${kinds}${filter} expiring within ${q.days} day${q.days === 1 ? '' : 's'}`;
}

const windowEnd = (query: ExpiringQuery, now: number) => now + query.days * DAY_MS + 1;

/** What a card is built from: the ranked rows, their page boundaries and how many disabled ones are hidden. */
interface ExpiringAnswer {
  rows: CredentialView[];
  pages: Array<{ start: number; end: number }>;
  hidden: number;
}

/** Page `page` of the answer, read and ranked in slices so a long one never holds the bot's event loop. */
async function expiringCard(scan: ScanResult, query: ExpiringQuery, now: number, page: number, rotations: Rotations = NO_ROTATIONS): Promise<AdaptiveCard> {
  const window = await readScanWindow(scan, query.kinds, windowEnd(query, now));
  const rows = await selectExpiringInSlices(window, query, now, rotations);
  const answer = { rows, pages: await paginateInSlices(rows), hidden: hiddenDisabled(window, query, now) };
  return buildExpiringCard(scan, query, now, page, rotations, window, answer).card;
}

/** Builds page `page` (1-based) of the answer. */
export function buildExpiringCard(scan: ScanResult, query: ExpiringQuery, now: number, page = 1, rotations: Rotations = NO_ROTATIONS,
  window = scanWindow(scan, query.kinds, windowEnd(query, now)), answer?: ExpiringAnswer): { card: AdaptiveCard; page: number; pages: number; total: number } {
  const rows = answer?.rows ?? selectExpiring(window, query, now, rotations);
  const hidden = answer?.hidden ?? hiddenDisabled(window, query, now);
  const pages = answer?.pages ?? paginate(rows);
  const index = Math.min(Math.max(1, page), pages.length) - 1;
  const { start, end } = pages[index]!;
  const expired = rows.filter((r) => r.daysLeft !== null && r.expiresAt !== null && r.expiresAt <= now).length;
  const chart = rows.length ? expiryChart(rows, query.days, now) : undefined;
  const more = rows.length - end;
  const pageText = pages.length > 1 ? ` · page ${index + 1} of ${pages.length} (${start + 1}–${end})` : '';
  const data = {
    title: describeQuery(query),
    summary: `${rows.length} found${expired ? `, ${expired} already expired` : ''}${hidden ? ` (${hidden} disabled not shown — add "disabled" to list them)` : ''} · ranked by blast radius × urgency · ${scannedText(scan, now)}${pageText}`,
    errors: scan.errors.map((e) => ({ text: errorLine(e) })),
    hasChart: Boolean(chart?.series.length),
    chartTitle: chart && chart.periodDays > 7 ? `Expiries per ${chart.periodDays / 7} weeks` : 'Expiries per week',
    chartXTitle: `${chart && chart.periodDays > 7 ? 'Period' : 'Week'} starting (UTC)`,
    chartSeries: chart?.series ?? [],
    chartYMax: chart?.yMax ?? 4,
    chartFallback: chart?.fallback ?? '',
    rows: rows.slice(start, end).map((r, i) => rowData(r, start + i + 1)),
    emptyText: `Nothing expires within ${query.days} days${query.filter.length ? ` matching "${query.filter.join(' ')}"` : ''}. Try a longer span, e.g. /expiring 90d.`,
    more,
    moreText: `${more} more credential${more === 1 ? '' : 's'} after these. Narrow the list with a kind or a name, e.g. ${EXPIRING_EXAMPLE}.`,
    moreTitle: `Show ${Math.min(more, (pages[index + 1]?.end ?? end) - end)} more`,
    nextPage: index + 2,
    query: formatExpiringQuery(query),
  };
  let card = renderCard('expiring', data);
  // Last line of defence for unusually long rows: drop the chart before risking a message Teams refuses.
  if (cardSize(card) > CARD_SIZE_BUDGET_BYTES) card = renderCard('expiring', { ...data, hasChart: false });
  return { card, page: index + 1, pages: pages.length, total: rows.length };
}

export function expiringCommand(deps: ExpiringDeps): ChatCommand {
  return {
    name: 'expiring',
    usage: EXPIRING_USAGE,
    description: 'Lists credentials that expire soon across Databricks, Key Vault and Entra, ranked by blast radius (consumers and pipelines) × urgency (default 30 days, all kinds). Disabled credentials are left out unless you add "disabled".',
    example: EXPIRING_EXAMPLE,
    async handle(args): Promise<Reply> {
      const parsed = parseExpiringArgs(args);
      if (!parsed.ok) return { kind: 'text', text: usageText(parsed.problem, EXPIRING_USAGE, EXPIRING_EXAMPLE) };
      const scan = await deps.scans.latestOrScan('command');
      return { kind: 'card', card: await expiringCard(scan, parsed.value, deps.clock.now(), 1, deps.rotations?.()) };
    },
  };
}

/** "Show more": card data is untrusted, so the page and query are checked like typed arguments. */
export function expiringPageAction(deps: ExpiringDeps): CardAction {
  return {
    verb: EXPIRING_PAGE_VERB,
    async handle(data) {
      const page = typeof data.page === 'number' ? data.page : typeof data.page === 'string' ? Number(data.page) : NaN;
      if (!Number.isInteger(page) || page < 1 || page > MAX_PAGE) return { text: 'That page link is not valid any more — run /expiring again.' };
      const query = typeof data.query === 'string' && data.query.length <= 200 ? parseExpiringArgs(data.query) : undefined;
      if (!query?.ok) return { text: `That page link is not valid any more — run ${EXPIRING_USAGE} again.` };
      const scan = await deps.scans.latestOrScan('command');
      return { card: await expiringCard(scan, query.value, deps.clock.now(), page, deps.rotations?.()) };
    },
  };
}
