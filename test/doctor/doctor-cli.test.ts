import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredConversation } from '../../src/app.js';
import { DAY_MS, systemClock } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { failures, startDoctorFixture, type DoctorFixture } from './doctor-fixture.js';

/** `keywarden doctor` as an operator meets it: exit codes, the checklist, own-credential expiry, Teams, no secrets. */

let fx: DoctorFixture;
beforeEach(async () => {
  fx = await startDoctorFixture();
});
afterEach(async () => {
  await fx.close();
});

/** Every secret value the sandbox holds: the client secret, every PAT, every Key Vault value. */
function sandboxSecrets(): string[] {
  const { seeds, handles } = fx.clouds;
  const vaultValues = ['kv-prod', 'kv-dev'].flatMap((v) => handles.keyVault.vault(v).secretNames().map((s) => handles.keyVault.vault(v).readStoredValue(s)));
  return [
    seeds.entra.keywarden.clientSecret,
    ...Object.values(seeds.databricks.tokens).map((t) => t.tokenValue),
    ...vaultValues,
  ].filter((s): s is string => typeof s === 'string' && s.length >= 8);
}

describe('keywarden doctor — everything granted', () => {
  it('passes every check, reports its own secret with days left, and exits 0', async () => {
    const { code, report } = await fx.doctor(['--json']);
    expect(failures(report!)).toEqual([]);
    expect(code).toBe(0);
    const ids = new Set(report!.checks.map((c) => c.id));
    for (const id of ['databricks.token-management', 'databricks.scim', 'databricks.workspace-conf', 'databricks.obo', 'databricks.instance-pools',
      'keyvault.list', 'keyvault.get', 'keyvault.set', 'graph.application-read-all', 'graph.application-readwrite-ownedby',
      'graph.groupmember-read-all', 'datafactory.reader']) {
      expect(ids, id).toContain(id);
    }
    const own = report!.ownCredentials.find((o) => o.name.includes('keywarden-bot-secret'))!;
    expect(own.kind).toBe('entra-password');
    expect(own.daysLeft).toBeGreaterThanOrEqual(88);
    expect(own.daysLeft).toBeLessThanOrEqual(90);
    expect(own.status).toBe('pass');

    const text = await fx.doctor();
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('✓ token management: list every user\'s and SP\'s tokens (workspace admin)');
    expect(text.stdout).toContain('checked without creating a token');
    expect(text.stdout).toContain('everything required is in place (exit 0)');
    expect(text.stdout).not.toContain('✗');
  });

  it('never prints a secret, in text or JSON, even when something fails', async () => {
    fx.clouds.handles.entra.directory.withdraw(fx.appId, 'Application.Read.All');
    fx.clouds.handles.keyVault.vault('kv-dev').withdraw(fx.appId);
    const secrets = sandboxSecrets();
    expect(secrets.length).toBeGreaterThan(5);
    for (const args of [[], ['--json']]) {
      const { stdout, stderr, code } = await fx.doctor(args);
      expect(code).toBe(1);
      for (const s of secrets) {
        expect(stdout).not.toContain(s);
        expect(stderr).not.toContain(s);
      }
    }
  });

  it('warns about its own client secret close to expiry, with the days left', async () => {
    const app = fx.clouds.seeds.entra.apps['keywarden-bot']!;
    fx.clouds.handles.entra.directory.addPassword({ kind: 'application', id: app.objectId }, { displayName: 'keywarden-bot-next', endDateTime: systemClock.now() + 5 * DAY_MS + 3_600_000 });

    const { code, report, stdout } = await fx.doctor(['--json']);
    expect(code).toBe(0);
    const soon = report!.ownCredentials.find((o) => o.name.includes('keywarden-bot-next'))!;
    expect(soon.daysLeft).toBe(5);
    expect(soon.status).toBe('warn');
    expect(stdout).not.toContain(fx.clouds.seeds.entra.keywarden.clientSecret);
    const text = await fx.doctor();
    expect(text.stdout).toMatch(/! app keywarden-bot \(.+\): client secret keywarden-bot-next — 5 day\(s\) left/);
  });
});

describe('keywarden doctor — OBO probe token (opt-in)', () => {
  it('with --create-probe-token mints a 5-minute "keywarden doctor probe" token and deletes it at once', async () => {
    const { code, stdout } = await fx.doctor(['--create-probe-token']);
    expect(code).toBe(0);
    expect(stdout).toContain('created a 5-minute "keywarden doctor probe" token');
    for (const ws of fx.clouds.handles.databricks.workspaces) {
      const probes = ws.tokens({ includeRevoked: true }).filter((t) => t.comment === 'keywarden doctor probe');
      expect(probes.length, ws.name).toBe(1);
      expect(probes[0]!.revoked).toBe(true);
      const lifetime = probes[0]!.expiryTime - probes[0]!.creationTime;
      expect(lifetime).toBeGreaterThan(295_000);
      expect(lifetime).toBeLessThanOrEqual(300_000);
    }
  });
});

