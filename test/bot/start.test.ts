import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKeywarden, type RunningKeywarden } from '../../src/cli/start.js';
import { createLogger } from '../../src/logging/logger.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';
import { messageActivity } from '../helpers/bot.js';

describe('keywarden start (bot part)', () => {
  let dir: string;
  let connector: ConnectorEmulator;
  let running: RunningKeywarden | undefined;
  const lines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keywarden-start-'));
    connector = await startConnectorEmulator();
  });
  afterAll(async () => {
    await running?.stop();
    await connector.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the config, opens the store, runs the sandbox hook and serves /healthz and /help on 127.0.0.1', async () => {
    const configPath = join(dir, 'keywarden.json');
    writeFileSync(configPath, JSON.stringify({ mode: 'sandbox', server: { port: 0, host: '0.0.0.0' }, store: { path: join(dir, 'kw.db') } }));
    let sandboxStarted = false;
    let sandboxClosed = false;
    running = await startKeywarden({
      configPath, env: {}, handleSignals: false,
      logger: createLogger({ destination: { write: (l: string) => lines.push(l) } }),
      startSandbox: async ({ config }) => {
        sandboxStarted = true;
        return { config: { ...config, bot: { ...config.bot, name: 'Sandbox Keywarden' } }, close: async () => { sandboxClosed = true; } };
      },
    });
    expect(sandboxStarted).toBe(true);
    // Sandbox mode binds loopback whatever server.host says.
    expect(running.server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${running.server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${running.server.url}/readyz`)).status).toBe(200);

    const activity = messageActivity(connector.serviceUrl, '/help');
    const res = await fetch(`${running.server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
    expect(res.status).toBe(200);
    const reply = await connector.waitFor((a) => a.replyToId === activity.id);
    expect(JSON.stringify(reply.attachments)).toContain('Sandbox Keywarden commands');

    await running.stop();
    expect(running.keywarden.store.isOpen).toBe(false);
    expect(sandboxClosed).toBe(true);
    running = undefined;
  });

  it('an invalid config stops start-up with one line per problem', async () => {
    const configPath = join(dir, 'bad.json');
    writeFileSync(configPath, JSON.stringify({ mode: 'production', server: { port: 'nope' } }));
    const err = await startKeywarden({ configPath, env: {}, handleSignals: false }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('CONFIG_INVALID');
    expect((err as { problems: string[] }).problems.some((p) => p.startsWith('server.port'))).toBe(true);
  });
});
