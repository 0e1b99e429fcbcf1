import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type LoadConfigOptions } from '../../src/config/load.js';
import { redactText } from '../../src/logging/redact.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/config');
const REPO = resolve(import.meta.dirname, '../..');
const fixture = (name: string) => join(FIXTURES, name);

function problemsOf(options: LoadConfigOptions): string[] {
  try {
    loadConfig(options);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

let empty: string;
beforeEach(() => {
  empty = mkdtempSync(join(tmpdir(), 'kw-config-'));
});
afterEach(() => rmSync(empty, { recursive: true, force: true }));

describe('finding the file', () => {
  it('runs the sandbox with defaults when there is no file anywhere', () => {
    const loaded = loadConfig({ cwd: empty, env: {} });
    expect(loaded.source).toBe('none');
    expect(loaded.path).toBeUndefined();
    expect(loaded.config.mode).toBe('sandbox');
    expect(loaded.config.server).toMatchObject({ host: '127.0.0.1', port: 3978 });
    expect(loaded.config.store.path).toBe('./data/keywarden.db');
    expect(loaded.config.sandbox.dataDir).toBe('./data/sandbox');
  });

  it('prefers the explicit path, then KEYWARDEN_CONFIG, then ./keywarden.yaml, then ./keywarden.json', () => {
    writeFileSync(join(empty, 'keywarden.json'), JSON.stringify({ server: { port: 4001 } }));
    expect(loadConfig({ cwd: empty, env: {} })).toMatchObject({ source: 'file', path: join(empty, 'keywarden.json'), config: { server: { port: 4001 } } });
    writeFileSync(join(empty, 'keywarden.yaml'), 'server:\n  port: 4002\n');
    expect(loadConfig({ cwd: empty, env: {} }).config.server.port).toBe(4002);
    expect(loadConfig({ cwd: empty, env: { KEYWARDEN_CONFIG: fixture('sandbox-minimal.yaml') } }).config.server.port).toBe(3999);
    expect(loadConfig({ cwd: empty, path: fixture('production.json'), env: { KEYWARDEN_CONFIG: fixture('sandbox-minimal.yaml') } }).config.mode).toBe('production');
  });

  it('reports a missing explicit file with the variable that named it', () => {
    expect(problemsOf({ cwd: empty, env: { KEYWARDEN_CONFIG: 'nope.yaml' } })).toEqual([
      `config file: ${join(empty, 'nope.yaml')} does not exist — create it (see keywarden.example.yaml) or fix KEYWARDEN_CONFIG`,
    ]);
  });
});

describe('the example file', () => {
  it('keywarden.example.yaml loads cleanly in production mode with its env var set', () => {
    const loaded = loadConfig({ path: join(REPO, 'keywarden.example.yaml'), env: { MicrosoftAppPassword: 'example-password-from-env' } });
    expect(loaded.source).toBe('file');
    expect(loaded.config.mode).toBe('production');
    expect(loaded.config.bot.appPassword).toBe('example-password-from-env');
    expect(loaded.config.databricks.workspaces.map((w) => w.name)).toEqual(['ws-prod', 'ws-dev']);
    expect(loaded.config.teams.channels).toHaveLength(2);
  });
});

describe('env values and overrides', () => {
  it('replaces env:NAME values and registers secret-named ones for redaction', () => {
    const password = 'app-password-from-the-environment';
    const pat = 'workspace-token-from-the-environment';
    const { config } = loadConfig({
      path: fixture('production-env.yaml'),
      env: { KW_TEST_APP_ID: 'app-id-1', KW_TEST_APP_PASSWORD: password, KW_TEST_PAT: pat },
    });
    expect(config.bot).toMatchObject({ appId: 'app-id-1', appPassword: password });
    expect(config.databricks.workspaces[0]!.auth).toEqual({ type: 'pat', token: pat });
    // Loading a secret means logs will never show it.
    expect(redactText(`pw=${password} pat=${pat} app=app-id-1`)).toBe('pw=[REDACTED] pat=[REDACTED] app=app-id-1');
  });

  it('names each missing env var on its key, once', () => {
    expect(problemsOf({ path: fixture('production-env.yaml'), env: { KW_TEST_APP_ID: 'app-id-1' } })).toEqual([
      'bot.appPassword: environment variable KW_TEST_APP_PASSWORD is not set — export KW_TEST_APP_PASSWORD or change the value in the config file',
      'databricks.workspaces[0].auth.token: environment variable KW_TEST_PAT is not set — export KW_TEST_PAT or change the value in the config file',
    ]);
  });

  it('lets the Microsoft* and PORT variables override the file', () => {
    const { config } = loadConfig({
      path: fixture('production-missing.yaml'),
      env: { MicrosoftAppId: 'env-app', MicrosoftAppType: 'UserAssignedMSI', MicrosoftAppTenantId: 'env-tenant', PORT: '4100' },
    });
    expect(config.bot).toMatchObject({ appId: 'env-app', appType: 'UserAssignedMSI', tenantId: 'env-tenant' });
    expect(config.server.port).toBe(4100);
    expect(problemsOf({ cwd: empty, env: { PORT: 'eighty' } })).toEqual([
      'server.port: PORT="eighty" is not a port number — set PORT to 0..65535 or unset it',
    ]);
  });
});

describe('production mode', () => {
  it('refuses to run without bot credentials and a tenant, naming keys and env vars', () => {
    const problems = problemsOf({ path: fixture('production-missing.yaml'), env: {} });
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^bot\.appId: required in production mode — .*MicrosoftAppId/);
    expect(problems[1]).toMatch(/^bot\.appPassword: required in production mode .*MicrosoftAppPassword.*UserAssignedMSI/);
    expect(problems[2]).toMatch(/^bot\.tenantId: required in production mode — .*MicrosoftAppTenantId/);
  });

  it('accepts a managed identity instead of a password (JSON file)', () => {
    const { config } = loadConfig({ path: fixture('production.json'), env: {} });
    expect(config.bot.appType).toBe('UserAssignedMSI');
    expect(config.keyVault.vaults[0]!.environment).toBe('default');
  });
});

describe('invalid files', () => {
  it('lists every problem, one line each, as "<key.path>: <what> — <fix>"', () => {
    const problems = problemsOf({ path: fixture('invalid.yaml'), env: {} });
    expect(problems).toEqual([
      'aprovals: unknown key — did you mean "approvals"?',
      'server.prot: unknown key — did you mean "port"?',
      'mode: "prod" is not allowed — use one of: sandbox, production',
      'server.port: expected number, got string — write a number without quotes, e.g. 3978',
      'log.level: "loud" is not allowed — use one of: trace, debug, info, warn, error, fatal, silent',
      'databricks.workspaces[0].host: invalid value — must be a full URL such as https://host:port',
      'databricks.workspaces[0].auth: invalid value — set exactly one of keyVaultSecret or token',
      'databricks.workspaces[1].auth.type: unknown type — use one of "entra", "pat"',
      'policy.thresholdsDays: invalid value — list thresholds in descending order, e.g. [30, 14, 7, 1]',
      'scanner.concurrencyPerHost: must be at most 32 — lower the value',
      'teams.channels[0].conversationId: is required — add teams.channels[0].conversationId to the config file',
      'teams.channels[0].serviceUrl: is required — add teams.channels[0].serviceUrl to the config file',
      'teams.channels[0].tenantId: is required — add teams.channels[0].tenantId to the config file',
    ]);
    for (const p of problems) expect(p).toMatch(/^\S+: .+ — .+$/);
  });

  it('says an unknown key with no close match, listing the valid ones', () => {
    writeFileSync(join(empty, 'keywarden.yaml'), 'colour: blue\n');
    const [problem] = problemsOf({ cwd: empty, env: {} });
    expect(problem).toMatch(/^colour: unknown key — remove it; valid keys at the top level are mode, server, store/);
  });

  it('points at the line of a YAML syntax error and the cause of a JSON one', () => {
    const [yamlProblem] = problemsOf({ path: fixture('broken.yaml'), env: {} });
    expect(yamlProblem).toMatch(/^config file line \d+ column \d+: .+ — fix the YAML syntax there$/);
    const [jsonProblem] = problemsOf({ path: fixture('broken.json'), env: {} });
    expect(jsonProblem).toMatch(/^config file: not valid JSON \(.+\) — fix the syntax or use YAML$/);
    expect(problemsOf({ path: fixture('list.yaml'), env: {} })[0]).toMatch(/^config file: the top level must be a mapping/);
  });

  it('never echoes a secret value in a problem', () => {
    writeFileSync(join(empty, 'keywarden.yaml'), 'mode: dapi0123456789abcdef0123456789abcdef\n');
    const problems = problemsOf({ cwd: empty, env: {} });
    expect(problems.join('\n')).not.toContain('dapi0123456789abcdef0123456789abcdef');
  });

  it('is an Error whose message carries every problem line', () => {
    try {
      loadConfig({ path: fixture('production-missing.yaml'), env: {} });
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ name: 'ConfigError', code: 'CONFIG_INVALID', path: fixture('production-missing.yaml') });
      expect((err as Error).message.split('\n')).toHaveLength(4);
    }
  });
});
