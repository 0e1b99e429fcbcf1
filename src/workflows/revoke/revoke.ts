/**
 * Revoke a Databricks PAT or an Entra client secret. One journaled step (finish); "already gone" counts as done,
 * and a credential that changed since approval is not touched.
 */
import type { Credential } from '../../domain/credential.js';
import { formatUtc } from '../../domain/expiry.js';
import { keywardenRunsOn } from '../../domain/self-credential.js';
import { WorkflowError, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { tail } from '../engine/keyvault-steps.js';
import { formatTime, type ActionPlan } from '../../domain/plan.js';
import type { WorkflowDeps } from '../engine/providers.js';
import type { JobRecord } from '../../domain/job.js';

export function revokeBlocker(credential: Credential): string | undefined {
  const self = keywardenRunsOn(credential);
  if (self) return `Keywarden runs on this credential (${self}); revoking it would cut Keywarden off from its own estate — rotate it instead (Keywarden switches to the new one before the old one is revoked)`;
  if (credential.kind === 'databricks-pat') return undefined;
  if (credential.kind === 'entra-password' && credential.attributes.objectId) return undefined;
  return `Keywarden cannot revoke a ${credential.kind}; remove it in its own portal`;
}

export function lastUseText(credential: Credential): string {
  if (credential.lastUsedAt === undefined) {
    const why = credential.attributes.lastUseUnknown;
    return typeof why === 'string' ? `last use unknown — ${why}` : 'not known for this kind of credential';
  }
  if (credential.lastUsedAt === null) return 'never used';
  return `last used ${formatUtc(credential.lastUsedAt)}`;
}

/** The justification and override reason are recorded on the approval, not in the plan: the form's hash is the one that runs. */
export function planRevoke(credential: Credential): ActionPlan {
  const isPat = credential.kind === 'databricks-pat';
  const held = credential.heldIn.map((h) => `${h.vault}/${h.name}`);
  return {
    kind: 'revoke',
    subject: credential.id,
    title: `Revoke ${isPat ? 'Databricks PAT' : 'Entra client secret'} "${credential.name}"`,
    facts: {
      credentialKind: credential.kind,
      scope: credential.where.scope,
      nativeId: credential.nativeId,
      expiresAt: credential.expiresAt ?? -1,
      lastUsedAt: credential.lastUsedAt ?? null,
      objectId: typeof credential.attributes.objectId === 'string' ? credential.attributes.objectId : null,
      objectType: typeof credential.attributes.objectType === 'string' ? credential.attributes.objectType : null,
    },
    parameters: {},
    operations: [
      isPat
        ? `finish: revoke token ${tail(credential.nativeId)} ("${credential.name}") in ${credential.where.scope} (token-management delete; already gone counts as done)`
        : `finish: remove client secret ${tail(credential.nativeId)} from ${credential.where.label} (removePassword; already gone counts as done)`,
    ],
    warnings: [
      `${lastUseText(credential)}`,
      ...(held.length ? [`held in ${held.join(', ')}: consumers of that secret stop working until it holds a new credential`] : []),
    ],
  };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export function createRevoke(deps: WorkflowDeps): WorkflowDefinition {
  const { providers } = deps;
  async function finish(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const f = job.plan.facts;
    try {
      if (f.credentialKind === 'databricks-pat') {
        const existed = await providers.databricks(str(f.scope)).deleteToken(str(f.nativeId), { signal });
        return { kind: 'done', facts: { revokedAt: ctx.now(), alreadyGone: !existed } };
      }
      const outcome = await providers.graph().removePassword(str(f.objectId), str(f.nativeId), {
        signal, target: f.objectType === 'servicePrincipal' ? 'servicePrincipal' : 'application',
      });
      return { kind: 'done', facts: { revokedAt: ctx.now(), alreadyGone: outcome === 'already-gone' } };
    } catch (err) {
      const status = statusOf(err);
      throw new WorkflowError(`could not revoke ${tail(f.nativeId)}: ${(err as Error).message}`, (err as { code?: string }).code ?? 'PROVIDER_ERROR', {
        retryable: status === undefined || status === 429 || status >= 500, statusCode: status,
      });
    }
  }
  return {
    kind: 'revoke',
    steps: ['finish'],
    run: (_step, ctx) => finish(ctx),
    // A revoke creates nothing, so there is nothing to undo.
    compensate: async () => ({}),
    summarize(job: JobRecord) {
      const f = job.plan.facts;
      const what = f.credentialKind === 'databricks-pat' ? 'token' : 'client secret';
      if (job.state === 'done') {
        return `revoked: ${what} ${tail(f.nativeId)} at ${formatTime(job.facts.revokedAt as number)}${job.facts.alreadyGone ? ' (it was already gone)' : ''}`;
      }
      return `revoke failed: ${job.error?.message ?? 'unknown error'}; the ${what} ${tail(f.nativeId)} may still be valid — check it by hand`;
    },
  };
}
