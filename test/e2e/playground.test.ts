import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_LAUNCH, ensureChromium } from '../../scripts/chromium.js';

/**
 * The sandbox as a person uses it: the Agents Playground in headless Chromium, the bot installed in the support
 * channel by opening it, a warning card there, and Alex Wilber (an approver) clicking Rotate on the SP-owned PAT.
 */
const PORT = 3987;
const PLAYGROUND_PORT = 56157;

describe('the sandbox in the Agents Playground', () => {
  let child: ChildProcess;
  let browser: Browser | undefined;
  let output = '';
  let dir: string;

  beforeAll(async () => {
    ensureChromium();
    dir = mkdtempSync(join(tmpdir(), 'kw-playground-'));
    const config = join(dir, 'keywarden.yaml');
    writeFileSync(config, [
      'mode: sandbox',
      `server: { port: ${PORT} }`,
      `store: { path: ${JSON.stringify(join(dir, 'keywarden.db'))} }`,
      `sandbox: { playgroundPort: ${PLAYGROUND_PORT}, dataDir: ${JSON.stringify(join(dir, 'sandbox'))} }`,
    ].join('\n'));
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    child = spawn(process.execPath, ['bin/keywarden.mjs', 'start', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { output += b.toString(); });
    const deadline = Date.now() + 90_000;
    while (!/Agents Playground:\s+http/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the sandbox did not start:\n${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    browser = await chromium.launch(CHROMIUM_LAUNCH);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    if (child?.exitCode === null) {
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
      await new Promise((r) => setTimeout(r, 1000));
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('installing in the support channel brings the warning cards, and Rotate rotates the SP-owned PAT', async () => {
    const pgUrl = /Agents Playground:\s+(http:\/\/\S+)/.exec(output)![1]!;
    const page = await browser!.newPage({ viewport: { width: 1400, height: 1100 } });
    await page.route((u) => !/^(127\.0\.0\.1|localhost)$/.test(new URL(u).hostname), (r) => r.abort());
    await page.goto(pgUrl, { waitUntil: 'domcontentloaded' });
    await page.getByText('conversationUpdate 200').first().waitFor({ timeout: 30_000 });
    await page.getByText(/Platform Support/).first().click();

    // The warnings from the start-up scan arrive in the channel once Keywarden is installed there.
    await page.getByText(/PAT adf-etl/).first().waitFor({ timeout: 30_000 });
    await page.getByText(/expired-etl/).first().waitFor({ timeout: 30_000 });

    const card = page.locator('div').filter({ hasText: /PAT adf-etl/ }).filter({ has: page.getByRole('button', { name: 'Rotate', exact: true }) }).last();
    await card.scrollIntoViewIfNeeded();
    await card.getByRole('button', { name: 'Rotate', exact: true }).click();
    await page.getByText('Rotation in progress — approved by Alex Wilber').first().waitFor({ timeout: 15_000 });
    const result = page.getByText(/^rotated: new token …[0-9a-f]{4} \(expires .*\), Key Vault version [0-9a-f]+, verified/).first();
    await result.waitFor({ timeout: 30_000 });
    expect(await result.textContent()).toMatch(/the old token …[0-9a-f]{4} will be revoked at/);
    // No secret value on screen.
    expect(await page.content()).not.toMatch(/dapi[0-9a-f]{32}/);
  }, 120_000);
});
