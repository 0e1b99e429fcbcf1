import type { Clock } from '../clock.js';
import { CARD_SIZE_BUDGET_BYTES, cardSize, renderCard } from '../cards/render.js';
import type { AdaptiveCard, ChatCommand, ChatContext, Reply } from '../domain/chat.js';
import { SEVERITY_ORDER, type Credential, type Finding, type Severity } from '../domain/credential.js';
import { isExpiryFinding, kindLabel } from '../domain/policy.js';
import { eachPage, scanViewOf, type ScanResult } from '../domain/scan.js';
import type { ScanTrigger } from '../scanner/scanner.js';
import { FINDINGS_EXAMPLE, FINDINGS_USAGE, parseFindingsArgs, usageText } from './args.js';
import { errorLine, scannedText } from './view.js';

/** `/findings [severity]`: the policy findings other than expiry, grouped by severity (highest first). */

const MAX_ITEMS = 30;
const MAX_CARD_ACTIONS = 5;
const SEVERITY_COLOR: Record<Severity, string> = { critical: 'Attention', high: 'Attention', medium: 'Warning', low: 'Default', info: 'Default' };
const SEVERITY_TITLE: Record<Severity, string> = { critical: 'Critical', high: 'High', medium: 'Medium', low: 'Low', info: 'Info' };

/**
 * Remedy buttons a module offers for the findings shown (e.g. "Retire unused tokens in ws-x"). `shown` holds one finding
 * per estate, code and scope (all a button needs); at most `max` buttons are used.
 */
export type FindingsRemedyButtons = (scan: ScanResult, shown: Finding[], ctx: ChatContext, max: number) =>
  CardButton[] | Promise<CardButton[]>;

type CardButton = { title: string; verb: string; data: Record<string, unknown> };

export interface FindingsDeps {
  scans: { latestOrScan(trigger: ScanTrigger): Promise<ScanResult> };
  clock: Clock;
  /** Per finding: remedy buttons shown under it (e.g. Enforce max lifetime on a workspace finding). */
  findingButtons?: (finding: Finding) => CardButton[];
  /** For the whole card, read at answer time: modules registered after the scanner add theirs (e.g. retire unused). */
  remedyButtons?: () => readonly FindingsRemedyButtons[];
}

/** The findings a card shows: the first ones in order, how many there are per severity, and one per estate, code and scope. */
export interface FindingsSelection {
  /** At most `limit`, highest severity first. */
  top: Array<{ finding: Finding; credential?: Credential }>;
  total: number;
  bySeverity: Partial<Record<Severity, number>>;
  /** One finding per estate, code and scope, in the same order. */
  kinds: Finding[];
}

const rank = (f: Finding) => SEVERITY_ORDER.indexOf(f.severity);
const compareFindings = (a: Finding, b: Finding) => rank(b) - rank(a) || a.code.localeCompare(b.code) || a.message.localeCompare(b.message);

/**
 * Non-expiry findings at or above `minSeverity`, highest severity first, read page by page (yielding between pages):
 * only the first `limit` are kept, so a large estate is never held in memory.
 */
export async function selectFindings(scan: ScanResult, minSeverity: Severity, limit = MAX_ITEMS): Promise<FindingsSelection> {
  const floor = SEVERITY_ORDER.indexOf(minSeverity);
  const view = scanViewOf(scan);
  const selection: FindingsSelection = { top: [], total: 0, bySeverity: {}, kinds: [] };
  const kinds = new Map<string, Finding>();
  let buffer: FindingsSelection['top'] = [];
  const keepTop = () => {
    // A stable sort keeps the scan's order among equal findings, as sorting them all at once would.
    buffer.sort((a, b) => compareFindings(a.finding, b.finding));
    buffer = buffer.slice(0, limit);
  };
  const add = (finding: Finding, credential?: Credential) => {
    if (isExpiryFinding(finding) || rank(finding) < floor) return;
    selection.total += 1;
    selection.bySeverity[finding.severity] = (selection.bySeverity[finding.severity] ?? 0) + 1;
    const key = `${finding.estate}|${finding.code}|${finding.scope}`;
    if (!kinds.has(key)) kinds.set(key, finding);
    buffer.push({ finding, ...(credential ? { credential } : {}) });
    if (buffer.length >= 4 * limit + 100) keepTop();
  };
  for await (const page of eachPage(view.pages({ where: { withFindings: true } }))) {
    for (const r of page) for (const f of r.findings) add(f, r.credential);
  }
  for (const f of view.scopeFindings) add(f);
  keepTop();
  selection.top = buffer;
  selection.kinds = [...kinds.values()].sort(compareFindings);
  return selection;
}

