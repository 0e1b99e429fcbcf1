/**
 * Pipeline JIT grants: a request from an authenticated pipeline becomes either a job under the caller's standing
 * approval (posted as a card thread in the support channel first) or, outside it, the same JIT request card `/jit`
 * makes, which an approver approves or denies. One grant per (caller, pipeline run id): a retry gets the same grant.
 * The job is the ordinary journaled JIT workflow; release ends its time-to-live now.
 */
import { recordApproval } from '../approvals/record.js';
import { outsidePipelineTemplate, pipelineStandingApproval, type PipelineJitTemplate, type StandingApproval } from '../approvals/standing.js';
import type { JitRequestRecord } from '../approvals/types.js';
import { supportChannels, environmentOf, type SupportChannel } from '../alerts/routing.js';
import { HOUR_MS } from '../clock.js';
import type { ChatGateway, PostedMessage } from '../domain/chat.js';
import { TERMINAL_STATES, type JobActor, type JobRecord } from '../domain/job.js';
import { formatTime, planHash, shortHash } from '../domain/plan.js';
import { newId, newNonce, STEPS, type WorkflowActionsOptions } from '../workflows/actions.js';
import { renderProgressCard } from '../workflows/cards.js';
import { jitRequestCardFor, jitRequestKey } from '../workflows/jit/jit-actions.js';
import { planJit } from '../workflows/jit/jit.js';
import type { PipelineCaller } from './auth.js';
import { sameRequest, type PipelineJitBody } from './request.js';

/** A pipeline's grant, stored in `approvals` as `pipeline:<requestId>` (indexed by `pipeline-run:<oid>:<runId>`). */
export interface PipelineGrant {
  id: string;
  requestId: string;
  caller: { objectId: string; name: string };
  request: PipelineJitBody;
  standingApprovalId: string;
  /** Why it is outside the standing approval (empty: it ran under it without a click). */
  outside: string[];
  jobId?: string;
  message?: PostedMessage;
  releaseRequestedAt?: number;
  createdAt: number;
}

export type GrantStatus = 'pending' | 'denied' | 'creating' | 'ready' | 'releasing' | 'released' | 'expired' | 'failed';

export interface GrantView {
  grant: PipelineGrant;
  status: GrantStatus;
  reason?: string;
  expiresAt?: number;
  job?: JobRecord;
}

export type CreateOutcome =
  | { kind: 'created' | 'existing'; view: GrantView }
  | { kind: 'conflict'; code: string; message: string }
  | { kind: 'unavailable'; message: string };

export interface PipelineGrantsOptions extends WorkflowActionsOptions {
  chat: () => ChatGateway | undefined;
}

const grantKey = (requestId: string) => `pipeline:${requestId}`;
const GRANT_KEY = /^pipeline:[0-9a-f]{12}$/;
const runKey = (objectId: string, runId: string) => `pipeline-run:${objectId.toLowerCase()}:${runId.toLowerCase()}`;

export class PipelineGrants {
  constructor(private readonly options: PipelineGrantsOptions) {}

  private get store() {
    return this.options.store;
  }

  get(requestId: string): PipelineGrant | undefined {
    return /^[0-9a-f]{12}$/.test(requestId) ? this.store.get<PipelineGrant>('approvals', grantKey(requestId))?.value : undefined;
  }

  /** The standing approval a caller's config declares (as synced into the store at start). */
  standingFor(caller: PipelineCaller): StandingApproval<PipelineJitTemplate> {
    return pipelineStandingApproval(caller.config, this.options.config, this.options.clock.now());
  }

