/**
 * The JIT safety net: whatever the journal lost track of, anything Keywarden tagged as just-in-time and past its
 * TTL is removed — tokens by their comment marker, pools by their tags, Key Vault secrets by their tags.
 */
import { HOUR_MS } from '../../clock.js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logging/logger.js';
import { JIT_COMMENT_PATTERN, JIT_TAG_EXPIRES } from './jit.js';
import { listVersionsOrEmpty } from '../engine/keyvault-steps.js';
import type { WorkflowProviders } from '../engine/providers.js';

export interface SweepResult {
  tokensRevoked: number;
  poolsDeleted: number;
  secretVersionsDisabled: number;
  errors: string[];
}

export async function sweepExpiredJit(input: {
  providers: WorkflowProviders;
  clock: Clock;
  vault?: string;
  /** More vaults where JIT secrets live under names their requesters chose (pipelines): found by their TTL tag. */
  moreVaults?: string[];
  signal?: AbortSignal;
  logger?: Logger;
  /** A pool still running clusters gets this long past its TTL before it is deleted anyway (default 1 h). */
  poolGraceMs?: number;
}): Promise<SweepResult> {
  const now = input.clock.now();
  const result: SweepResult = { tokensRevoked: 0, poolsDeleted: 0, secretVersionsDisabled: 0, errors: [] };
  const signal = input.signal ?? AbortSignal.timeout(120_000);
  for (const name of input.providers.workspaces()) {
    try {
      const client = input.providers.databricks(name);
      for (const t of await client.listTokens({ signal })) {
        const exp = Number(JIT_COMMENT_PATTERN.exec(t.comment)?.[3]);
        if (Number.isFinite(exp) && exp <= now && (await client.deleteToken(t.tokenId, { signal }))) result.tokensRevoked += 1;
      }
      for (const pool of await client.listInstancePools({ signal })) {
        const exp = Date.parse(pool.customTags?.[JIT_TAG_EXPIRES] ?? '');
        if (!Number.isFinite(exp) || exp > now) continue;
        const idle = (pool.stats?.usedCount ?? 0) === 0;
        if ((idle || now > exp + (input.poolGraceMs ?? HOUR_MS)) && (await client.deleteInstancePool(pool.instancePoolId, { signal }))) result.poolsDeleted += 1;
      }
    } catch (err) {
      result.errors.push(`${name}: ${(err as Error).message}`);
    }
  }
  for (const vault of new Set([...(input.vault ? [input.vault] : []), ...(input.moreVaults ?? [])])) {
    try {
      const kv = input.providers.keyVault(vault);
      for (const secret of await kv.listSecretProperties({ signal })) {
        if (!/^jit-[A-Za-z0-9_-]+-(token|pool)$/.test(secret.name) && !secret.tags[JIT_TAG_EXPIRES]) continue;
        for (const v of await listVersionsOrEmpty(kv, secret.name, signal)) {
          const exp = Date.parse(v.tags[JIT_TAG_EXPIRES] ?? '');
          if (v.enabled && v.version && Number.isFinite(exp) && exp <= now) {
            await kv.updateSecretProperties(secret.name, v.version, { enabled: false, signal });
            result.secretVersionsDisabled += 1;
          }
        }
      }
    } catch (err) {
      result.errors.push(`${vault}: ${(err as Error).message}`);
    }
  }
  if (result.tokensRevoked + result.poolsDeleted + result.secretVersionsDisabled > 0 || result.errors.length) {
    input.logger?.info({ ...result }, 'JIT sweeper pass');
  }
  return result;
}