export function buildFindingsCard(scan: ScanResult, selection: FindingsSelection, minSeverity: Severity, now: number, remedyButtons?: FindingsDeps['findingButtons'], cardActions: CardButton[] = []): AdaptiveCard {
  // Asked once per finding: a button may store an offer, and the card can be built more than once to fit.
  const buttons = new Map<Finding, CardButton[]>();
  const buttonsOf = (f: Finding) => {
    if (!buttons.has(f)) buttons.set(f, remedyButtons?.(f) ?? []);
    return buttons.get(f)!;
  };
  const build = (limit: number) => {
    const shown = selection.top.slice(0, limit);
    const groups = [...SEVERITY_ORDER].reverse()
      .map((severity) => ({ severity, items: shown.filter((s) => s.finding.severity === severity) }))
      .filter((g) => g.items.length > 0)
      .map((g) => ({
        heading: `${SEVERITY_TITLE[g.severity]} (${selection.bySeverity[g.severity] ?? 0})`,
        color: SEVERITY_COLOR[g.severity],
        items: g.items.map(({ finding: f, credential: c }) => {
          const subject = c ? `${c.name} · ${kindLabel(c.kind)} · ${c.where.label}` : `${f.scope} (${f.estate})`;
          return { headline: `${f.code} — ${subject}`, message: f.message, remedy: f.remedy, actions: buttonsOf(f) };
        }),
      }));
    const more = selection.total - shown.length;
    const all = selection.total;
    return renderCard('findings', {
      title: minSeverity === 'info' ? 'Policy findings' : `Policy findings: ${minSeverity} and above`,
      summary: `${all} finding${all === 1 ? '' : 's'} besides expiry (see /expiring for those) · ${scannedText(scan, now)}`,
      errors: scan.errors.map((e) => ({ text: errorLine(e) })),
      groups,
      emptyText: minSeverity === 'info' ? 'No policy findings. Nice.' : `No findings at ${minSeverity} or above. Try /findings for all of them.`,
      more,
      moreText: `${more} more not shown — narrow the list, e.g. ${FINDINGS_EXAMPLE}, or run keywarden scan for the full list.`,
      actions: cardActions.slice(0, MAX_CARD_ACTIONS),
    });
  };
  let limit = MAX_ITEMS;
  let card = build(limit);
  while (cardSize(card) > CARD_SIZE_BUDGET_BYTES && limit > 1) {
    limit = Math.max(1, Math.floor(limit * 0.7));
    card = build(limit);
  }
  return card;
}

/** The card's remedy buttons from each module in turn, until there are MAX_CARD_ACTIONS. */
async function cardButtonsFor(sources: readonly FindingsRemedyButtons[], scan: ScanResult, kinds: Finding[], ctx: ChatContext): Promise<CardButton[]> {
  const out: CardButton[] = [];
  for (const source of sources) {
    if (out.length >= MAX_CARD_ACTIONS) break;
    out.push(...await source(scan, kinds, ctx, MAX_CARD_ACTIONS - out.length));
  }
  return out.slice(0, MAX_CARD_ACTIONS);
}

export function findingsCommand(deps: FindingsDeps): ChatCommand {
  return {
    name: 'findings',
    usage: FINDINGS_USAGE,
    description: 'Shows the policy findings other than expiry (no expiry, too long-lived, not rotated, unused, deactivated owner…), grouped by severity; a severity shows that level and above.',
    example: FINDINGS_EXAMPLE,
    async handle(args, ctx): Promise<Reply> {
      const parsed = parseFindingsArgs(args);
      if (!parsed.ok) return { kind: 'text', text: usageText(parsed.problem, FINDINGS_USAGE, FINDINGS_EXAMPLE) };
      const scan = await deps.scans.latestOrScan('command');
      const selection = await selectFindings(scan, parsed.value.minSeverity);
      const actions = await cardButtonsFor(deps.remedyButtons?.() ?? [], scan, selection.kinds, ctx);
      return { kind: 'card', card: buildFindingsCard(scan, selection, parsed.value.minSeverity, deps.clock.now(), deps.findingButtons, actions) };
    },
  };
}