  async create(caller: PipelineCaller, body: PipelineJitBody): Promise<CreateOutcome> {
    const { store, clock } = this.options;
    const now = clock.now();
    const index = store.get<{ requestId: string }>('approvals', runKey(caller.objectId, body.pipelineRunId));
    if (index) {
      const existing = this.get(index.value.requestId);
      if (!existing) return { kind: 'unavailable', message: 'the first request for this pipeline run is still being set up; retry in a few seconds' };
      if (!sameRequest(existing.request, body)) {
        return { kind: 'conflict', code: 'run_already_granted', message: `pipeline run ${body.pipelineRunId} already has grant ${existing.requestId} with other parameters; one run gets one grant` };
      }
      return { kind: 'existing', view: this.view(existing) };
    }
    const clash = this.activeSecretUse(body);
    if (clash) return { kind: 'conflict', code: 'secret_in_use', message: `${body.vault}/${clash.name} is in use by grant ${clash.requestId} (still live); use a per-run name such as ${caller.config.secretPrefix}<run id>-token` };

    const standing = this.standingFor(caller);
    const outside = outsidePipelineTemplate(standing.template, {
      workspace: body.workspace, hours: body.hours, maxCapacity: body.maxCapacity, nodeType: body.nodeType, hourOfDay: new Date(now).getUTCHours(),
    });
    const requestId = newId('p').slice(2);
    const grant: PipelineGrant = {
      id: grantKey(requestId), requestId, caller: { objectId: caller.objectId, name: caller.config.name }, request: body,
      standingApprovalId: standing.id, outside, createdAt: now,
    };
    // Claim the run first: a retry arriving while the card is being posted finds it.
    const claimed = store.transaction(() => {
      if (!store.insert('approvals', runKey(caller.objectId, body.pipelineRunId), { requestId })) return false;
      store.insert('approvals', grant.id, grant);
      return true;
    });
    if (!claimed) return this.create(caller, body);
    store.appendAudit({
      action: 'pipeline.jit.requested', actor: { aadObjectId: caller.objectId, name: caller.config.name }, subject: `jit:${requestId}`, result: 'info',
      details: { ...body, standingApprovalId: standing.id, standingPlanHash: standing.planHash, outside, route: outside.length ? 'approver' : 'standing approval' },
    });
    try {
      const saved = outside.length ? await this.askApprovers(grant) : await this.startUnderStanding(grant, standing);
      return { kind: 'created', view: this.view(saved) };
    } catch (err) {
      // Nothing ran: forget the claim so the pipeline's retry starts over.
      store.transaction(() => {
        for (const id of [runKey(caller.objectId, body.pipelineRunId), grant.id, jitRequestKey(requestId)]) {
          const rec = store.get('approvals', id);
          if (rec) store.delete('approvals', id, rec.version);
        }
      });
      this.options.logger?.warn({ err, requestId }, 'could not post the pipeline JIT grant in the support channel; refused the request');
      return { kind: 'unavailable', message: `the support channel could not be told about this grant (${(err as Error).message.slice(0, 160)}); nothing was created — retry shortly` };
    }
  }