describe('keywarden doctor — Teams channels', () => {
  it('reports a dead channel reference as missing and warns about a channel that looks private', async () => {
    const store = openSqliteStore({ path: join(fx.dir, 'keywarden.db') });
    const target = (id: string, channelName: string) => ({ conversationId: id, serviceUrl: 'https://smba.trafficmanager.net/emea/', tenantId: fx.clouds.tenantId, kind: 'channel' as const, channelName });
    store.put<StoredConversation>('conversations', '19:support@thread.tacv2', { target: target('19:support@thread.tacv2', 'platform-support'), status: 'dead', deadReason: 'BotNotInConversationRoster', changedAt: 1 });
    store.put<StoredConversation>('conversations', '19:secops@thread.tacv2', { target: target('19:secops@thread.tacv2', 'secops-private'), status: 'active', changedAt: 1 });
    store.close();
    const channel = (name: string, conversationId: string) => ({ name, conversationId, serviceUrl: 'https://smba.trafficmanager.net/emea/', tenantId: fx.clouds.tenantId });

    const { code, report } = await fx.doctor(['--json'], { teams: { channels: [channel('platform-support', '19:support@thread.tacv2'), channel('secops', '19:secops@thread.tacv2')] } });
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(failed.map((c) => `${c.id}@${c.scope}`)).toEqual(['teams.channel@platform-support']);
    expect(failed[0]!.detail).toContain('BotNotInConversationRoster');
    expect(failed[0]!.fix!.join(' ')).toContain('Manage team → Apps');
    const privateWarning = report!.checks.find((c) => c.id === 'teams.standard-channel')!;
    expect(privateWarning.scope).toBe('secops');
    expect(privateWarning.status).toBe('warn');
    expect(report!.checks.find((c) => c.id === 'teams.channel' && c.scope === 'secops')?.status).toBe('pass');
  });
});

describe('keywarden doctor — PAT auth and reachability', () => {
  it('with a workspace PAT kept in Key Vault, checks through it and reports that PAT\'s days left', async () => {
    const ws = fx.clouds.handles.databricks.workspace('ws-analytics');
    const pat = ws.addToken({ ownerName: 'alice.admin@contoso.com', comment: 'keywarden-auth', expiryTime: systemClock.now() + 20 * DAY_MS + 3_600_000 });
    fx.clouds.handles.keyVault.vault('kv-prod').seedSecret('keywarden-ws-analytics-pat', { value: pat.tokenValue });
    const workspaces = fx.clouds.config.databricks.workspaces.map((w) => (w.name === 'ws-analytics'
      ? { ...w, auth: { type: 'pat', keyVaultSecret: 'kv-prod/keywarden-ws-analytics-pat' } } : w));

    const { code, report, stdout } = await fx.doctor(['--json'], { databricks: { workspaces } });
    expect(failures(report!)).toEqual([]);
    expect(code).toBe(0);
    expect(report!.checks.find((c) => c.id === 'databricks.reachable' && c.scope === 'ws-analytics')?.detail).toBe('PAT from kv-prod/keywarden-ws-analytics-pat');
    const own = report!.ownCredentials.filter((o) => o.kind === 'databricks-pat');
    // Alice's other PAT there (poc-sandbox, the retire batch) is listed too: the PAT authenticates as her.
    expect(own).toEqual(expect.arrayContaining([expect.objectContaining({ where: 'workspace ws-analytics', name: 'keywarden-auth', daysLeft: 20, status: 'warn' })]));
    expect(stdout).not.toContain(pat.tokenValue);
  });

  it('an unreachable workspace fails "reachable" with the fix and skips its other checks', async () => {
    const workspaces = [...fx.clouds.config.databricks.workspaces, { name: 'ws-gone', host: 'http://127.0.0.1:9', auth: { type: 'entra' } }];
    const { code, report } = await fx.doctor(['--json'], { databricks: { workspaces } });
    expect(code).toBe(1);
    const gone = report!.checks.filter((c) => c.scope === 'ws-gone');
    expect(gone[0]).toMatchObject({ id: 'databricks.reachable', status: 'fail', missing: 'a network path to the workspace' });
    expect(gone.slice(1).every((c) => c.status === 'skip')).toBe(true);
    expect(failures(report!).map((c) => c.scope)).toEqual(['ws-gone']);
  });
});

describe('keywarden doctor — bad configuration', () => {
  it('exits 2 naming the key when the Azure credential is incomplete', async () => {
    const { clientSecret: _omit, ...credential } = fx.clouds.config.azure.credential;
    const { code, stderr, stdout } = await fx.doctor([], { azure: { ...fx.clouds.config.azure, credential } });
    expect(code).toBe(2);
    expect(stderr).toContain('azure.credential.clientSecret');
    expect(stdout).toBe('');
  });

  it('exits 2 on an unknown key or option', async () => {
    const typo = await fx.doctor([], { aprovals: { groups: [] } });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('aprovals: unknown key — did you mean "approvals"?');
    const option = await fx.doctor(['--jsn']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('unknown option "--jsn"');
  });
});

describe('keywarden doctor --sandbox as a child process', () => {
  it('runs through bin/keywarden.mjs against freshly started emulated clouds and exits 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'kw-doctor-cli-'));
    const bin = fileURLToPath(new URL('../../bin/keywarden.mjs', import.meta.url));
    try {
      const env = { ...process.env };
      for (const k of ['KEYWARDEN_CONFIG', 'MicrosoftAppId', 'MicrosoftAppPassword', 'MicrosoftAppTenantId', 'MicrosoftAppType', 'PORT']) delete env[k];
      const child = spawn(process.execPath, [bin, 'doctor', '--sandbox'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(out).toContain('Azure Databricks · ws-prod');
      expect(out).toContain('(exit 0)');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 90_000);
});
