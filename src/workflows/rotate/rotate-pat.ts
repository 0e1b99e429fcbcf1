/**
 * Rotate a service-principal-owned Databricks PAT kept in Key Vault:
 * create (OBO token, comment marked with the rotation id) → set (new KV version, exp = token expiry, tags)
 * → test (call the workspace with the new token) → finish (revoke the old token after the grace window).
 * The old token is revoked last, so until then a failure can always fall back to it.
 */
import { HOUR_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential } from '../../domain/credential.js';
import { isDatabricksError } from '../../providers/databricks/errors.js';
import { WorkflowError, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { currentOf, listVersionsOrEmpty, shortVersion, tail } from '../engine/keyvault-steps.js';
import { describeDrift, filledInLater, formatDuration, formatTime, type ActionPlan } from '../../domain/plan.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { FOUR_STEPS, beforeOldGoes, compensateRotation, discardCreated, dispatchSteps, failureText, num, publishNewCredential, readPublished, str, verified, type RotationTarget } from './rotation-common.js';
import type { JobRecord } from '../../domain/job.js';
import { keywardenRunsOn } from '../../domain/self-credential.js';
import { selfSwitchOperations, switchKeywardenToNewPat } from './self-switch.js';

export const PAT_MARKER_PREFIX = '[keywarden rotation ';

export function patMarker(rotationId: string): string {
  return `${PAT_MARKER_PREFIX}${rotationId}]`;
}

/** The old comment without earlier rotation markers, plus this rotation's marker (Databricks allows 255 chars). */
export function rotatedComment(oldComment: string, rotationId: string): string {
  const base = oldComment.replace(/\s*\[keywarden rotation [^\]]*\]/g, '').trim();
  const marker = patMarker(rotationId);
  return `${base.slice(0, 255 - marker.length - 1)} ${marker}`.trim();
}

/** The old token's scopes as journaled on the plan: "sql,jobs:read", or null for an all-APIs token. */
export function scopesOf(credential: Credential): string | null {
  return typeof credential.attributes.scopes === 'string' && credential.attributes.scopes ? credential.attributes.scopes : null;
}

const scopeList = (scopes: string): string[] => scopes.split(',').filter(Boolean);

/** Whether a token with these scopes may list its own tokens (the Token API is the `authentication` scope). */
function canListOwnTokens(scopes: string | null): boolean {
  return scopes === null || scopeList(scopes).some((s) => s === 'authentication' || s === 'authentication:read');
}

/** Why Keywarden cannot rotate this PAT, or undefined when it can. */
export function patRotationBlocker(credential: Credential): string | undefined {
  if (credential.kind !== 'databricks-pat') return 'only Databricks PATs are rotated by this workflow';
  if (credential.owner?.kind !== 'service-principal' || !credential.owner.applicationId) {
    return 'this PAT belongs to a user: Databricks cannot create a token for a person by API, so Keywarden can only revoke it — ask the owner to create a new one (or move the pipeline to a service principal)';
  }
  if (credential.heldIn.length === 0) return 'this PAT is not linked to a Key Vault secret, so there is nowhere to publish a new one — tag the secret or add a keyVault.mappings entry';
  if (typeof credential.attributes.scopesUnreadable === 'string') {
    return `Keywarden cannot read this token's scopes (${credential.attributes.scopesUnreadable}), and a new token without them could call every API — set the token's scopes in Databricks (or wait for auto-scoping to finish), scan again, then rotate`;
  }
  return undefined;
}

