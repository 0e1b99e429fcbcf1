import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { configSchema, type KeywardenConfig } from '../../src/config/schema.js';
import type { EstateError } from '../../src/domain/credential.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../../src/sandbox/estate.js';
import { createScanner, type ScannerOptions } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { threadScanEngine } from '../../src/scanner/thread/engine.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/**
 * The scan thread borrows its access tokens from the bot's credential (it loads no MSAL of its own): one token request
 * per audience for the whole scan, and a credential Entra refuses fails each estate with the same message as a scan on
 * the bot's thread, naming the fix, with no token or secret in it.
 */

const clock = new AdjustableClock();
let clouds: SandboxClouds;
let dir: string;

beforeAll(async () => {
  clouds = await startSandboxClouds({ clock });
  dir = mkdtempSync(join(tmpdir(), 'kw-thread-tokens-'));
});
afterAll(async () => {
  await clouds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function configWith(secret: string | undefined, file: string): KeywardenConfig {
  const config = configSchema.parse(withSandboxConfig({ store: { path: join(dir, file) } }, clouds.config));
  if (secret !== undefined) config.azure.credential.clientSecret = secret;
  return config;
}

async function scan(config: KeywardenConfig, threaded: boolean) {
  const store = openSqliteStore({ path: config.store.path, clock });
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => { logLines.push(line); } } });
  const retry = { maxRetries: 0, baseDelayMs: 5 };
  const engine = threaded ? threadScanEngine({ config, address: store.address!, clock, logger, retry }) : undefined;
  const sources: ScannerOptions['sources'] = threaded ? [] : createInventorySources(config, { clock, retry }).sources;
  const scanner = createScanner({ sources, engine, config, store, clock, logger });
  try {
    const result = await scanner.runScan('command');
    return { result, logLines };
  } finally {
    await scanner.shutdown();
    store.close();
  }
}

// Entra's timestamps and trace and correlation ids differ between two answers; the rest of the message is compared.
const stable = (errors: EstateError[]) => errors
  .map((e) => `${e.estate}/${e.scope}: ${e.message.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/g, 'T').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, 'ID')}`)
  .sort();

describe("the scan thread's tokens", () => {
  it('come from the bot: the thread scans every estate with one token request per audience', async () => {
    const { authority } = clouds.handles.entra;
    authority.clearRequests();
    const { result } = await scan(configWith(undefined, 'good.db'), true);
    expect(result.errors).toEqual([]);
    expect(result.counts?.credentials).toBeGreaterThan(10);
    // Graph, Key Vault, Databricks and ARM: one token each, however many clients and calls asked.
    const asked = authority.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token')).length;
    expect(asked).toBeGreaterThan(0);
    expect(asked).toBeLessThanOrEqual(4);
  }, 60_000);

  it('a wrong client secret fails each estate as on the bot\'s thread: Entra\'s reason and the fix, no secret or token', async () => {
    const wrong = 'Wr0ng~secret-value-for-the-test-0123456789';
    const inline = await scan(configWith(wrong, 'inline.db'), false);
    const threaded = await scan(configWith(wrong, 'thread.db'), true);
    expect(threaded.result.errors.length).toBeGreaterThan(3);
    expect(stable(threaded.result.errors)).toEqual(stable(inline.result.errors));
    const text = threaded.result.errors.map((e) => e.message).join('\n');
    expect(text).toContain('AADSTS7000215');
    expect(text).toContain('azure.credential');
    // Every estate names the fix, not only Entra's reason (Key Vault used to say only "Key Vault said: AADSTS…").
    for (const error of threaded.result.errors) expect(`${error.estate}: ${error.message}`).toMatch(/AADSTS7000215.*azure\.credential|azure\.credential.*AADSTS7000215/s);
    expect(`${text}\n${threaded.logLines.join('\n')}`).not.toContain(wrong);
    expect(threaded.logLines.join('\n')).not.toMatch(/eyJ[A-Za-z0-9_-]{4,}\./);
  }, 90_000);
});
