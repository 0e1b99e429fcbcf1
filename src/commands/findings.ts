import type { Clock } from '../clock.js';
import { CARD_SIZE_BUDGET_BYTES, cardSize, renderCard } from '../cards/render.js';
import type { AdaptiveCard, ChatCommand, ChatContext, Reply } from '../domain/chat.js';
import { SEVERITY_ORDER, type Finding, type Severity } from '../domain/credential.js';
import { isExpiryFinding, kindLabel } from '../domain/policy.js';
import type { ScanResult } from '../domain/scan.js';
import type { ScanTrigger } from '../scanner/scanner.js';
import { FINDINGS_EXAMPLE, FINDINGS_USAGE, parseFindingsArgs, usageText } from './args.js';
import { errorLine, scannedText } from './view.js';

/** `/findings [severity]`: the policy findings other than expiry, grouped by severity (highest first). */

const MAX_ITEMS = 30;
const SEVERITY_COLOR: Record<Severity, string> = { critical: 'Attention', high: 'Attention', medium: 'Warning', low: 'Default', info: 'Default' };
const SEVERITY_TITLE: Record<Severity, string> = { critical: 'Critical', high: 'High', medium: 'Medium', low: 'Low', info: 'Info' };

/** Remedy buttons a module offers for the findings shown (e.g. "Retire unused tokens in ws-x"). */
export type FindingsRemedyButtons = (scan: ScanResult, shown: Finding[], ctx: ChatContext) => Array<{ title: string; verb: string; data: Record<string, unknown> }>;

export interface FindingsDeps {
  scans: { latestOrScan(trigger: ScanTrigger): Promise<ScanResult> };
  clock: Clock;
  /** Per finding: remedy buttons shown under it (e.g. Enforce max lifetime on a workspace finding). */
  findingButtons?: (finding: Finding) => Array<{ title: string; verb: string; data: Record<string, unknown> }>;
  /** For the whole card, read at answer time: modules registered after the scanner add theirs (e.g. retire unused). */
  remedyButtons?: () => readonly FindingsRemedyButtons[];
}

/** Non-expiry findings at or above `minSeverity`, highest severity first. */
export function selectFindings(scan: Pick<ScanResult, 'findings'>, minSeverity: Severity): Finding[] {
  const floor = SEVERITY_ORDER.indexOf(minSeverity);
  return scan.findings
    .filter((f) => !isExpiryFinding(f) && SEVERITY_ORDER.indexOf(f.severity) >= floor)
    .sort((a, b) => SEVERITY_ORDER.indexOf(b.severity) - SEVERITY_ORDER.indexOf(a.severity) || a.code.localeCompare(b.code) || a.message.localeCompare(b.message));
}

export function buildFindingsCard(scan: ScanResult, minSeverity: Severity, now: number, remedyButtons?: FindingsDeps['findingButtons'], cardButtons: (shown: Finding[]) => Array<{ title: string; verb: string; data: Record<string, unknown> }> = () => []): AdaptiveCard {
  const all = selectFindings(scan, minSeverity);
  // Asked once per finding: a button may store an offer, and the card can be built more than once to fit.
  const buttons = new Map<Finding, ReturnType<NonNullable<FindingsDeps['findingButtons']>>>();
  const buttonsOf = (f: Finding) => {
    if (!buttons.has(f)) buttons.set(f, remedyButtons?.(f) ?? []);
    return buttons.get(f)!;
  };
  const cardActions = cardButtons(all).slice(0, 5);
  const byId = new Map(scan.credentials.map((c) => [c.id, c]));
  const build = (limit: number) => {
    const shown = all.slice(0, limit);
    const groups = [...SEVERITY_ORDER].reverse()
      .map((severity) => ({ severity, items: shown.filter((f) => f.severity === severity) }))
      .filter((g) => g.items.length > 0)
      .map((g) => ({
        heading: `${SEVERITY_TITLE[g.severity]} (${all.filter((f) => f.severity === g.severity).length})`,
        color: SEVERITY_COLOR[g.severity],
        items: g.items.map((f) => {
          const c = f.credentialId ? byId.get(f.credentialId) : undefined;
          const subject = c ? `${c.name} · ${kindLabel(c.kind)} · ${c.where.label}` : `${f.scope} (${f.estate})`;
          return { headline: `${f.code} — ${subject}`, message: f.message, remedy: f.remedy, actions: buttonsOf(f) };
        }),
      }));
    const more = all.length - shown.length;
    return renderCard('findings', {
      title: minSeverity === 'info' ? 'Policy findings' : `Policy findings: ${minSeverity} and above`,
      summary: `${all.length} finding${all.length === 1 ? '' : 's'} besides expiry (see /expiring for those) · ${scannedText(scan, now)}`,
      errors: scan.errors.map((e) => ({ text: errorLine(e) })),
      groups,
      emptyText: minSeverity === 'info' ? 'No policy findings. Nice.' : `No findings at ${minSeverity} or above. Try /findings for all of them.`,
      more,
      moreText: `${more} more not shown — narrow the list, e.g. ${FINDINGS_EXAMPLE}, or run keywarden scan for the full list.`,
      actions: cardActions,
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
      const sources = deps.remedyButtons?.() ?? [];
      return { kind: 'card', card: buildFindingsCard(scan, parsed.value.minSeverity, deps.clock.now(), deps.findingButtons, (shown) => sources.flatMap((b) => b(scan, shown, ctx))) };
    },
  };
}
