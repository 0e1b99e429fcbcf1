import type { RateLimit } from './emulator.js';

/**
 * Each emulated API's published budget, enforced the way the service does (token bucket; 429 + Retry-After past it),
 * by the family prefix of an emulator server's name ("keyvault:kv-prod" → keyvault). Turn on with server.setRateLimit.
 */
export const SERVICE_RATE_LIMITS: Record<string, RateLimit> = {
  // Key Vault: 4,000 transactions per 10 s per vault.
  keyvault: { perSecond: 400, burst: 4_000 },
  // Databricks token management API: 40 requests/s per workspace.
  databricks: { perSecond: 40, burst: 40 },
  // Graph identity & access: 8,000 resource units per 10 s per app and tenant.
  graph: { perSecond: 800, burst: 8_000 },
  // ARM reads: a bucket of 250 refilled at 25 per second.
  arm: { perSecond: 25, burst: 250 },
};

/** "keyvault:kv-prod" → "keyvault"; "graph" → "graph". */
export const emulatorFamily = (serverName: string): string => serverName.split(':')[0]!;

export const rateLimitFor = (serverName: string): RateLimit | undefined => SERVICE_RATE_LIMITS[emulatorFamily(serverName)];