  /** Inside the standing approval: post the grant's card, then start the JIT job whose thread it is. */
  private async startUnderStanding(initial: PipelineGrant, standing: StandingApproval<PipelineJitTemplate>): Promise<PipelineGrant> {
    const { store, clock, engine } = this.options;
    let grant = initial;
    const now = clock.now();
    const plan = this.planFor(grant, now + grant.request.hours * HOUR_MS);
    const hash = planHash(plan);
    const approver: JobActor = { aadObjectId: standing.id, name: `standing approval ${standing.id}` };
    const requester: JobActor = { aadObjectId: grant.caller.objectId, name: grant.caller.name };
    const card = renderProgressCard({
      plan, planHash: hash, approvers: [approver], color: 'Accent',
      headline: `Pipeline JIT grant ${grant.requestId} for ${grant.caller.name} — approved by its standing approval`,
      status: `${grant.caller.name} (object id ${grant.caller.objectId}) asked for pipeline run ${grant.request.pipelineRunId}: "${grant.request.justification}". `
        + `Standing approval ${standing.id} (plan ${shortHash(standing.planHash)}) covers it. Token → ${grant.request.vault}/${grant.request.tokenSecretName}, `
        + `pool id → ${grant.request.vault}/${grant.request.poolSecretName}; everything ends at ${formatTime(Number(plan.parameters.expiresAt))} or when the pipeline releases it.`,
    });
    // Journal the card before the job: a crash in between resumes with the same thread instead of posting again.
    const message = grant.message ?? (await this.post(grant, { card, text: `Pipeline JIT grant ${grant.requestId} for ${grant.caller.name} (run ${grant.request.pipelineRunId})` }));
    if (!grant.message) grant = this.save(grant, (g) => ({ ...g, message }));
    const outcome = recordApproval(store, {
      id: `jit:${grant.requestId}:standing`, action: 'jit', subject: `jit:${grant.requestId}`, scope: grant.request.workspace, nonce: grant.requestId,
      required: 1, approver: { ...approver, at: now, justification: grant.request.justification }, plan, planHash: hash, jobKind: 'jit', steps: STEPS.jit,
      jobId: newId('jit'), requestId: grant.requestId, requestedBy: requester, justification: grant.request.justification, message, now,
    });
    if (outcome.kind === 'exists' && outcome.job) return this.save(grant, (g) => ({ ...g, jobId: outcome.job!.id }));
    if (outcome.kind !== 'started') throw new Error(`the grant could not start (${outcome.kind})`);
    store.appendAudit({
      action: 'approval.granted', actor: approver, subject: `jit:${grant.requestId}`, result: 'ok',
      details: { verb: 'jit', standingApprovalId: standing.id, standingPlanHash: standing.planHash, planHash: hash, plan: plan.operations, requestedBy: requester, jobId: outcome.job.id, pipelineRunId: grant.request.pipelineRunId },
    });
    const saved = this.save(grant, (g) => ({ ...g, jobId: outcome.job.id, message }));
    engine.kick(outcome.job.id);
    return saved;
  }

  /**
   * At start: grants whose set-up a crash interrupted (claimed, maybe posted, no job or request card yet) are carried on,
   * so the pipeline's polling ends; what was already done (the card, the approval) is found and not done twice.
   */
  async resumeUnstarted(): Promise<number> {
    let resumed = 0;
    for (const grant of this.grants()) {
      if (grant.jobId || this.store.get<JitRequestRecord>('approvals', jitRequestKey(grant.requestId))?.value.message) continue;
      try {
        if (grant.outside.length) await this.askApprovers(grant);
        else await this.startUnderStanding(grant, pipelineStandingApproval(this.callerConfig(grant), this.options.config, this.options.clock.now()));
        resumed += 1;
      } catch (err) {
        this.options.logger?.warn({ err, requestId: grant.requestId }, 'could not resume an interrupted pipeline grant; will try at the next start');
      }
    }
    return resumed;
  }

  private callerConfig(grant: PipelineGrant) {
    const found = this.options.config.pipelines.callers.find((c) => c.objectId.toLowerCase() === grant.caller.objectId);
    if (!found) throw new Error(`caller ${grant.caller.name} is no longer configured`);
    return found;
  }

  /** Outside it: the ordinary JIT request card, in the support channel, for an approver (not the pipeline) to decide. */
  private async askApprovers(grant: PipelineGrant): Promise<PipelineGrant> {
    const { store, clock } = this.options;
    const now = clock.now();
    const channel = this.channelFor(grant);
    const request: JitRequestRecord = {
      id: jitRequestKey(grant.requestId), requestId: grant.requestId, workspace: grant.request.workspace, hours: grant.request.hours,
      nodeType: grant.request.nodeType, maxCapacity: grant.request.maxCapacity, justification: grant.request.justification,
      requestedBy: { aadObjectId: grant.caller.objectId, name: `${grant.caller.name} (pipeline)` },
      conversation: { conversationId: channel.target.conversationId, serviceUrl: channel.target.serviceUrl, tenantId: channel.target.tenantId },
      nonce: newNonce(), nonceIssuedAt: now, state: 'requested', extensions: [], createdAt: now,
      secrets: { vault: grant.request.vault, tokenSecret: grant.request.tokenSecretName, poolSecret: grant.request.poolSecretName },
      pipeline: { caller: grant.caller.name, callerObjectId: grant.caller.objectId, runId: grant.request.pipelineRunId, grantId: grant.requestId },
    };
    store.put('approvals', request.id, request);
    const answer = jitRequestCardFor(this.options, request, `Asked by pipeline ${grant.caller.name} for run ${grant.request.pipelineRunId}; outside its standing approval: ${grant.outside.join('; ')}.`);
    const message = await this.post(grant, 'card' in answer ? { card: answer.card, text: `Pipeline JIT request ${grant.requestId} needs an approver` } : { text: answer.text });
    const rec = store.get<JitRequestRecord>('approvals', request.id)!;
    store.compareAndSet('approvals', rec.id, rec.version, { ...rec.value, message });
    return this.save(grant, (g) => ({ ...g, message }));
  }

