/**
 * The 'restrict-tokens' workflow: create (GET the ACL, stop on drift, PATCH the grants to add) → set (PUT the computed
 * full list, only when someone loses CAN_USE) → test (read back, see which tokens were deleted). Every step reads the
 * ACL first and recognises its own earlier write, so a crash anywhere resumes without acting twice or blindly.
 */
import type { Clock } from '../../clock.js';
import { createRemedyOffer } from '../../approvals/remedy-offers.js';
import { describeDrift } from '../../domain/plan.js';
import type { JobRecord } from '../../domain/job.js';
import type { Store } from '../../store/store.js';
import { WorkflowError } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { tail } from '../engine/keyvault-steps.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { aclChange, aclText, canUseGrants, parseAclText, sameGrants, sortGrants, type Grant } from './acl.js';
import { providerError } from './max-lifetime.js';
import { planRestrictTokens } from './plan-restrict.js';
import { resultCard } from './result-card.js';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const ids = (v: unknown): string[] => str(v).split(',').filter(Boolean);
const LABELS = { tokenPermissions: 'the token permissions (CAN_USE)', directLoserTokens: 'the tokens that would be deleted', groupLoserTokens: 'the tokens that would stop working' };

export function createRestrictTokens(deps: WorkflowDeps & { store: Store; clock: Clock }): WorkflowDefinition {
  const { providers, store, clock } = deps;
  const plans = (job: JobRecord) => {
    const planned = parseAclText(str(job.plan.facts.tokenPermissions));
    const target = parseAclText(str(job.plan.parameters.target));
    const { adds, removes } = aclChange(planned, target);
    return { ws: str(job.plan.facts.workspace), planned, target, adds, removes, afterAdds: sortGrants([...planned, ...adds]) };
  };
  async function readAcl(ws: string, signal: AbortSignal): Promise<Grant[]> {
    try {
      return canUseGrants(await providers.databricks(ws).getTokenPermissions({ signal }));
    } catch (err) {
      throw providerError(`could not read the token permissions of ${ws}`, err);
    }
  }
  const drifted = (job: JobRecord, facts: JobRecord['plan']['facts']): StepOutcome => ({
    kind: 'stop',
    reason: `${job.plan.facts.workspace} changed since the plan was approved: ${describeDrift(job.plan.facts, facts, LABELS).join('; ')} — nothing more was changed; review the new state and approve again`,
  });

  async function create(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const p = plans(job);
    const current = await readAcl(p.ws, signal);
    if (!sameGrants(current, p.planned)) {
      // Our own PATCH before a crash, or the whole change already made: carry on from there.
      if (ctx.resumed && (sameGrants(current, p.afterAdds) || sameGrants(current, p.target))) return { kind: 'done', note: 'the grants to add were already there (an earlier attempt added them)' };
      return drifted(job, { ...job.plan.facts, tokenPermissions: aclText(current) });
    }
    // Same ACL: check nobody losing CAN_USE gained tokens the plan does not name (they would die unnamed).
    const fresh = await planRestrictTokens({ workspace: p.ws, target: p.target, providers, store, now: ctx.now(), signal }).catch((err: unknown) => { throw providerError(`could not re-read ${p.ws}`, err); });
    if (describeDrift(job.plan.facts, fresh.plan.facts).length) return drifted(job, fresh.plan.facts);
    if (p.adds.length === 0) return { kind: 'done', facts: { added: 0 } };
    try {
      const after = canUseGrants(await providers.databricks(p.ws).patchTokenPermissions(p.adds, { signal }));
      return { kind: 'done', facts: { added: p.adds.length }, note: `after PATCH: [${aclText(after)}]` };
    } catch (err) {
      throw providerError(`could not add CAN_USE grants in ${p.ws}`, err);
    }
  }

  async function set(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const p = plans(job);
    if (p.removes.length === 0) return { kind: 'done', facts: { removed: 0 } };
    const current = await readAcl(p.ws, signal);
    if (sameGrants(current, p.target)) return { kind: 'done', facts: { removed: p.removes.length }, note: 'the ACL already is the target (an earlier attempt wrote it)' };
    if (!sameGrants(current, p.afterAdds)) return drifted(job, { ...job.plan.facts, tokenPermissions: aclText(current) });
    try {
      await providers.databricks(p.ws).putTokenPermissions(p.target, { signal });
    } catch (err) {
      throw providerError(`could not write the token permissions of ${p.ws}`, err);
    }
    return { kind: 'done', facts: { removed: p.removes.length, putAt: ctx.now() } };
  }

  async function test(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const p = plans(job);
    const current = await readAcl(p.ws, signal);
    if (!sameGrants(current, p.target)) {
      throw new WorkflowError(`the token permissions of ${p.ws} read back as [${aclText(current)}], not the approved [${aclText(p.target)}]`, 'NOT_APPLIED', { retryable: true });
    }
    const client = providers.databricks(p.ws);
    const gone: string[] = [];
    const left: string[] = [];
    try {
      for (const id of ids(job.plan.facts.directLoserTokens)) ((await client.getToken(id, { signal })) ? left : gone).push(id);
    } catch (err) {
      throw providerError('could not check the deleted tokens', err);
    }
    return { kind: 'done', facts: { verifiedAt: ctx.now(), deletedTokens: gone.join(','), directTokensLeft: left.join(',') } };
  }

  return {
    kind: 'restrict-tokens',
    steps: ['create', 'set', 'test'],
    run: (step, ctx) => (step === 'create' ? create(ctx) : step === 'set' ? set(ctx) : test(ctx)),
    // Grants added are what the plan wanted kept; removals cannot be undone here (deleted tokens never come back).
    compensate: async () => ({}),
    summarize(job: JobRecord): string {
      const p = plans(job);
      const list = (v: unknown) => ids(v).map((id) => tail(id)).join(', ');
      if (job.state === 'done') {
        const deleted = ids(job.facts.deletedTokens);
        const left = ids(job.facts.directTokensLeft);
        const unusable = ids(job.plan.facts.groupLoserTokens);
        return [
          `done: CAN_USE on tokens in ${p.ws} is now [${aclText(p.target) || 'admins only'}], read back and verified.`,
          deleted.length ? `Deleted by Databricks (unrecoverable): ${deleted.length} token(s) ${list(job.facts.deletedTokens)}.` : 'No token was deleted.',
          left.length ? `Still listed although their owner lost the grant: ${list(job.facts.directTokensLeft)} — check them.` : '',
          unusable.length ? `Unusable until their owner gets CAN_USE again: ${unusable.length} token(s) ${list(job.plan.facts.groupLoserTokens)}.` : '',
        ].filter(Boolean).join(' ');
      }
      if (job.state === 'cancelled') return `stopped: ${job.error?.message ?? 'stopped'}`;
      return `failed at ${job.error?.step ?? 'a step'}: ${job.error?.message ?? 'unknown error'} — check the token permissions of ${p.ws} (GET /api/2.0/permissions/authorization/tokens); they are [${aclText(p.planned)}], [${aclText(p.afterAdds)}] or [${aclText(p.target)}]`;
    },
    finishCard(job: JobRecord) {
      if (job.state !== 'done' || job.plan.parameters.rollbackOf) return undefined;
      const ws = str(job.plan.facts.workspace);
      const undo = createRemedyOffer(store, clock, {
        remedy: 'restrict-tokens', subject: ws, scope: ws,
        parameters: { restoreAcl: str(job.plan.facts.tokenPermissions), rollbackOf: job.id }, offeredBy: { name: 'Keywarden (rollback)' },
      });
      return resultCard({
        headline: `Token permissions of ${ws} restricted`,
        status: `Rollback gives CAN_USE back to [${str(job.plan.facts.tokenPermissions) || 'nobody'}] (a new plan, approved like this one); deleted tokens cannot come back.`,
        tokensHeading: '', tokens: [],
        rollback: { title: 'Roll back the token permissions', verb: 'restrictTokenCreation', data: { offerId: undo.id, nonce: undo.nonce } },
      });
    },
  };
}
