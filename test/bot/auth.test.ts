import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBotServer, type BotServer } from '../../bot/server.js';
import { createKeywarden } from '../../src/app.js';
import { systemClock } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { messageActivity } from '../helpers/bot.js';

describe('inbound authentication', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-auth-'));
  let server: BotServer | undefined;
  const lines: string[] = [];
  const logger = createLogger({ destination: { write: (l: string) => lines.push(l) } });
  const PASSWORD = 'Abc8Q~not-a-real-password-0123456789abcd';
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function core(config: ReturnType<typeof configSchema.parse>) {
    return createKeywarden({ config, store: openSqliteStore({ path: join(dir, `${Math.random()}.db`) }), logger, clock: systemClock });
  }

  it('production mode refuses to start without Bot Framework credentials', async () => {
    const config = configSchema.parse({ mode: 'production' });
    const keywarden = core(config);
    await expect(startBotServer({ config, keywarden, logger, port: 0 })).rejects.toMatchObject({ code: 'bot-credentials-missing' });
    const noTenant = configSchema.parse({ mode: 'production', bot: { appId: 'app-1', appPassword: PASSWORD } });
    await expect(startBotServer({ config: noTenant, keywarden, logger, port: 0 })).rejects.toThrow(/bot\.tenantId is required/);
    await keywarden.stop();
  });

  it('with an app id, an activity without a valid Bot Framework JWT gets 401 and the password never reaches the log', async () => {
    const config = configSchema.parse({ mode: 'production', server: { host: '127.0.0.1' }, bot: { appId: '00000000-0000-0000-0000-0000000000b1', appPassword: PASSWORD, tenantId: 'tenant-1' } });
    server = await startBotServer({ config, keywarden: core(config), logger, port: 0 });
    const activity = messageActivity('http://127.0.0.1:9/', '/help');
    const unsigned = await fetch(`${server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
    expect(unsigned.status).toBe(401);
    const forged = await fetch(`${server.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer abc.def.ghi' }, body: JSON.stringify(activity) });
    expect(forged.status).toBe(401);
    expect(lines.some((l) => l.includes('ANONYMOUS'))).toBe(false);
    expect(lines.join('\n')).not.toContain(PASSWORD);
  });
});
