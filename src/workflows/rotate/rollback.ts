/**
 * Roll back a rotation during its grace window: set (Key Vault points back at the previous value, written as a new
 * version; the rotation's version is disabled) → finish (revoke the new credential). The old credential was never
 * revoked, so consumers always have a working one.
 */
import { WorkflowError, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { restorePreviousVersion, shortVersion, tail } from '../engine/keyvault-steps.js';
import type { ActionPlan } from '../../domain/plan.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { entraMarker } from './rotate-entra.js';
import { patMarker } from './rotate-pat.js';
import type { JobRecord } from '../../domain/job.js';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Why this rotation cannot be rolled back now, or undefined. */
export function rollbackBlocker(rotation: JobRecord): string | undefined {
  if (rotation.kind !== 'rotate-pat' && rotation.kind !== 'rotate-entra' && rotation.kind !== 'move-to-sp') return 'only rotations and moves to a service principal can be rolled back';
  if (rotation.state === 'done') return 'the grace window is over: the old credential is already revoked, so there is nothing to go back to';
  if (rotation.state !== 'waiting' || !rotation.facts.verifiedAt) return `the rotation is ${rotation.state}; rollback is possible only while it waits out its grace window`;
  return undefined;
}

export function planRollback(rotation: JobRecord): ActionPlan {
  // A move to a service principal is a PAT rotation with a new owner: the same undo.
  const isPat = rotation.kind === 'rotate-pat' || rotation.kind === 'move-to-sp';
  const f = rotation.facts;
  const p = rotation.plan.facts;
  const newId = isPat ? str(f.newTokenId) : str(f.newKeyId);
  return {
    kind: 'rollback',
    subject: rotation.id,
    title: `Roll back ${rotation.plan.title.replace(/^Rotate/, 'the rotation of').replace(/^Move/, 'the move of')}`,
    facts: {
      rotationJobId: rotation.id,
      rotationKind: rotation.kind,
      vault: p.vault ?? null,
      secret: p.secret ?? null,
      rotationKvVersion: f.kvVersion ?? null,
      previousKvVersion: f.previousKvVersion ?? null,
      newCredentialId: newId,
      workspace: p.workspace ?? null,
      objectId: p.objectId ?? null,
      objectType: p.objectType ?? null,
    },
    parameters: {},
    operations: [
      `set: make Key Vault ${str(p.vault)}/${str(p.secret)} current at the previous value (version ${shortVersion(f.previousKvVersion)}, written again as a new version) and disable version ${shortVersion(f.kvVersion)}`,
      `finish: revoke the new ${isPat ? 'token' : 'client secret'} ${tail(newId)} and any other carrying this rotation's marker; the old one stays valid`,
    ],
  };
}

export function createRollback(deps: WorkflowDeps): WorkflowDefinition {
  const { providers } = deps;
  async function set(ctx: StepContext): Promise<StepOutcome> {
    const f = ctx.job.plan.facts;
    const facts = await restorePreviousVersion(providers.keyVault(str(f.vault)), str(f.secret), {
      jobId: ctx.job.id, rotationId: str(f.rotationJobId) || undefined, rotationVersion: str(f.rotationKvVersion) || undefined, previousVersion: str(f.previousKvVersion) || undefined, signal: ctx.signal,
    });
    return { kind: 'done', facts };
  }
  /** Revokes the new credential and anything else carrying the rotation's marker (a stalled runner's late create). */
  async function finish(ctx: StepContext): Promise<StepOutcome> {
    const f = ctx.job.plan.facts;
    const rotationId = str(f.rotationJobId);
    const { signal } = ctx;
    try {
      if (f.rotationKind === 'rotate-pat' || f.rotationKind === 'move-to-sp') {
        const ws = providers.databricks(str(f.workspace));
        const existed = await ws.deleteToken(str(f.newCredentialId), { signal });
        let leftovers = 0;
        for (const t of await ws.listTokens({ signal })) {
          if (t.tokenId !== f.newCredentialId && t.comment.includes(patMarker(rotationId)) && (await ws.deleteToken(t.tokenId, { signal }))) leftovers += 1;
        }
        return { kind: 'done', facts: { newRevokedAt: ctx.now(), alreadyGone: !existed, ...(leftovers ? { leftoversRevoked: leftovers } : {}) } };
      }
      const target = f.objectType === 'servicePrincipal' ? 'servicePrincipal' : 'application';
      const graph = providers.graph();
      const outcome = await graph.removePassword(str(f.objectId), str(f.newCredentialId), { signal, target });
      const holder = target === 'servicePrincipal'
        ? await graph.getServicePrincipal(str(f.objectId), { select: ['id', 'passwordCredentials'], signal })
        : await graph.getApplication(str(f.objectId), { select: ['id', 'passwordCredentials'], signal });
      let leftovers = 0;
      for (const p of holder.passwordCredentials ?? []) {
        if (p.displayName !== entraMarker(rotationId) || !p.keyId || p.keyId === f.newCredentialId) continue;
        if ((await graph.removePassword(str(f.objectId), p.keyId, { signal, target })) === 'removed') leftovers += 1;
      }
      return { kind: 'done', facts: { newRevokedAt: ctx.now(), alreadyGone: outcome === 'already-gone', ...(leftovers ? { leftoversRevoked: leftovers } : {}) } };
    } catch (err) {
      const status = statusOf(err);
      throw new WorkflowError(`could not revoke the new credential: ${(err as Error).message}`, (err as { code?: string }).code ?? 'PROVIDER_ERROR', {
        retryable: status === undefined || status === 429 || status >= 500, statusCode: status,
      });
    }
  }
  return {
    kind: 'rollback',
    steps: ['set', 'finish'],
    maxAttempts: { finish: 10 },
    run: (step, ctx) => (step === 'set' ? set(ctx) : finish(ctx)),
    // Rollback only ever moves back to the credential that was valid all along; nothing to undo.
    compensate: async () => ({}),
    summarize(job) {
      const f = job.plan.facts;
      if (job.state === 'done') {
        const leftovers = Number(job.facts.leftoversRevoked ?? 0);
        return `rolled back: Key Vault ${str(f.vault)}/${str(f.secret)} holds the previous value again (version ${shortVersion(job.facts.restoredVersion)}; version ${shortVersion(f.rotationKvVersion)} disabled), new credential ${tail(f.newCredentialId)} revoked${leftovers ? ` (and ${leftovers} leftover${leftovers > 1 ? 's' : ''} of the rotation)` : ''}`;
      }
      return `rollback failed at ${job.error?.step ?? 'a step'}: ${job.error?.message ?? 'unknown error'} — check Key Vault ${str(f.vault)}/${str(f.secret)} and the new credential ${tail(f.newCredentialId)} by hand`;
    },
  };
}
