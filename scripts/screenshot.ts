// Refreshes docs/sandbox-playground.png: starts the sandbox, opens the Agents Playground in headless Chromium,
// installs Keywarden in the support channel and photographs the warning cards that arrive there.
// Usage: npx tsx scripts/screenshot.ts   (installs Debian's chromium with apt-get when it is missing)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const OUT = process.argv[2] ?? 'docs/sandbox-playground.png';

function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  console.log('installing Debian chromium (apt-get) for the screenshot…');
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit' });
}

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
  const pgUrl = /Agents Playground\): (http:\/\/\S+)/.exec(output)?.[1] ?? 'http://127.0.0.1:56150';
  await waitFor(pgUrl, 30_000);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.route((u) => !/^(127\.0\.0\.1|localhost)$/.test(new URL(u).hostname), (r) => r.abort());
  await page.goto(pgUrl, { waitUntil: 'domcontentloaded' });
  await page.getByText('conversationUpdate 200').first().waitFor({ timeout: 20_000 });
  // Opening the support channel installs Keywarden there; the waiting warnings are then posted to it.
  await page.getByText(/Platform Support/).first().click();
  await page.getByText(/days left|Expired|expires/i).first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(3000);
  await page.screenshot({ path: OUT });
  console.log(`wrote ${OUT}`);
  await browser.close();
} finally {
  stop();
}
process.exit(0);
