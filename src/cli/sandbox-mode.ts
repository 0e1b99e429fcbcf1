import type { KeywardenConfig } from '../config/schema.js';

/**
 * Whether scan/doctor start the emulated clouds: --sandbox, or `mode: sandbox` (also what no file or an empty
 * file means), as `keywarden start` does — sandbox mode never reaches real Azure. The one exception is a sandbox
 * config already wired to emulators running elsewhere on this machine (azure.authorityHost on loopback), which
 * is how tests point the CLI at clouds they started themselves.
 */
export function usesSandboxClouds(config: KeywardenConfig, forced: boolean): boolean {
  if (forced) return true;
  if (config.mode !== 'sandbox') return false;
  return !isLoopback(config.azure.authorityHost);
}

function isLoopback(url: string | undefined): boolean {
  if (!url) return false;
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
    return host === 'localhost' || host === '::1' || /^127\./.test(host);
  } catch {
    return false;
  }
}