export function planPatRotation(credential: Credential, options: { config: KeywardenConfig; graceHours: number }): ActionPlan {
  const { config } = options;
  const held = credential.heldIn[0];
  const maxDays = typeof credential.attributes.maxTokenLifetimeDays === 'number' ? credential.attributes.maxTokenLifetimeDays : undefined;
  const lifetimeDays = Math.min(config.workflows.patLifetimeDays, maxDays ?? Number.POSITIVE_INFINITY);
  const comment = String(credential.attributes.comment ?? credential.name);
  const owner = credential.owner;
  const blocker = patRotationBlocker(credential);
  const scopes = scopesOf(credential);
  const withScopes = scopes
    ? `with the same scopes as the old token (${scopeList(scopes).join(', ')})`
    : 'with access to all APIs, like the old token (it has no scopes)';
  const test = canListOwnTokens(scopes)
    ? `test: call ${credential.where.scope} with the new token (list its own tokens) and expect to find it${scopes ? ', and check it carries the same scopes' : ''}`
    : `test: check that ${credential.where.scope} lists the new token with the same scopes and that Key Vault serves its value (a token without the authentication scope cannot list tokens itself)`;
  const grace = options.graceHours === 0 ? 'immediately after verification' : `${formatDuration(options.graceHours * HOUR_MS)} after verification (grace window; Rollback possible until then)`;
  return {
    kind: 'rotate-pat',
    subject: credential.id,
    title: `Rotate Databricks PAT "${comment}" in ${credential.where.scope}`,
    facts: {
      workspace: credential.where.scope,
      tokenId: credential.nativeId,
      comment,
      expiryTime: credential.expiresAt ?? -1,
      ownerApplicationId: owner?.applicationId ?? null,
      scopes,
      vault: held?.vault ?? null,
      secret: held?.name ?? null,
      ...(keywardenRunsOn(credential) && held ? { selfSecret: `${held.vault}/${held.name}` } : {}),
    },
    parameters: { lifetimeDays, graceHours: options.graceHours },
    operations: [
      `create: an on-behalf-of token for ${owner?.name ?? 'the owner'} (application id ${owner?.applicationId ?? 'unknown'}) in ${credential.where.scope}, lifetime ${lifetimeDays} d (capped by the workspace maximum), ${withScopes}, comment "${rotatedComment(comment, filledInLater('rotation id'))}"`,
      `set: write Key Vault secret ${held ? `${held.vault}/${held.name}` : '(none)'} as a new version with exp = the new token's expiry and tags managed-by, credential-kind=databricks-pat, credential-id=${filledInLater('new token id')}, workspace=${credential.where.scope}, rotation-id=${filledInLater('rotation id')}`,
      test,
      ...selfSwitchOperations(credential),
      `finish: revoke the old token ${tail(credential.nativeId)} ${grace}`,
    ],
    warnings: [
      ...(blocker ? [blocker] : []),
      ...(credential.heldIn.length > 1 ? [`also held in ${credential.heldIn.slice(1).map((h) => `${h.vault}/${h.name}`).join(', ')}: only the first secret is updated`] : []),
    ],
  };
}

