// Refreshes the README pictures: starts the sandbox, opens the Agents Playground in headless Chromium, installs
// Keywarden in the support channel, photographs the warnings (docs/sandbox-playground.png), clicks Rotate on the
// SP-owned PAT card and photographs the result in its thread (docs/sandbox-rotation.png).
// Usage: npx tsx scripts/screenshot.ts   (installs Debian's chromium with apt-get when it is missing)
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';
import { CHROMIUM_LAUNCH, ensureChromium } from './chromium.js';

async function waitFor(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

ensureChromium();
const sandbox = spawn(process.execPath, ['bin/keywarden.mjs', 'start'], {
  env: { ...process.env, KEYWARDEN_CONFIG: '' }, stdio: ['ignore', 'pipe', 'inherit'], detached: true,
});
let output = '';
sandbox.stdout!.on('data', (b: Buffer) => { output += b.toString(); });
const stop = () => { try { process.kill(-sandbox.pid!, 'SIGTERM'); } catch { /* gone */ } };
process.on('exit', stop);

try {
  await waitFor('http://127.0.0.1:3978/healthz', 60_000);
  const pgUrl = /Agents Playground:\s+(http:\/\/\S+)/.exec(output)?.[1] ?? 'http://127.0.0.1:56150';
  await waitFor(pgUrl, 30_000);
  const browser = await chromium.launch(CHROMIUM_LAUNCH);
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  await page.route((u) => !/^(127\.0\.0\.1|localhost)$/.test(new URL(u).hostname), (r) => r.abort());
  await page.goto(pgUrl, { waitUntil: 'domcontentloaded' });
  await page.getByText('conversationUpdate 200').first().waitFor({ timeout: 20_000 });
  // Opening the support channel installs Keywarden there; the waiting warnings are then posted to it.
  await page.getByText(/Platform Support/).first().click();
  await page.getByText(/adf-etl/).first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(2000);
  await page.screenshot({ path: 'docs/sandbox-playground.png' });
  const card = page.locator('div').filter({ hasText: /PAT adf-etl/ }).filter({ has: page.getByRole('button', { name: 'Rotate', exact: true }) }).last();
  await card.scrollIntoViewIfNeeded();
  await card.getByRole('button', { name: 'Rotate', exact: true }).click();
  await page.getByText(/^rotated: new token/).first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: 'docs/sandbox-rotation.png' });
  console.log('wrote docs/sandbox-playground.png and docs/sandbox-rotation.png');
  await browser.close();
} finally {
  stop();
}
process.exit(0);
