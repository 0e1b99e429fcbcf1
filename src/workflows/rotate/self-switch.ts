/**
 * Rotating a credential Keywarden itself runs on: the plan gets one more operation, and before the old credential is
 * revoked Keywarden drops its cached copy, re-reads the new one from Key Vault and checks that it works.
 */
import type { Credential } from '../../domain/credential.js';
import { keywardenRunsOn } from '../../domain/self-credential.js';
import { forgetCachedPat } from '../../providers/databricks/auth.js';
import type { StepContext } from '../engine/journal.js';
import type { WorkflowProviders } from '../engine/providers.js';
import { WorkflowError, statusOf } from '../engine/errors.js';

/** The plan line, placed before the revoke of the old credential; empty when Keywarden does not run on it. */
export function selfSwitchOperations(credential: Credential): string[] {
  const why = keywardenRunsOn(credential);
  if (!why) return [];
  if (credential.kind === 'databricks-pat') {
    const held = credential.heldIn[0];
    return [`switch Keywarden to the new credential: Keywarden runs on this PAT (${why}) — drop its cached value, re-read ${held ? `${held.vault}/${held.name}` : 'the secret'} from Key Vault and check ${credential.where.scope} accepts it, before the old token is revoked`];
  }
  return [`switch Keywarden to the new credential: Keywarden runs on this secret (${why}) — point its configuration at the new Key Vault version and restart it before the grace window ends; the old secret is removed only after that`];
}

/** "vault/secret" of Keywarden's own PAT in this rotation's plan, or undefined for anyone else's. */
export function selfPatSecret(facts: Record<string, unknown>): string | undefined {
  return typeof facts.selfSecret === 'string' && facts.selfSecret ? facts.selfSecret : undefined;
}

/** Runs right before the old PAT is revoked: every client of Keywarden's re-reads Key Vault, and the new one must work. */
export async function switchKeywardenToNewPat(ctx: StepContext, providers: WorkflowProviders): Promise<Record<string, string | number> | undefined> {
  const ref = selfPatSecret(ctx.job.plan.facts);
  if (!ref) return undefined;
  const workspace = String(ctx.job.plan.facts.workspace);
  const sources = forgetCachedPat(ref);
  try {
    await providers.databricks(workspace).me({ signal: ctx.signal });
  } catch (err) {
    const status = statusOf(err);
    throw new WorkflowError(`Keywarden could not switch itself to the new PAT from ${ref}: ${(err as Error).message} — the old token stays until it can`, 'SELF_SWITCH_FAILED', {
      retryable: status === undefined || status === 429 || status >= 500, statusCode: status,
    });
  }
  ctx.checkpoint({ keywardenSwitchedAt: ctx.now() }, `Keywarden switched itself to the new PAT (${sources} client(s) re-read ${ref})`);
  return { keywardenSwitchedAt: ctx.now() };
}
