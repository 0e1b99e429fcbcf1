import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { LaunchOptions } from 'playwright-core';

/** Debian's Chromium, installed on first use (the machines reach Debian's packages, not browser downloads). */
export const CHROMIUM = '/usr/bin/chromium';

export function ensureChromium(log: (line: string) => void = console.log): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  log('installing Debian chromium with apt-get (once per machine)…');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get install chromium finished but ${CHROMIUM} is missing`);
  return CHROMIUM;
}

/** Headless flags that keep Chromium off the network (this machine has none) and quiet. */
export const CHROMIUM_LAUNCH: LaunchOptions = {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};
