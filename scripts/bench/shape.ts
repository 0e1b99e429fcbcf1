import type { EstateSizes } from './estate.js';

/**
 * `--size N`: N is thousands of credentials. The full target (N = 360) is 200 workspaces × 600 PATs, 100 vaults ×
 * 2,000 secrets and 20,000 app registrations × 2 secrets; smaller N scales the number of workspaces, vaults and apps
 * down in proportion (each PAT/secret count per workspace/vault stays near the full one), never below the sandbox's
 * own 3 workspaces and 2 vaults. Named sizes: ci = 1, default = 7, large = 115, full = 360.
 */

export const NAMED_SIZES: Record<string, number> = { ci: 1, default: 7, large: 115, full: 360 };
export const DEFAULT_SIZE = NAMED_SIZES.default!;

const FULL = { workspaces: 200, tokensPerWorkspace: 600, vaults: 100, secretsPerVault: 2_000, apps: 20_000, credentialsPerApp: 2 };

export function parseSize(text: string): number {
  const named = NAMED_SIZES[text.trim().toLowerCase()];
  if (named !== undefined) return named;
  const n = Number(text.trim().replace(/k$/i, ''));
  if (!Number.isFinite(n) || n <= 0 || n > 1_000) throw new Error(`--size ${text}: use thousands of credentials (1–1000, e.g. 7, 115, 360) or ${Object.keys(NAMED_SIZES).join(' / ')}`);
  return n;
}

export function shapeFor(thousands: number): EstateSizes {
  const f = thousands / 360;
  const tokens = FULL.workspaces * FULL.tokensPerWorkspace * f;
  const secrets = FULL.vaults * FULL.secretsPerVault * f;
  const workspaces = Math.max(3, Math.round(FULL.workspaces * f));
  const vaults = Math.max(2, Math.round(FULL.vaults * f));
  const tokensPerWorkspace = Math.max(1, Math.round(tokens / workspaces));
  return {
    workspaces, vaults, tokensPerWorkspace,
    // 150 users and 30 SPs own the PATs of a full-size workspace (fewer in tiny ones).
    usersPerWorkspace: Math.min(150, Math.max(4, Math.ceil(tokensPerWorkspace / 4))),
    servicePrincipalsPerWorkspace: Math.min(30, Math.max(2, Math.ceil(tokensPerWorkspace / 20))),
    secretsPerVault: Math.max(1, Math.round(secrets / vaults)),
    entraApps: Math.max(1, Math.round(FULL.apps * f)),
    credentialsPerApp: FULL.credentialsPerApp,
    linkedServices: Math.max(10, Math.min(200, Math.round(200 * f * 10))),
  };
}