export function createPatRotation(deps: WorkflowDeps): WorkflowDefinition {
  const { providers } = deps;
  const ws = (job: JobRecord) => providers.databricks(str(job.plan.facts.workspace));
  const kv = (job: JobRecord) => providers.keyVault(str(job.plan.facts.vault));
  const published = (job: JobRecord): RotationTarget => ({ vault: () => kv(job), name: str(job.plan.facts.secret), credentialId: str(job.facts.newTokenId), noun: 'token' });

  async function markedTokens(job: JobRecord, signal: AbortSignal) {
    const marker = patMarker(job.id);
    return (await ws(job).listTokens({ signal })).filter((t) => t.comment.includes(marker));
  }

  async function create(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const facts = job.plan.facts;
    const client = ws(job);
    if (ctx.resumed) {
      // Never create blindly twice: look for this rotation's marker first.
      const found = await markedTokens(job, signal);
      const value = ctx.handoff.get(job.id, 'token');
      const known = found.find((t) => t.tokenId === job.facts.newTokenId);
      if (known && value) return { kind: 'done', facts: { newTokenId: known.tokenId, newTokenExpiry: known.expiryTime }, note: 'found the new token by its marker' };
      for (const orphan of found) await client.deleteToken(orphan.tokenId, { signal });
      if (found.length) ctx.checkpoint({ orphansRevoked: found.length }, `revoked ${found.length} token(s) created by an interrupted attempt (value lost)`);
    } else {
      const drift = await patDrift(job, deps, signal);
      if (drift.length) return { kind: 'stop', reason: `stopped before acting: ${drift.join('; ')} — review the card and approve again` };
    }
    const conf = await client.getWorkspaceConf(['maxTokenLifetimeDays'], { signal });
    const wsMax = Number(conf.maxTokenLifetimeDays ?? '') || undefined;
    const days = Math.min(num(job.plan.parameters.lifetimeDays), wsMax ?? Number.POSITIVE_INFINITY);
    ctx.checkpoint({ marker: patMarker(job.id), lifetimeDays: days }, 'creating the token (marker journaled first)');
    let created;
    try {
      created = await client.createOboToken({
        // A move to a service principal (move-to-sp) creates the token for the new owner instead of the old one.
        applicationId: str(facts.newOwnerApplicationId ?? facts.ownerApplicationId), lifetimeSeconds: Math.round(days * 86_400),
        comment: rotatedComment(str(facts.comment), job.id), signal,
        ...(typeof facts.scopes === 'string' ? { scopes: scopeList(facts.scopes) } : {}),
      });
    } catch (err) {
      // An unknown outcome is reconciled by the marker on the next attempt (resumed = true).
      throw asStepError(err, `could not create the new token in ${str(facts.workspace)}`);
    }
    ctx.handoff.put(job.id, 'token', created.tokenValue);
    return { kind: 'done', facts: { newTokenId: created.tokenInfo.tokenId, newTokenExpiry: created.tokenInfo.expiryTime } };
  }

  async function set(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    return publishNewCredential(ctx, published(job), {
      held: ctx.handoff.get(job.id, 'token'),
      expiresOn: num(job.facts.newTokenExpiry) > 0 ? num(job.facts.newTokenExpiry) : undefined,
      tags: { kind: 'databricks-pat', workspace: str(job.plan.facts.workspace) },
      async whenLost() {
        // The process restarted between create and set: the value exists nowhere. Revoke it and create again.
        await ws(job).deleteToken(str(job.facts.newTokenId), { signal });
        return { kind: 'redo', from: 'create', note: `the new token ${tail(job.facts.newTokenId)} was created but its value was lost in a restart; revoked it, creating another`, facts: { newTokenId: null } };
      },
    });
  }

  async function test(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    // Verify what consumers reading "latest" get, not what this runner believes it wrote.
    const current = await readPublished(ctx, published(job), ctx.handoff.get(job.id, 'token'));
    if ('redo' in current) return current.redo;
    const scopes = typeof job.plan.facts.scopes === 'string' ? job.plan.facts.scopes : null;
    if (canListOwnTokens(scopes)) {
      let own;
      try {
        own = await ws(job).withToken(current.value).listOwnTokens({ signal });
      } catch (err) {
        throw asStepError(err, `the new token did not work against ${str(job.plan.facts.workspace)}`);
      }
      if (!own.some((t) => t.tokenId === job.facts.newTokenId)) {
        throw new WorkflowError(`the workspace accepted the new token but does not list ${tail(job.facts.newTokenId)} as its own — check the service principal`, 'VERIFY_MISMATCH');
      }
    }
    await checkSameScopes(job, deps, scopes, signal);
    return verified(ctx, current.version);
  }

  async function finish(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const gate = await beforeOldGoes(ctx, published(job), { id: job.plan.facts.tokenId, removed: 'revoked', removing: 'revoking', verifiedText: (until) => verifiedText(job, until) });
    if (gate) return gate;
    const switched = await switchKeywardenToNewPat(ctx, providers);
    // Anything else carrying this rotation's marker was never published (a stalled runner's late create): revoke it too.
    let strays = 0;
    for (const t of await markedTokens(job, signal)) if (t.tokenId !== job.facts.newTokenId && (await ws(job).deleteToken(t.tokenId, { signal }))) strays += 1;
    const existed = await ws(job).deleteToken(str(job.plan.facts.tokenId), { signal });
    return { kind: 'done', facts: { oldRevokedAt: ctx.now(), oldAlreadyGone: !existed, ...(strays ? { straysRevoked: strays } : {}), ...switched } };
  }

  return {
    kind: 'rotate-pat',
    steps: FOUR_STEPS,
    maxAttempts: { finish: 10 },
    run: dispatchSteps({ create, set, test, finish }),
    discard: discardCreated('newTokenId', async (tokenId, { job, signal }) => ({ revokedUnjournaledToken: await ws(job).deleteToken(tokenId, { signal }) })),
    compensate(ctx) {
      const { job, signal } = ctx;
      // Put the old value back first (it was never revoked), then remove the new token.
      return compensateRotation(ctx, () => kv(job), async () => {
        let revoked = 0;
        for (const t of await markedTokens(job, signal)) if (await ws(job).deleteToken(t.tokenId, { signal })) revoked += 1;
        return { newTokensRevoked: revoked };
      });
    },
    summarize(job) {
      return patSummary(job);
    },
  };
}

