/**
 * The "retire unused tokens" job, in two phases. set: tell each owner in the thread (an @mention when Teams can reach
 * them) which of their tokens go on which date and how to keep one, then wait `waitDays` on the clock. finish: read
 * each token again and revoke the ones still unused, one at a time, each journaled before and after its delete, so a
 * crash never revokes twice or skips one. Nothing is undone after a failure: a deleted PAT cannot be restored.
 */
import { randomBytes } from 'node:crypto';
import { DAY_MS } from '../../clock.js';
import type { ChatGateway } from '../../domain/chat.js';
import { formatUtcDate } from '../../domain/expiry.js';
import type { JobFacts, JobRecord } from '../../domain/job.js';
import { formatTime } from '../../domain/plan.js';
import { WorkflowError, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { tail } from '../engine/keyvault-steps.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { batchOf, type BatchToken } from './planner.js';
import { ownerNotice, retireProgressCard } from './notice.js';

/** Journal key of one token's fate: absent (not looked at), revoking, revoked, gone, or dropped: <reason>. */
export const tokenKey = (t: Pick<BatchToken, 'workspace' | 'tokenId'>): string => `t:${t.workspace}:${t.tokenId}`;
/** Set by "Keep this token" while the job waits: the name of who kept it. */
export const keepKey = (t: Pick<BatchToken, 'workspace' | 'tokenId'>): string => `keep:${t.workspace}:${t.tokenId}`;

export interface RetireDeps extends WorkflowDeps {
  chat: () => ChatGateway | undefined;
}

/** What happened to each token so far, from the journal. */
export function outcomes(job: JobRecord): Array<{ token: BatchToken; state: string | undefined }> {
  return batchOf(job.plan).map((token) => ({ token, state: typeof job.facts[tokenKey(token)] === 'string' ? String(job.facts[tokenKey(token)]) : undefined }));
}

function providerError(err: unknown, what: string): WorkflowError {
  const status = statusOf(err);
  return new WorkflowError(`could not ${what}: ${(err as Error).message}`, (err as { code?: string }).code ?? 'PROVIDER_ERROR', {
    retryable: status === undefined || status === 429 || status >= 500, statusCode: status,
  });
}

export function createRetireUnused(deps: RetireDeps): WorkflowDefinition {
  const { providers } = deps;

  /** Best effort: the card the approver clicked shows the batch's state (the thread has the details). */
  async function updateCard(job: JobRecord, headline: string, status: string, signal: AbortSignal): Promise<void> {
    const chat = deps.chat();
    if (!chat || !job.message?.activityId) return;
    await chat.update(job.message, { card: retireProgressCard(job, headline, status) }, { signal }).catch(() => undefined);
  }

  async function notify(ctx: StepContext): Promise<StepOutcome> {
    const { job } = ctx;
    const waitDays = Number(job.plan.parameters.waitDays ?? 7);
    // The job is inserted in the approval's transaction: its creation time is the approval time.
    const dueAt = job.createdAt + waitDays * DAY_MS;
    if (ctx.now() >= dueAt && typeof job.facts.notifiedAt === 'number') return { kind: 'done', facts: { waitedUntil: dueAt } };
    const facts: JobFacts = {
      approvedAt: job.createdAt, dueAt,
      notifiedAt: typeof job.facts.notifiedAt === 'number' ? job.facts.notifiedAt : ctx.now(),
      keepNonce: typeof job.facts.keepNonce === 'string' ? job.facts.keepNonce : randomBytes(12).toString('base64url'),
    };
    const withFacts = { ...job, facts: { ...job.facts, ...facts } };
    const notice = ownerNotice(withFacts, dueAt);
    await updateCard(withFacts, `Owners told — tokens will be revoked on ${formatTime(dueAt)}`,
      `Waiting ${waitDays} d. Any token used before then is dropped from the batch, and so is one its owner keeps.`, ctx.signal);
    return {
      kind: 'wait', until: dueAt, reason: `owners were told; revoking on ${formatTime(dueAt)} what is still unused`, facts,
      milestone: { key: 'owners-notified', text: notice.text, mentions: notice.mentions, card: notice.card },
    };
  }

  /** One token: its fate, journaled before the delete (revoking) and after (revoked / gone / dropped). */
  async function retireOne(ctx: StepContext, t: BatchToken, facts: JobFacts): Promise<void> {
    const key = tokenKey(t);
    const state = facts[key];
    if (state === 'revoked' || state === 'gone' || (typeof state === 'string' && state.startsWith('dropped'))) return;
    const set = (value: string) => {
      facts[key] = value;
      ctx.checkpoint({ [key]: value });
    };
    const client = providers.databricks(t.workspace);
    if (state !== 'revoking') {
      const keptBy = facts[keepKey(t)];
      if (typeof keptBy === 'string') return set(`dropped: kept by ${keptBy}`);
      let info;
      try {
        info = await client.getToken(t.tokenId, { signal: ctx.signal });
      } catch (err) {
        throw providerError(err, `read token ${tail(t.tokenId)} in ${t.workspace}`);
      }
      if (!info) return set('gone');
      if (t.ownerId && info.ownerId && info.ownerId !== t.ownerId) return set(`dropped: its owner changed since approval (now ${info.ownerId})`);
      const used = info.lastUsedDay;
      if (used !== undefined && (t.lastUsedAt === null || used > t.lastUsedAt)) return set(`dropped: used on ${formatUtcDate(used)}, during the wait`);
      set('revoking');
    }
    try {
      // Journaled "revoking" first: a 404 now is our own earlier delete (a lost answer, a crash), not a skip.
      await client.deleteToken(t.tokenId, { signal: ctx.signal });
      set('revoked');
    } catch (err) {
      throw providerError(err, `revoke token ${tail(t.tokenId)} in ${t.workspace}`);
    }
  }

  async function finish(ctx: StepContext): Promise<StepOutcome> {
    const facts: JobFacts = { ...ctx.job.facts };
    for (const t of batchOf(ctx.job.plan)) await retireOne(ctx, t, facts);
    const job = { ...ctx.job, facts };
    const revoked = outcomes(job).filter((o) => o.state === 'revoked').length;
    await updateCard(job, `Retired ${revoked} of ${batchOf(job.plan).length} token(s)`, summaryOf(job), ctx.signal);
    return { kind: 'done', facts: { finishedAt: ctx.now(), revoked } };
  }

  return {
    kind: 'retire-unused',
    steps: ['set', 'finish'],
    run: (step, ctx) => (step === 'set' ? notify(ctx) : finish(ctx)),
    // Nothing to undo: revoked tokens cannot come back, and the ones not reached stay as they are.
    compensate: async () => ({}),
    summarize: (job) => summaryOf(job),
  };
}

/** The thread's list: each revocation, each drop with its reason, and what was not reached after a failure. */
export function summaryOf(job: JobRecord): string {
  const list = outcomes(job);
  const name = (t: BatchToken) => `"${t.comment}" (${t.workspace}, token ${tail(t.tokenId)}, owner ${t.ownerName})`;
  const revoked = list.filter((o) => o.state === 'revoked');
  const gone = list.filter((o) => o.state === 'gone');
  const dropped = list.filter((o) => o.state?.startsWith('dropped'));
  const open = list.filter((o) => o.state === undefined || o.state === 'revoking');
  const lines = [
    job.state === 'done' || job.state === 'running'
      ? `Retired ${revoked.length} of ${list.length} token(s).`
      : `Retiring stopped (${job.state}): ${job.error?.message ?? 'unknown error'}.`,
    ...revoked.map((o) => `- revoked ${name(o.token)}`),
    ...gone.map((o) => `- already gone: ${name(o.token)}`),
    ...dropped.map((o) => `- kept ${name(o.token)} — ${o.state!.replace(/^dropped: /, '')}`),
    ...(job.state !== 'done' && open.length ? open.map((o) => `- not reached, still valid: ${name(o.token)}`) : []),
  ];
  return lines.join('\n');
}
