/**
 * The move-to-sp job: the PAT rotation's steps with the configured SP as the new token's owner —
 * create (on-behalf-of token for the SP, found by its marker on resume) → set (new Key Vault version, rotation tags)
 * → test (call the workspace with the new token) → finish (revoke the person's token after the grace window).
 * Before creating anything it checks the approved facts again: the token is still the person's, and the SP is still
 * a workspace member with CAN_USE. Compensation and Rollback are the rotation's (previous version back, SP token gone).
 */
import { formatTime } from '../../domain/plan.js';
import type { JobRecord } from '../../domain/job.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { shortVersion, tail } from '../engine/keyvault-steps.js';
import { createPatRotation } from '../rotate/rotate-pat.js';
import { failureText, num, str } from '../rotate/rotation-common.js';
import { spNotReady } from './plan.js';

/** What changed since approval that makes the move unsafe, or undefined. */
async function moveDrift(job: JobRecord, deps: WorkflowDeps, signal: AbortSignal): Promise<string | undefined> {
  const f = job.plan.facts;
  const client = deps.providers.databricks(str(f.workspace));
  const token = await client.getToken(str(f.tokenId), { signal });
  // A missing token is reported by the rotation's own drift check, with its words.
  if (token && f.ownerId && token.ownerId && token.ownerId !== f.ownerId) return `the token ${tail(f.tokenId)} now belongs to another principal (${token.ownerId}), not ${str(f.ownerName)}`;
  return spNotReady(client, { workspace: str(f.workspace), applicationId: str(f.newOwnerApplicationId), name: str(f.newOwnerName) }, signal);
}

const sp = (job: JobRecord) => str(job.plan.facts.newOwnerName);
const person = (job: JobRecord) => str(job.plan.facts.ownerName) || 'the owner';
const secret = (job: JobRecord) => `${str(job.plan.facts.vault)}/${str(job.plan.facts.secret)}`;

function verifiedText(job: JobRecord, until: number): string {
  const f = job.facts;
  const consumers = job.plan.facts.consumers ? ` ${str(job.plan.facts.consumers)} get it at their next run.` : '';
  return `moved to ${sp(job)}: its token ${tail(f.newTokenId)} (expires ${formatTime(num(f.newTokenExpiry))}) is Key Vault version ${shortVersion(f.kvVersion)} of ${secret(job)} and answered ${str(job.plan.facts.workspace)}.${consumers} ${person(job)}'s token ${tail(job.plan.facts.tokenId)} will be revoked at ${formatTime(until)} — Rollback is possible until then`;
}

export function moveSummary(job: JobRecord): string {
  const f = job.facts;
  if (job.state === 'done') {
    return `moved to a service principal: ${secret(job)} holds ${sp(job)}'s token ${tail(f.newTokenId)} (expires ${formatTime(num(f.newTokenExpiry))}, Key Vault version ${shortVersion(f.kvVersion)}, verified); ${person(job)}'s token ${tail(job.plan.facts.tokenId)} ${f.oldAlreadyGone ? 'was already gone' : `revoked at ${formatTime(num(f.oldRevokedAt))}`}`;
  }
  return `move to ${sp(job)} ${failureText(job, `${person(job)}'s token ${tail(job.plan.facts.tokenId)}`, num(job.plan.facts.expiryTime))}`;
}

/** The thread's words for what a step just did. */
function withMilestone(step: string, job: JobRecord, outcome: StepOutcome): StepOutcome {
  if (outcome.kind === 'done' && step === 'create' && typeof outcome.facts?.newTokenId === 'string') {
    return { ...outcome, milestone: { key: 'created', text: `created an on-behalf-of token ${tail(outcome.facts.newTokenId)} for ${sp(job)} in ${str(job.plan.facts.workspace)} (expires ${formatTime(num(outcome.facts.newTokenExpiry))})` } };
  }
  if (outcome.kind === 'done' && step === 'set' && outcome.facts?.kvVersion) {
    return { ...outcome, milestone: { key: 'published', text: `published ${sp(job)}'s token as Key Vault version ${shortVersion(outcome.facts.kvVersion)} of ${secret(job)}; verifying it against ${str(job.plan.facts.workspace)}` } };
  }
  if (outcome.kind === 'wait' && outcome.milestone?.key === 'verified') {
    return { ...outcome, milestone: { key: 'verified', text: verifiedText({ ...job, facts: { ...job.facts, ...outcome.facts } }, outcome.until) } };
  }
  return outcome;
}

export function createMoveToSp(deps: WorkflowDeps): WorkflowDefinition {
  const pat = createPatRotation(deps);
  return {
    ...pat,
    kind: 'move-to-sp',
    async run(step, ctx: StepContext) {
      if (step === 'create' && !ctx.resumed) {
        const drift = await moveDrift(ctx.job, deps, ctx.signal);
        if (drift) return { kind: 'stop', reason: `stopped before acting: ${drift} — review the card and approve again` };
      }
      return withMilestone(step, ctx.job, await pat.run(step, ctx));
    },
    summarize: moveSummary,
  };
}