  /** Ends the grant now: the job's finish step revokes the token, deletes the pool and disables the secrets. */
  async release(grant: PipelineGrant, by: string): Promise<GrantView> {
    const { store, clock, engine } = this.options;
    const now = clock.now();
    let view = this.view(grant);
    // An approver-approved grant learns its job from the request record.
    if (!grant.jobId && view.grant.jobId) grant = this.save(grant, (g) => ({ ...g, jobId: view.grant.jobId }));
    if (view.status === 'pending') {
      const rec = store.get<JitRequestRecord>('approvals', jitRequestKey(grant.requestId));
      if (rec) store.compareAndSet('approvals', rec.id, rec.version, { ...rec.value, state: 'denied', nonce: newNonce(), deniedBy: { aadObjectId: grant.caller.objectId, name: by }, denyReason: 'withdrawn by the pipeline before anyone approved it' });
    }
    if (!grant.releaseRequestedAt) {
      grant = this.save(grant, (g) => ({ ...g, releaseRequestedAt: now }));
      store.appendAudit({ action: 'pipeline.jit.released', actor: { aadObjectId: grant.caller.objectId, name: by }, subject: `jit:${grant.requestId}`, result: 'info', details: { jobId: grant.jobId, status: view.status } });
    }
    if (grant.jobId && this.applyRelease(grant)) await Promise.race([engine.run(grant.jobId), new Promise((r) => setTimeout(r, 20_000).unref())]);
    view = this.view(this.get(grant.requestId) ?? grant);
    return view;
  }

  /** Moves a live job's end to now, if nobody is running it; false while a step runs (retried by the timer). */
  applyRelease(grant: PipelineGrant): boolean {
    if (!grant.jobId || !grant.releaseRequestedAt) return false;
    const now = this.options.clock.now();
    const changed = this.options.engine.changeWaiting(grant.jobId, (j) => (typeof j.facts.releasedAt === 'number' ? undefined
      : { ...j, dueAt: undefined, waitingFor: `released by ${grant.caller.name}`, facts: { ...j.facts, releasedAt: now, releasedBy: grant.caller.name } }));
    return changed !== undefined;
  }

  /** Releases asked for while the job was busy (creating its token): applied once it waits. */
  releasesDue(): PipelineGrant[] {
    return this.grants()
      .filter((g) => g.releaseRequestedAt && g.jobId && !this.isDone(g.jobId) && typeof this.job(g.jobId)?.facts.releasedAt !== 'number');
  }