/** The new token must carry exactly the old token's scopes (a workspace that ignored them would mint an all-APIs token). */
async function checkSameScopes(job: JobRecord, deps: WorkflowDeps, scopes: string | null, signal: AbortSignal): Promise<void> {
  let fresh;
  try {
    fresh = await deps.providers.databricks(str(job.plan.facts.workspace)).getToken(str(job.facts.newTokenId), { signal });
  } catch (err) {
    throw asStepError(err, `could not read the new token back from ${str(job.plan.facts.workspace)} to check its scopes`);
  }
  if (!fresh) throw new WorkflowError(`the workspace does not list the new token ${tail(job.facts.newTokenId)} — check the service principal`, 'VERIFY_MISMATCH');
  const got = fresh.scopesUnreadable ? `unreadable scopes (${fresh.scopesUnreadable})` : fresh.scopes ? fresh.scopes.join(',') : 'all APIs';
  const want = scopes ?? 'all APIs';
  if (fresh.scopesUnreadable || [...scopeList(got)].sort().join(',') !== [...scopeList(want)].sort().join(',')) {
    throw new WorkflowError(`the new token ${tail(job.facts.newTokenId)} has ${got}, not the old token's ${want} — the workspace did not honour the scopes; the old token stays`, 'VERIFY_MISMATCH');
  }
}

/** Compares the approved facts with the token and secret as they are now. */
async function patDrift(job: JobRecord, deps: WorkflowDeps, signal: AbortSignal): Promise<string[]> {
  const f = job.plan.facts;
  const token = await deps.providers.databricks(str(f.workspace)).getToken(str(f.tokenId), { signal });
  if (!token) return [`the token ${tail(f.tokenId)} no longer exists in ${str(f.workspace)}`];
  if (token.scopesUnreadable) return [`Keywarden cannot read the token's scopes any more (${token.scopesUnreadable})`];
  const changes = describeDrift(
    { comment: f.comment ?? null, expiryTime: f.expiryTime ?? null, scopes: f.scopes ?? null },
    { comment: token.comment, expiryTime: token.expiryTime, scopes: token.scopes?.join(',') ?? null },
    { comment: 'the token comment', expiryTime: 'the token expiry', scopes: 'the token scopes' },
  );
  const current = currentOf(await listVersionsOrEmpty(deps.providers.keyVault(str(f.vault)), str(f.secret), signal));
  const heldId = current?.tags['credential-id'];
  if (heldId && heldId !== f.tokenId) changes.push(`Key Vault ${str(f.vault)}/${str(f.secret)} now holds token ${tail(heldId)}, not ${tail(f.tokenId)}`);
  return changes;
}

export function asStepError(err: unknown, what: string): Error {
  if (isDatabricksError(err) && err.code === 'OUTCOME_UNKNOWN') return new WorkflowError(`${what}: ${err.message}`, 'OUTCOME_UNKNOWN', { retryable: true });
  const status = statusOf(err);
  const retryable = status === undefined ? true : status === 429 || status >= 500;
  return new WorkflowError(`${what}: ${(err as Error).message}`, (err as { code?: string }).code ?? 'PROVIDER_ERROR', { retryable, statusCode: status });
}

function verifiedText(job: JobRecord, until: number): string {
  const f = job.facts;
  return `rotated: new token ${tail(f.newTokenId)} (expires ${formatTime(num(f.newTokenExpiry))}), Key Vault version ${shortVersion(f.kvVersion)}, verified; the old token ${tail(job.plan.facts.tokenId)} will be revoked at ${formatTime(until)} — Rollback is possible until then`;
}

export function patSummary(job: JobRecord): string {
  const f = job.facts;
  const p = job.plan.facts;
  if (job.state === 'done') {
    return `rotated: new token ${tail(f.newTokenId)} (expires ${formatTime(num(f.newTokenExpiry))}), Key Vault version ${shortVersion(f.kvVersion)}, verified, old token ${tail(p.tokenId)} revoked at ${formatTime(num(f.oldRevokedAt))}`;
  }
  return failureText(job, `the old token ${tail(p.tokenId)}`, num(p.expiryTime));
}
