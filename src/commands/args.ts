import type { CredentialKind, Severity } from '../domain/credential.js';
import { SEVERITY_ORDER } from '../domain/credential.js';

/** Argument parsing for the chat commands. Pure; bad input becomes a problem sentence, never an exception. */

export const EXPIRING_USAGE = '/expiring [N d] [pat|secret|sp|all] [disabled] [name filter]';
export const EXPIRING_EXAMPLE = '/expiring 14d pat etl';
export const FINDINGS_USAGE = '/findings [info|low|medium|high|critical]';
export const FINDINGS_EXAMPLE = '/findings high';

export const DEFAULT_EXPIRING_DAYS = 30;
export const MAX_EXPIRING_DAYS = 3650;
const MAX_FILTER_LENGTH = 100;

export const KIND_WORDS: Record<string, CredentialKind[]> = {
  pat: ['databricks-pat'], pats: ['databricks-pat'], token: ['databricks-pat'], tokens: ['databricks-pat'],
  secret: ['keyvault-secret'], secrets: ['keyvault-secret'],
  sp: ['entra-password', 'entra-certificate'], sps: ['entra-password', 'entra-certificate'],
  all: ['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate'],
};
const ALL_KINDS = KIND_WORDS.all!;

export interface ExpiringQuery {
  days: number;
  kinds: CredentialKind[];
  /** Lower-case words that must all appear in the name, place or owner. */
  filter: string[];
  /** The word `disabled`: list disabled credentials too (shown as disabled); they are left out otherwise. */
  disabled?: boolean;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const UNIT_DAYS: Record<string, number> = { d: 1, day: 1, days: 1, w: 7, wk: 7, week: 7, weeks: 7 };

/** A word of the user's input as quoted back in a problem: short, so 10 KB of text is not echoed into the channel. */
function quoted(word: string): string {
  return `"${word.length > 40 ? `${word.slice(0, 40)}…` : word}"`;
}

/** `14d`, `14 d`, `14`, `2w`, `3 weeks`, optional kinds, then a name filter. */
export function parseExpiringArgs(args: string): Parsed<ExpiringQuery> {
  const words = args.trim().split(/\s+/).filter(Boolean);
  let days: number | undefined;
  const kinds = new Set<CredentialKind>();
  const filter: string[] = [];
  let disabled = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const lower = word.toLowerCase();
    if (lower === 'disabled') {
      disabled = true;
      continue;
    }
    const joined = /^(\d+)([a-z]+)$/.exec(lower);
    const number = /^\d+$/.test(lower) ? lower : undefined;
    if (joined || number) {
      let amount: number;
      let unit = 'd';
      if (joined) {
        amount = Number(joined[1]);
        unit = joined[2]!;
      } else {
        amount = Number(number);
        const next = words[i + 1]?.toLowerCase();
        if (next !== undefined && next in UNIT_DAYS) {
          unit = next;
          i += 1;
        }
      }
      const perUnit = UNIT_DAYS[unit];
      if (perUnit === undefined) return { ok: false, problem: `${quoted(word)} is not a time span — write days as 14d or weeks as 2w` };
      if (days !== undefined) return { ok: false, problem: `give one time span, not two (${quoted(word)})` };
      days = amount * perUnit;
      if (days > MAX_EXPIRING_DAYS) return { ok: false, problem: `${days} days is too far ahead — ask for at most ${MAX_EXPIRING_DAYS} days` };
      continue;
    }
    if (/^[-+]?\d/.test(lower)) return { ok: false, problem: `${quoted(word)} is not a time span — write days as 14d or weeks as 2w` };
    const kindWords = KIND_WORDS[lower];
    if (kindWords && filter.length === 0) {
      for (const k of kindWords) kinds.add(k);
      continue;
    }
    filter.push(lower);
  }
  const text = filter.join(' ');
  if (text.length > MAX_FILTER_LENGTH) return { ok: false, problem: `the name filter is longer than ${MAX_FILTER_LENGTH} characters` };
  return { ok: true, value: { days: days ?? DEFAULT_EXPIRING_DAYS, kinds: kinds.size ? ALL_KINDS.filter((k) => kinds.has(k)) : [...ALL_KINDS], filter, ...(disabled ? { disabled } : {}) } };
}

/** The query written back as command arguments (what a "show more" button carries). */
export function formatExpiringQuery(q: ExpiringQuery): string {
  const kindWord = (() => {
    if (q.kinds.length === ALL_KINDS.length) return [];
    const words: string[] = [];
    if (q.kinds.includes('databricks-pat')) words.push('pat');
    if (q.kinds.includes('keyvault-secret')) words.push('secret');
    if (q.kinds.includes('entra-password') || q.kinds.includes('entra-certificate')) words.push('sp');
    return words;
  })();
  return [`${q.days}d`, ...kindWord, ...(q.disabled ? ['disabled'] : []), ...q.filter].join(' ');
}

/** `/findings [severity]`: the findings at or above a severity (default: all). */
export function parseFindingsArgs(args: string): Parsed<{ minSeverity: Severity }> {
  const words = args.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return { ok: true, value: { minSeverity: 'info' } };
  if (words.length > 1) return { ok: false, problem: 'give at most one severity' };
  const word = words[0]!;
  const severity = SEVERITY_ORDER.find((s) => s === word || (word === 'crit' && s === 'critical') || (word === 'med' && s === 'medium'));
  if (!severity) return { ok: false, problem: `${quoted(word)} is not a severity — use one of ${SEVERITY_ORDER.join(', ')}` };
  return { ok: true, value: { minSeverity: severity } };
}

/** The answer to bad arguments: what was wrong, the syntax and an example. */
export function usageText(problem: string, usage: string, example: string): string {
  return `${problem}.\n\nUsage: \`${usage}\`\n\nExample: \`${example}\``;
}
