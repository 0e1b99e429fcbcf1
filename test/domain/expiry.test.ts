import { describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/clock.js';
import {
  compareUrgency, daysLeft, expiresWithin, formatExpiry, formatRelative, severityForThreshold, thresholdFor,
} from '../../src/domain/expiry.js';
import { NOW } from './fixtures.js';

const at = (ms: number | null) => ({ expiresAt: ms });
const T = [30, 14, 7, 1];

describe('thresholdFor', () => {
  it('returns the tightest threshold crossed, counting from now', () => {
    expect(thresholdFor(at(NOW + 45 * DAY_MS), T, NOW)).toBeNull();
    expect(thresholdFor(at(NOW + 30 * DAY_MS), T, NOW)).toBe(30);
    expect(thresholdFor(at(NOW + 20 * DAY_MS), T, NOW)).toBe(30);
    expect(thresholdFor(at(NOW + 14 * DAY_MS - 1000), T, NOW)).toBe(14);
    expect(thresholdFor(at(NOW + 6.5 * DAY_MS), T, NOW)).toBe(7);
    expect(thresholdFor(at(NOW + 2 * HOUR_MS), T, NOW)).toBe(1);
    expect(thresholdFor(at(NOW), T, NOW)).toBe('expired');
    expect(thresholdFor(at(NOW - 2 * DAY_MS), T, NOW)).toBe('expired');
    expect(thresholdFor(at(null), T, NOW)).toBeNull();
  });

  it('accepts thresholds in any order', () => {
    expect(thresholdFor(at(NOW + 5 * DAY_MS), [1, 30, 7], NOW)).toBe(7);
  });

  it('raises severity as the days drop', () => {
    expect([30, 14, 7, 1, 'expired'].map((t) => severityForThreshold(t as number))).toEqual(['low', 'medium', 'high', 'critical', 'critical']);
  });
});

describe('days left and formatting', () => {
  it('counts days the way people read them', () => {
    expect(daysLeft(at(NOW + 13.2 * DAY_MS), NOW)).toBe(14);
    expect(daysLeft(at(NOW + 14 * DAY_MS - 1), NOW)).toBe(14);
    expect(daysLeft(at(NOW - 2.5 * DAY_MS), NOW)).toBe(-2);
    expect(daysLeft(at(NOW - HOUR_MS), NOW)).toBe(0);
    expect(daysLeft(at(null), NOW)).toBeNull();
  });

  it('agrees with expiresWithin', () => {
    expect(expiresWithin(at(NOW + 14 * DAY_MS), 14, NOW)).toBe(true);
    expect(expiresWithin(at(NOW + 14 * DAY_MS + 1), 14, NOW)).toBe(false);
    expect(expiresWithin(at(NOW - DAY_MS), 0, NOW)).toBe(true);
    expect(expiresWithin(at(null), 3650, NOW)).toBe(false);
  });

  it('writes relative and absolute UTC dates', () => {
    expect(formatRelative(NOW + 7 * DAY_MS, NOW)).toBe('in 7 days');
    expect(formatRelative(NOW + 5 * HOUR_MS, NOW)).toBe('in 5 hours');
    expect(formatRelative(NOW - 2 * DAY_MS, NOW)).toBe('expired 2 days ago');
    expect(formatRelative(NOW - HOUR_MS, NOW)).toBe('expired today');
    expect(formatExpiry(Date.UTC(2026, 3, 8, 12, 0), NOW)).toBe('in 7 days (2026-04-08 12:00 UTC)');
    expect(formatExpiry(null, NOW)).toBe('never expires');
  });

  it('ranks expired first, then by expiry, never-expiring last', () => {
    const list = [
      { name: 'never', expiresAt: null }, { name: 'b', expiresAt: NOW + DAY_MS }, { name: 'old', expiresAt: NOW - 5 * DAY_MS },
      { name: 'a', expiresAt: NOW + DAY_MS }, { name: 'recent', expiresAt: NOW - DAY_MS },
    ];
    expect(list.sort(compareUrgency).map((x) => x.name)).toEqual(['old', 'recent', 'a', 'b', 'never']);
  });
});
