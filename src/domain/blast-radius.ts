/**
 * Ranking by what matters: blast radius × urgency. Blast radius = 1 + the credential's known consumers + the pipelines
 * behind them (what breaks when it expires); urgency grows as expiry nears and is highest once it has passed. A
 * never-expiring credential has no urgency (it ranks after every expiring one; findings raise it elsewhere).
 */
import { DAY_MS } from '../clock.js';
import type { Credential } from './credential.js';
import { compareUrgency } from './expiry.js';

type Ranked = Pick<Credential, 'expiresAt' | 'name' | 'consumers'>;

/** Data Factory consumers (linked services) of the credential, plus `extra` configured ones. */
export function consumerCount(c: Pick<Credential, 'consumers'>, extra = 0): number {
  return c.consumers.length + extra;
}

/** 1 + consumers + the pipelines that use them. */
export function blastRadius(c: Pick<Credential, 'consumers'>, extra = 0): number {
  const pipelines = c.consumers.reduce((n, x) => n + (x.pipelines?.length ?? 0), 0);
  return 1 + consumerCount(c, extra) + pipelines;
}

/** 30 / days left (1 day → 30, 7 days → ~4.3, 30 days → 1), capped at 120 for the last six hours and once expired. */
export function urgencyScore(c: Pick<Credential, 'expiresAt'>, now: number): number {
  if (c.expiresAt === null || c.expiresAt === -1) return 0;
  const days = (c.expiresAt - now) / DAY_MS;
  if (days <= 0.25) return 120;
  return Math.min(120, 30 / days);
}

export function riskScore(c: Ranked, now: number): number {
  return blastRadius(c) * urgencyScore(c, now);
}

/** Highest blast radius × urgency first; ties (and never-expiring ones) by expiry, then name. */
export function compareRisk(now: number): (a: Ranked, b: Ranked) => number {
  return (a, b) => {
    const ra = riskScore(a, now);
    const rb = riskScore(b, now);
    if (ra !== rb) return rb - ra;
    return compareUrgency(a, b);
  };
}

/** "2 consumers", "1 consumer", "no known consumer". */
export function consumersLabel(n: number): string {
  return n === 0 ? 'no known consumer' : `${n} consumer${n === 1 ? '' : 's'}`;
}
