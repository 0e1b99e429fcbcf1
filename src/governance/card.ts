/** The governance report as an Adaptive Card (cards/governance.json): counts, trend chart, owners, controls, remedy buttons. */
import { CARD_SIZE_BUDGET_BYTES, cardSize, renderCard } from '../cards/render.js';
import type { AdaptiveCard } from '../domain/chat.js';
import type { Estate, FindingCode } from '../domain/credential.js';
import { formatTime } from '../domain/plan.js';
import type { GovernanceReport, RemedyTarget } from './report.js';

/** A remedy button: its offer (approvals/remedy-offers.ts) was stored before the card is shown. */
export interface RemedyButton {
  title: string;
  verb: string;
  offerId: string;
  nonce: string;
}

export const REMEDY_VERBS: Record<RemedyTarget['remedy'], string> = {
  'max-lifetime': 'enforceMaxLifetime',
  'restrict-tokens': 'restrictTokenCreation',
  'retire-unused': 'retireUnused',
  'move-to-sp': 'moveToServicePrincipal',
};

const ESTATE_TITLE: Record<Estate, string> = { databricks: 'Databricks', keyvault: 'Key Vault', entra: 'Entra ID', datafactory: 'Data Factory' };

/** Chart x labels are cut to their slot: a word or two each. */
const SHORT: Partial<Record<FindingCode, string>> = {
  'no-expiry': 'No expiry', 'lifetime-too-long': 'Too long', 'not-rotated': 'Not rotated', unused: 'Unused',
  'owner-deactivated': 'Ex-owner', 'human-owned-pipeline': 'Personal', 'kv-expiry-mismatch': 'KV mismatch',
  'pat-creation-open': 'Open create', 'no-max-token-lifetime': 'No max life', 'tokens-disabled': 'PATs off',
};
const MAX_CHART_POINTS = 7;

function changeText(change: number | null): string {
  if (change === null || change === 0) return change === 0 ? ' (no change)' : '';
  return change > 0 ? ` (▲ ${change} more)` : ` (▼ ${-change} fewer)`;
}

function chart(report: GovernanceReport) {
  const byCode = new Map<FindingCode, { now: number; before: number }>();
  for (const r of report.rows) {
    const e = byCode.get(r.code) ?? { now: 0, before: 0 };
    e.now += r.count;
    e.before += r.count - (r.change ?? 0);
    byCode.set(r.code, e);
  }
  for (const c of report.cleared) {
    const e = byCode.get(c.code) ?? { now: 0, before: 0 };
    e.before += c.was;
    byCode.set(c.code, e);
  }
  const codes = [...byCode.entries()].sort((a, b) => Math.max(b[1].now, b[1].before) - Math.max(a[1].now, a[1].before) || a[0].localeCompare(b[0])).slice(0, MAX_CHART_POINTS);
  const series = [
    ...(report.previousAt !== null ? [{ legend: `Last report`, color: 'sequential4', values: codes.map(([code, e]) => ({ x: SHORT[code] ?? code, y: e.before })) }] : []),
    { legend: 'Now', color: 'categoricalLightBlue', values: codes.map(([code, e]) => ({ x: SHORT[code] ?? code, y: e.now })) },
  ];
  const fallback = codes.map(([code, e]) => `${code}: ${e.now}${report.previousAt !== null ? ` (was ${e.before})` : ''}`).join(' · ');
  return { hasChart: codes.length > 0, series, fallback };
}

/** `buttons`: offers for the first remedies of `report.remedies`; the rest are counted and named by their commands. */
export function renderGovernanceCard(report: GovernanceReport, buttons: RemedyButton[], options: { heading?: string }): AdaptiveCard {
  const trend = report.previousTotal === null
    ? 'first report'
    : `${report.total === report.previousTotal ? 'no change' : report.total < report.previousTotal ? `▼ ${report.previousTotal - report.total} fewer` : `▲ ${report.total - report.previousTotal} more`} since the report of ${formatTime(report.previousAt)}`;
  const estates = [...new Set(report.rows.map((r) => r.estate))].map((estate) => {
    const rows = report.rows.filter((r) => r.estate === estate);
    return {
      heading: `${ESTATE_TITLE[estate]}: ${rows.reduce((a, r) => a + r.count, 0)}`,
      lines: rows.map((r) => ({ text: `- ${r.code}: ${r.count}${changeText(r.change)}` })),
    };
  });
  const c = chart(report);
  const { people, servicePrincipals, unknown } = report.patOwners;
  const ws = report.workspaces;
  const workspaceLines = [
    { text: ws.noMaxLifetime.length ? `- No maximum token lifetime: ${ws.noMaxLifetime.join(', ')}` : '- Every workspace has a maximum token lifetime.' },
    { text: ws.openCreation.length ? `- Anyone may create tokens: ${ws.openCreation.join(', ')}` : '- Token creation is restricted in every workspace.' },
    ...(ws.tokensDisabled.length ? [{ text: `- Personal access tokens disabled: ${ws.tokensDisabled.join(', ')}` }] : []),
  ];
  const build = (shown: number) => renderCard('governance', {
    title: options.heading ?? '🛡️ Governance report',
    summary: `${report.total} finding${report.total === 1 ? '' : 's'} besides expiry · ${trend} · scan of ${formatTime(report.scannedAt)}`,
    errors: report.errors.map((text) => ({ text })),
    hasChart: c.hasChart,
    chartTitle: report.previousAt !== null ? 'Findings: last report and now' : 'Findings now',
    chartSeries: c.series,
    chartFallback: c.fallback,
    estates,
    emptyText: 'No findings besides expiry. Nice.',
    clearedText: report.cleared.length ? `Cleared since the last report: ${report.cleared.map((x) => `${x.code} in ${ESTATE_TITLE[x.estate]} (was ${x.was})`).join(', ')}` : '',
    offenders: report.offenders.map((o, i) => ({ text: `${i + 1}. ${o.owner} (${o.kind}): ${o.findings} — ${o.codes}` })),
    patOwnersText: `Databricks tokens owned by people: ${people} · by service principals: ${servicePrincipals}${unknown ? ` · owner unknown: ${unknown}` : ''}`,
    workspaceLines,
    remedies: buttons.slice(0, shown),
    moreRemedies: report.remedies.length - shown,
    moreRemediesText: `${report.remedies.length - shown} more remedies: see /findings, or the /move-to-sp, /max-lifetime, /restrict-tokens and /retire-unused commands.`,
  });
  let shown = buttons.length;
  let card = build(shown);
  while (cardSize(card) > CARD_SIZE_BUDGET_BYTES && shown > 0) card = build(--shown);
  return card;
}
