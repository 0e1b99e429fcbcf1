import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

/** Pipeline callers in config: a clear line per problem, naming the key and the fix. */

const dir = mkdtempSync(join(tmpdir(), 'kw-pipelines-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problemsOf(config: string): string[] {
  const path = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, config);
  try {
    loadConfig({ path, env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('pipelines config', () => {
  it('accepts a caller with its standing-approval limits', () => {
    expect(problemsOf(`pipelines:\n  audiences: ["api://keywarden"]\n  callers:\n    - objectId: f0f0f0f0-0000-4000-8000-0000000ad0a1\n      name: adf-analytics\n      vaults: [kv-prod]\n      secretPrefix: adf-jit-\n      limits: { maxHours: 4, hours: [22, 6] }\n`)).toEqual([]);
  });

  it('names each problem', () => {
    const problems = problemsOf([
      'mode: production',
      'bot: { appId: a, appPassword: b, tenantId: t }',
      'keyVault: { vaults: [{ name: kv-prod, url: "https://kv-prod.vault.azure.net" }] }',
      'pipelines:',
      '  callers:',
      '    - { objectId: not-a-guid, name: a, vaults: [kv-prod], secretPrefix: "x_" }',
      '    - { objectId: f0f0f0f0-0000-4000-8000-0000000ad0a1, name: b, vaults: [kv-other], workspaces: [ws-none], secretPrefix: x-, limits: { maxHours: 48 } }',
    ].join('\n'));
    expect(problems.join('\n')).toMatch(/pipelines\.callers\[0\]\.objectId: .*GUID/);
    expect(problems.join('\n')).toMatch(/pipelines\.callers\[0\]\.secretPrefix: .*Key Vault secret name rules/);
  });

  it('checks references once the shape is right', () => {
    const problems = problemsOf([
      'mode: production',
      'bot: { appId: a, appPassword: b, tenantId: t }',
      'keyVault: { vaults: [{ name: kv-prod, url: "https://kv-prod.vault.azure.net" }] }',
      'pipelines:',
      '  callers:',
      '    - { objectId: f0f0f0f0-0000-4000-8000-0000000ad0a1, name: b, vaults: [kv-other], workspaces: [ws-none], secretPrefix: x-, limits: { maxHours: 48 } }',
    ].join('\n'));
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringMatching(/^pipelines\.audiences: required when pipelines\.callers is set/),
      expect.stringMatching(/^pipelines\.callers\[0\]\.limits\.maxHours: 48 is above workflows\.jit\.maxHours \(24\)/),
      expect.stringMatching(/^pipelines\.callers\[0\]\.vaults: kv-other is not in keyVault\.vaults/),
      expect.stringMatching(/^pipelines\.callers\[0\]\.workspaces: ws-none is not in databricks\.workspaces/),
    ]));
  });
});
