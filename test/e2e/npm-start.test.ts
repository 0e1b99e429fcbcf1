import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { messageActivity } from '../helpers/bot.js';

// `npm start` with no configuration, as a person runs it: the sandbox on 127.0.0.1:3978 with every emulator.
const BOT = 'http://127.0.0.1:3978';

async function waitUntil<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('npm start without configuration', () => {
  let child: ChildProcess;
  let output = '';
  let connector: ConnectorEmulator;

  beforeAll(async () => {
    const env = { ...process.env };
    delete env.KEYWARDEN_CONFIG;
    delete env.NODE_EXTRA_CA_CERTS; // the CLI must find and trust the sandbox CA by itself
    child = spawn(process.execPath, ['bin/keywarden.mjs', 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { output += b.toString(); });
    connector = await startConnectorEmulator();
    await waitUntil(async () => ((await fetch(`${BOT}/healthz`)).ok ? true : undefined), 60_000, '/healthz');
  }, 90_000);

  afterAll(async () => {
    await connector?.close();
    if (child && child.exitCode === null) {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
  });

  it('listens on 127.0.0.1:3978 and prints the URL of every emulator and of the Playground', async () => {
    expect((await fetch(`${BOT}/healthz`)).status).toBe(200);
    await waitUntil(() => (output.includes('Sandbox control') ? true : undefined), 10_000, 'the sandbox banner');
    for (const label of ['Agents Playground', 'Bot Connector emulator', 'Entra token endpoint', 'Microsoft Graph', 'Data Factory (ARM)',
      'Databricks ws-prod', 'Databricks ws-dev', 'Databricks ws-analytics', 'Key Vault kv-prod', 'Key Vault kv-dev']) {
      expect(output).toMatch(new RegExp(`${label.replace(/[()]/g, '\\$&')}\\)?\\s*:?\\s+https?://127\\.0\\.0\\.1:\\d+`));
    }
    expect(output).toContain('running the SANDBOX');
  });

  it('answers /help over the Bot Framework protocol with a card', async () => {
    const res = await fetch(`${BOT}/api/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(messageActivity(connector.serviceUrl, '/help')),
    });
    expect(res.status).toBeLessThan(300);
    const reply = await connector.waitFor((a) => a.type === 'message' && (a.attachments?.length ?? 0) > 0, 15_000);
    expect(JSON.stringify(reply.attachments)).toContain('/expiring');
  });

  it('is ready after its start-up scan and counts it in /metrics', async () => {
    const metrics = await waitUntil(async () => {
      const text = await (await fetch(`${BOT}/metrics`)).text();
      return /keywarden_scans_total\{trigger="start",outcome="ok"\} 1/.test(text) ? text : undefined;
    }, 30_000, 'the start-up scan in /metrics');
    expect(metrics).toMatch(/keywarden_credentials\{kind="databricks-pat"\} \d+/);
    expect(metrics).toMatch(/keywarden_cloud_call_duration_seconds_count\{estate="databricks"/);
    const ready = await (await fetch(`${BOT}/readyz`)).json() as { checks: Array<{ name: string; ok: boolean }> };
    expect(ready.checks.find((c) => c.name === 'store')?.ok).toBe(true);
    expect(ready.checks.find((c) => c.name === 'scheduler')?.ok).toBe(true);
  });

  it('stops gracefully on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    process.kill(-child.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
  }, 20_000);
});
