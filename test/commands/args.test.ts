import { describe, expect, it } from 'vitest';
import { formatExpiringQuery, parseExpiringArgs, parseFindingsArgs } from '../../src/commands/args.js';

const ok = (args: string) => {
  const r = parseExpiringArgs(args);
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

describe('/expiring arguments', () => {
  it('defaults to 30 days and every kind', () => {
    expect(ok('')).toEqual({ days: 30, kinds: ['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate'], filter: [] });
  });

  it.each([['14d', 14], ['14 d', 14], ['14', 14], ['2w', 14], ['3 weeks', 21], ['1 day', 1], ['0d', 0]])('reads %s as %i days', (text, days) => {
    expect(ok(text).days).toBe(days);
  });

  it('reads kinds and a name filter in any order before the filter', () => {
    expect(ok('pat 7d etl')).toEqual({ days: 7, kinds: ['databricks-pat'], filter: ['etl'] });
    expect(ok('sp')).toMatchObject({ kinds: ['entra-password', 'entra-certificate'] });
    expect(ok('secret pat 14d')).toMatchObject({ kinds: ['databricks-pat', 'keyvault-secret'], days: 14 });
    expect(ok('14d all Prod ETL')).toMatchObject({ filter: ['prod', 'etl'] });
  });

  it.each(['14x', '-3d', '14d 7d', '99999d', '1.5d', `${'x'.repeat(120)}`])('refuses %s with a reason', (text) => {
    const r = parseExpiringArgs(text);
    expect(r.ok).toBe(false);
  });

  it('writes the query back so a page link can replay it', () => {
    const q = ok('2w sp etl');
    expect(formatExpiringQuery(q)).toBe('14d sp etl');
    expect(ok(formatExpiringQuery(q))).toEqual(q);
  });
});

describe('/expiring disabled', () => {
  it('the word "disabled" asks for disabled credentials too, anywhere in the arguments, and survives a page link', () => {
    expect(ok('14d secret disabled jit')).toEqual({ days: 14, kinds: ['keyvault-secret'], filter: ['jit'], disabled: true });
    expect(ok('jit disabled')).toMatchObject({ filter: ['jit'], disabled: true });
    expect(ok('14d')).not.toHaveProperty('disabled');
    const q = ok('2w pat disabled etl');
    expect(formatExpiringQuery(q)).toBe('14d pat disabled etl');
    expect(ok(formatExpiringQuery(q))).toEqual(q);
  });
});

describe('/findings arguments', () => {
  it('takes an optional severity', () => {
    expect(parseFindingsArgs('')).toEqual({ ok: true, value: { minSeverity: 'info' } });
    expect(parseFindingsArgs('HIGH')).toEqual({ ok: true, value: { minSeverity: 'high' } });
    expect(parseFindingsArgs('urgent')).toMatchObject({ ok: false, problem: expect.stringMatching(/use one of info, low, medium, high, critical/) });
  });
});
