/**
 * The 'max-lifetime' workflow: set (re-read workspace-conf, stop on drift, PATCH maxTokenLifetimeDays) → test (read it
 * back). PATCH of the same value is idempotent and every step reads first, so a crash anywhere resumes safely.
 */
import type { Clock } from '../../clock.js';
import { currentAlert } from '../../alerts/lifecycle.js';
import { createRemedyOffer } from '../../approvals/remedy-offers.js';
import { credentialId } from '../../domain/credential.js';
import { describeDrift, type ActionPlan } from '../../domain/plan.js';
import type { JobRecord } from '../../domain/job.js';
import { parseMaxLifetimeDays } from '../../providers/databricks/inventory.js';
import type { Store } from '../../store/store.js';
import { WorkflowError, isRetryable, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { exceeds, limitWords } from './plan-max-lifetime.js';
import { resultCard, type TokenButtons } from './result-card.js';
import { scannedTokens } from './reads.js';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const targetOf = (plan: ActionPlan): number | null => (Number(plan.parameters.days) > 0 ? Number(plan.parameters.days) : null);

export function providerError(what: string, err: unknown): WorkflowError {
  if (err instanceof WorkflowError) return err;
  const status = statusOf(err);
  return new WorkflowError(`${what}: ${(err as Error).message}`, (err as { code?: string }).code ?? 'PROVIDER_ERROR', { retryable: isRetryable(err), statusCode: status });
}

export function createMaxLifetime(deps: WorkflowDeps & { store: Store; clock: Clock }): WorkflowDefinition {
  const { providers, store, clock } = deps;

  async function read(ctx: StepContext): Promise<number | null> {
    const ws = str(ctx.job.plan.facts.workspace);
    try {
      const conf = await providers.databricks(ws).getWorkspaceConf(['maxTokenLifetimeDays'], { signal: ctx.signal });
      return parseMaxLifetimeDays(conf.maxTokenLifetimeDays);
    } catch (err) {
      throw providerError(`could not read workspace-conf of ${ws}`, err);
    }
  }

  async function set(ctx: StepContext): Promise<StepOutcome> {
    const { plan } = ctx.job;
    const ws = str(plan.facts.workspace);
    const target = targetOf(plan);
    const current = await read(ctx);
    // A PATCH journaled as started may have landed before a crash: the target value is our own write.
    if (current === target) return { kind: 'done', facts: { previousDays: plan.facts.maxTokenLifetimeDays ?? null }, note: `maxTokenLifetimeDays is already ${limitWords(target)}` };
    const changes = describeDrift(plan.facts, { ...plan.facts, maxTokenLifetimeDays: current }, { maxTokenLifetimeDays: 'maxTokenLifetimeDays' });
    if (changes.length) return { kind: 'stop', reason: `the workspace changed since the plan was approved: ${changes.join('; ')} — nothing was changed; review the new state and approve again` };
    try {
      await providers.databricks(ws).setWorkspaceConf({ maxTokenLifetimeDays: String(target ?? 0) }, { signal: ctx.signal });
    } catch (err) {
      throw providerError(`could not set maxTokenLifetimeDays of ${ws}`, err);
    }
    return { kind: 'done', facts: { previousDays: current, setAt: ctx.now() } };
  }

  async function test(ctx: StepContext): Promise<StepOutcome> {
    const { plan } = ctx.job;
    const target = targetOf(plan);
    const now = await read(ctx);
    if (now !== target) {
      throw new WorkflowError(`maxTokenLifetimeDays of ${str(plan.facts.workspace)} reads ${limitWords(now)} after the change, not ${limitWords(target)}`, 'NOT_APPLIED', { retryable: true });
    }
    let exceeding: string[] = [];
    if (target !== null) {
      try {
        const tokens = await providers.databricks(str(plan.facts.workspace)).listTokens({ signal: ctx.signal });
        const at = ctx.now();
        exceeding = tokens.filter((t) => (t.expiryTime === -1 || t.expiryTime > at) && exceeds(t, target)).map((t) => t.tokenId).sort();
      } catch (err) {
        throw providerError('could not list the tokens above the new limit', err);
      }
    }
    return { kind: 'done', facts: { verifiedAt: ctx.now(), exceeding: exceeding.join(','), exceedingCount: exceeding.length } };
  }

  return {
    kind: 'max-lifetime',
    steps: ['set', 'test'],
    run: (step, ctx) => (step === 'set' ? set(ctx) : test(ctx)),
    // Nothing is created; a failed change leaves the old or the new value, and the thread says which to check.
    compensate: async () => ({}),
    summarize(job: JobRecord): string {
      const ws = str(job.plan.facts.workspace);
      const target = targetOf(job.plan);
      if (job.state === 'done') {
        const n = Number(job.facts.exceedingCount ?? 0);
        return `done: maxTokenLifetimeDays of ${ws} is now ${limitWords(target)} (it was ${limitWords(job.plan.facts.maxTokenLifetimeDays as number | null)}), read back and verified. ` +
          (target === null ? 'New tokens may be created without that limit again.'
            : `New tokens longer than ${target} days are refused. ${n ? `${n} existing token${n === 1 ? '' : 's'} live${n === 1 ? 's' : ''} longer and keep${n === 1 ? 's' : ''} working until ${n === 1 ? 'it expires' : 'they expire'}: rotate or revoke ${n === 1 ? 'it' : 'them'} below.` : 'No existing token lives longer.'}`);
      }
      if (job.state === 'cancelled') return `stopped, nothing changed: ${job.error?.message ?? 'stopped'}`;
      return `failed: ${job.error?.message ?? 'unknown error'} — check maxTokenLifetimeDays of ${ws} (GET /api/2.0/workspace-conf?keys=maxTokenLifetimeDays); it is either ${limitWords(job.plan.facts.maxTokenLifetimeDays as number | null)} or ${limitWords(target)}`;
    },
    finishCard(job: JobRecord) {
      if (job.state !== 'done') return undefined;
      const ws = str(job.plan.facts.workspace);
      const scanned = scannedTokens(store, ws);
      const tokens: TokenButtons[] = str(job.facts.exceeding).split(',').filter(Boolean).slice(0, 10).map((id) => {
        const c = scanned.get(id);
        // The open alert through its credential's pointer: at most ten reads, not every alert of the estate.
        const alert = currentAlert(store, credentialId('databricks-pat', ws, id))?.value;
        return {
          text: `${c ? `"${c.name}" of ${c.owner?.name ?? 'unknown owner'}` : `token …${id.slice(-4)}`}${alert ? '' : ' — no alert card yet: run /scan, then use its card'}`,
          ...(alert ? { alertId: alert.id, nonce: alert.nonce } : {}),
        };
      });
      const undo = job.plan.parameters.rollbackOf ? undefined : createRemedyOffer(store, clock, {
        remedy: 'max-lifetime', subject: ws, scope: ws,
        parameters: { days: (job.plan.facts.maxTokenLifetimeDays as number | null) ?? 0, rollbackOf: job.id },
        offeredBy: { name: 'Keywarden (rollback)' },
      });
      return resultCard({
        headline: `Maximum token lifetime of ${ws}: ${limitWords(targetOf(job.plan))}`,
        status: 'Applies to new tokens only.',
        tokensHeading: tokens.length ? 'Tokens that still live longer (they keep working until they expire):' : '',
        tokens,
        rollback: undo ? { title: `Roll back to ${limitWords(job.plan.facts.maxTokenLifetimeDays as number | null)}`, verb: 'enforceMaxLifetime', data: { offerId: undo.id, nonce: undo.nonce } } : undefined,
      });
    },
  };
}