  view(grant: PipelineGrant): GrantView {
    const req = this.store.get<JitRequestRecord>('approvals', jitRequestKey(grant.requestId))?.value;
    const jobId = grant.jobId ?? req?.jobId;
    const job = jobId ? this.job(jobId) : undefined;
    const expiresAt = job ? (typeof job.facts.expiresAt === 'number' ? job.facts.expiresAt : Number(job.plan.parameters.expiresAt)) : undefined;
    const base = { grant: jobId && !grant.jobId ? { ...grant, jobId } : grant, ...(job ? { job, expiresAt } : {}) };
    if (!job) {
      if (req?.state === 'denied') {
        return { ...base, status: 'denied', reason: `${req.denyReason ? `${req.denyReason} — ` : ''}denied by ${req.deniedBy?.name ?? 'an approver'} in the support channel` };
      }
      return { ...base, status: req || grant.outside.length ? 'pending' : 'creating', ...(grant.outside.length ? { reason: `waiting for an approver: ${grant.outside.join('; ')}` } : {}) };
    }
    if (TERMINAL_STATES.includes(job.state)) {
      if (job.state === 'done') return { ...base, status: typeof job.facts.releasedAt === 'number' ? 'released' : 'expired' };
      return { ...base, status: 'failed', reason: job.error?.message ?? job.state };
    }
    if (grant.releaseRequestedAt) return { ...base, status: 'releasing' };
    return { ...base, status: typeof job.facts.readyAt === 'number' ? 'ready' : 'creating' };
  }

  private grants(): PipelineGrant[] {
    return this.store.list<PipelineGrant>('approvals', { prefix: 'pipeline:' }).filter((r) => GRANT_KEY.test(r.id)).map((r) => r.value);
  }

  private job(id: string): JobRecord | undefined {
    return this.store.get<JobRecord>('jobs', id)?.value;
  }

  private isDone(jobId: string): boolean {
    const job = this.job(jobId);
    return !job || TERMINAL_STATES.includes(job.state);
  }

  private activeSecretUse(body: PipelineJitBody): { name: string; requestId: string } | undefined {
    const wanted = new Set([body.tokenSecretName.toLowerCase(), body.poolSecretName.toLowerCase()]);
    for (const g of this.grants()) {
      if (g.request.vault !== body.vault) continue;
      const name = [g.request.tokenSecretName, g.request.poolSecretName].find((n) => wanted.has(n.toLowerCase()));
      if (!name) continue;
      const status = this.view(g).status;
      if (!['denied', 'released', 'expired', 'failed'].includes(status)) return { name, requestId: g.requestId };
    }
    return undefined;
  }

  private planFor(grant: PipelineGrant, expiresAt: number) {
    const r = grant.request;
    return planJit({
      requestId: grant.requestId, workspace: r.workspace, hours: r.hours, nodeType: r.nodeType, maxCapacity: r.maxCapacity, idleMinutes: r.idleAutoTerminationMinutes,
      secrets: { vault: r.vault, tokenSecret: r.tokenSecretName, poolSecret: r.poolSecretName },
      pipeline: { caller: grant.caller.name, callerObjectId: grant.caller.objectId, runId: r.pipelineRunId, standingApprovalId: grant.standingApprovalId },
    }, { config: this.options.config, expiresAt });
  }

  private channelFor(grant: PipelineGrant): SupportChannel {
    const { config, store } = this.options;
    const channels = supportChannels(config, store);
    const wanted = config.pipelines.channel;
    const env = environmentOf(config, grant.request.workspace);
    const channel = (wanted ? channels.find((c) => c.name === wanted) : undefined)
      ?? channels.find((c) => c.routes.includes(grant.request.workspace) || (env !== undefined && c.routes.includes(env)))
      ?? channels.find((c) => c.isDefault) ?? channels[0];
    if (!channel) throw new Error('no support channel is configured or installed (teams.channels)');
    return channel;
  }

  private async post(grant: PipelineGrant, content: Parameters<ChatGateway['post']>[1]): Promise<PostedMessage> {
    const chat = this.options.chat();
    if (!chat) throw new Error('Teams is not connected yet');
    return chat.post(this.channelFor(grant).target, content, { signal: AbortSignal.timeout(15_000) });
  }

  private save(grant: PipelineGrant, change: (g: PipelineGrant) => PipelineGrant): PipelineGrant {
    for (let i = 0; i < 5; i++) {
      const rec = this.store.get<PipelineGrant>('approvals', grant.id);
      if (!rec) return change(grant);
      const next = change(rec.value);
      if (this.store.compareAndSet('approvals', rec.id, rec.version, next)) return next;
    }
    throw new Error(`grant ${grant.requestId} kept changing under us`);
  }
}
