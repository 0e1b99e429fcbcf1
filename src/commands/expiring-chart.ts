/**
 * The /expiring chart: expiries per period (expired, then weeks), one stacked line per kind of credential (the top
 * line is the total).
 *
 * Shaped by how the Teams chart renderer draws (checked in the Agents Playground's bundle, the same Fluent charts):
 * - Chart.VerticalBar puts 5 ticks at quarters of the tallest bar (0, 0.75, 1.5 … for 3) and has no axis property;
 *   Chart.Line takes yMin/yMax, so yMax = a multiple of 4 gives whole-number ticks;
 * - x labels are cut with "…" to their slot: short labels ("Expired", "Dec 14") and at most 7 points;
 * - a legend is drawn for several series and folds into "+N items" when too wide: at most 3 short names;
 * - well-known colours are fixed hex values (not themed): only ones with ≥ 3:1 contrast on white and on Teams' dark
 *   surface (#292929) are used.
 */
import { DAY_MS } from '../clock.js';
import type { CredentialKind } from '../domain/credential.js';
import type { CredentialView } from './view.js';

/** Points on the x axis at most (an "Expired" point and six periods). */
export const MAX_CHART_POINTS = 7;

/** One line per group of kinds, each with a short legend name and a colour readable on light and dark themes. */
export const CHART_SERIES: ReadonlyArray<{ legend: string; color: string; kinds: readonly CredentialKind[] }> = [
  { legend: 'Databricks PATs', color: 'categoricalLightBlue', kinds: ['databricks-pat'] },
  { legend: 'Key Vault', color: 'sequential4', kinds: ['keyvault-secret'] },
  { legend: 'Entra', color: 'divergingRed', kinds: ['entra-password', 'entra-certificate'] },
];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Dec 14" (UTC): short enough to show whole under its point. */
export function shortDate(epochMs: number): string {
  const d = new Date(epochMs);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

export interface ExpiryChart {
  /** x labels in order. */
  labels: string[];
  /** Period length in days (7 = weekly; longer spans fold weeks together). */
  periodDays: number;
  /** Cumulative: each series includes the ones before it; the last is the total per period. */
  series: Array<{ legend: string; color: string; values: Array<{ x: string; y: number }> }>;
  /** Top of the y axis: a multiple of 4, so the renderer's 4 steps are whole numbers. */
  yMax: number;
  /** The same counts as text, for hosts that cannot draw charts. */
  fallback: string;
}

export function expiryChart(rows: readonly CredentialView[], days: number, now: number): ExpiryChart {
  const weeks = Math.max(1, Math.ceil(days / 7));
  const periodWeeks = Math.ceil(weeks / (MAX_CHART_POINTS - 1));
  const periodDays = periodWeeks * 7;
  const periods = Math.ceil(weeks / periodWeeks);
  const expired = rows.some((r) => r.expiresAt !== null && r.expiresAt <= now);
  const labels = [...(expired ? ['Expired'] : []), ...Array.from({ length: periods }, (_, i) => shortDate(now + i * periodDays * DAY_MS))];
  const slot = (at: number): number => (at <= now ? 0 : (expired ? 1 : 0) + Math.min(periods - 1, Math.floor((at - now) / (periodDays * DAY_MS))));
  const used = CHART_SERIES.filter((s) => rows.some((r) => r.expiresAt !== null && s.kinds.includes(r.kind)));
  // Stacked: each line adds its kind to the one below, so lines never hide each other and the top one is the total.
  const running = labels.map(() => 0);
  const series = used.map((s, i) => {
    for (const r of rows) if (r.expiresAt !== null && s.kinds.includes(r.kind)) running[slot(r.expiresAt)]! += 1;
    return { legend: i === 0 ? s.legend : `+ ${s.legend}`, color: s.color, values: labels.map((x, j) => ({ x, y: running[j]! })) };
  });
  const tallest = Math.max(0, ...series.flatMap((s) => s.values.map((v) => v.y)));
  const yMax = Math.max(4, Math.ceil(tallest / 4) * 4);
  const fallback = labels.map((x, i) => `${x}: ${running[i]}`).join(' · ');
  return { labels, periodDays, series, yMax, fallback };
}
