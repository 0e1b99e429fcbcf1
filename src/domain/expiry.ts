import { DAY_MS, HOUR_MS } from '../clock.js';
import type { Credential, Severity } from './credential.js';

/** Expiry arithmetic shared by policy, the /expiring command, the CLI and the alerts. Pure: `now` is always passed in. */

/** A crossed warning threshold: the number of days (30, 14, 7, 1 by default) or 'expired'. */
export type ExpiryThreshold = number | 'expired';

/** Milliseconds until expiry (negative once expired); null when the credential never expires. */
export function msLeft(credential: Pick<Credential, 'expiresAt'>, now: number): number | null {
  return credential.expiresAt === null ? null : credential.expiresAt - now;
}

/**
 * Whole days left as a person counts them: 13.2 days → 14 ("expires in 14 days"), expired 2.5 days ago → -2,
 * expired an hour ago → 0. So "within N days" and `daysLeft <= N` always agree. null = never expires.
 */
export function daysLeft(credential: Pick<Credential, 'expiresAt'>, now: number): number | null {
  const left = msLeft(credential, now);
  if (left === null) return null;
  if (left > 0) return Math.ceil(left / DAY_MS);
  const ago = Math.floor(-left / DAY_MS);
  return ago === 0 ? 0 : -ago;
}

export function isExpired(credential: Pick<Credential, 'expiresAt'>, now: number): boolean {
  return credential.expiresAt !== null && credential.expiresAt <= now;
}

/** True when the credential expires within `days` days from now (expired ones included). */
export function expiresWithin(credential: Pick<Credential, 'expiresAt'>, days: number, now: number): boolean {
  const left = msLeft(credential, now);
  return left !== null && left <= days * DAY_MS;
}

/**
 * The tightest threshold the credential has crossed: with [30, 14, 7, 1], 6.5 days left → 7; 20 days → 14;
 * expired → 'expired'; 45 days or never → null. The alerts warn once per value this returns.
 */
export function thresholdFor(
  credential: Pick<Credential, 'expiresAt'>,
  thresholds: readonly number[],
  now: number,
): ExpiryThreshold | null {
  const left = msLeft(credential, now);
  if (left === null) return null;
  if (left <= 0) return 'expired';
  const ascending = [...thresholds].filter((t) => Number.isFinite(t) && t > 0).sort((a, b) => a - b);
  for (const t of ascending) if (left <= t * DAY_MS) return t;
  return null;
}

/** Severity rises as the days drop: 30 → low, 14 → medium, 7 → high, 1 and expired → critical. */
export function severityForThreshold(threshold: ExpiryThreshold): Severity {
  if (threshold === 'expired' || threshold <= 1) return 'critical';
  if (threshold <= 7) return 'high';
  if (threshold <= 14) return 'medium';
  return 'low';
}

/** Orders a threshold so that a later warning compares greater ('expired' is the last one). */
export function thresholdRank(threshold: ExpiryThreshold): number {
  return threshold === 'expired' ? Number.POSITIVE_INFINITY : 1 / threshold;
}

/** "2026-05-01 14:30 UTC". */
export function formatUtc(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** "2026-05-01". */
export function formatUtcDate(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** "in 7 days", "in 5 hours", "expired 2 days ago", "expired today", "never". */
export function formatRelative(expiresAt: number | null, now: number): string {
  if (expiresAt === null) return 'never';
  const left = expiresAt - now;
  if (left > 0) {
    if (left < DAY_MS) {
      const hours = Math.max(1, Math.ceil(left / HOUR_MS));
      return `in ${hours} hour${hours === 1 ? '' : 's'}`;
    }
    const d = Math.ceil(left / DAY_MS);
    return `in ${d} day${d === 1 ? '' : 's'}`;
  }
  const ago = Math.floor(-left / DAY_MS);
  if (ago === 0) return 'expired today';
  return `expired ${ago} day${ago === 1 ? '' : 's'} ago`;
}

/** Relative plus absolute, the way rows show it: "in 7 days (2026-05-01 14:30 UTC)". */
export function formatExpiry(expiresAt: number | null, now: number): string {
  return expiresAt === null ? 'never expires' : `${formatRelative(expiresAt, now)} (${formatUtc(expiresAt)})`;
}

/** Most urgent first: expired before expiring, earlier expiry first, never-expiring last; ties by name. */
export function compareUrgency(a: Pick<Credential, 'expiresAt' | 'name'>, b: Pick<Credential, 'expiresAt' | 'name'>): number {
  const ea = a.expiresAt ?? Number.POSITIVE_INFINITY;
  const eb = b.expiresAt ?? Number.POSITIVE_INFINITY;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.name.localeCompare(b.name);
}
