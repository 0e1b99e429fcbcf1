import { describe, expect, it } from 'vitest';
import { VersionsSeenCache, type VersionsSeen } from '../../src/providers/keyvault/versions-seen.js';

/** The packed "versions seen" cache gives back exactly what was put in, across growth, deletes and reuse. */

const seen = (i: number, current: string | undefined): VersionsSeen => ({
  updatedAt: 1_700_000_000_000 + i, createdAt: i % 3 ? 1_600_000_000_000 + i : undefined, seenAt: 1_800_000_000_000 + i,
  current, count: i % 7, disabled: i % 2,
});
const hex = (i: number) => i.toString(16).padStart(32, 'a');

describe('VersionsSeenCache', () => {
  it('round-trips hex versions, other versions and none, past its first arrays', () => {
    const cache = new VersionsSeenCache();
    const all = new Map<string, VersionsSeen>();
    for (let i = 0; i < 300; i++) {
      const v = seen(i, i % 10 === 0 ? undefined : i % 10 === 1 ? `Version-${i}` : hex(i));
      cache.set(`secret-${i}`, v);
      all.set(`secret-${i}`, v);
    }
    expect(cache.size).toBe(300);
    for (const [name, v] of all) expect(cache.get(name)).toEqual(v);
    expect(cache.get('secret-300')).toBeUndefined();
  });

  it('overwrites in place, forgets deleted secrets and reuses their slots', () => {
    const cache = new VersionsSeenCache();
    for (let i = 0; i < 100; i++) cache.set(`s${i}`, seen(i, `odd-${i}`));
    cache.set('s5', seen(500, hex(500)));
    expect(cache.get('s5')).toEqual(seen(500, hex(500)));
    cache.keepOnly(new Set(['s1', 's2', 's5']));
    expect(cache.size).toBe(3);
    expect(cache.get('s7')).toBeUndefined();
    cache.set('new', seen(9, undefined));
    expect(cache.get('new')).toEqual(seen(9, undefined));
    expect(cache.get('s1')).toEqual(seen(1, 'odd-1'));
    expect(cache.get('s5')).toEqual(seen(500, hex(500)));
  });
});
