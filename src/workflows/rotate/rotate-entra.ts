/**
 * Rotate an Entra client secret kept in Key Vault:
 * create (addPassword, displayName marked with the rotation id, end date within policy) → set (wait until Entra
 * accepts the new secret — it replicates for seconds — then write the new KV version) → test (get a token with the
 * value Key Vault holds) → finish (removePassword of the old secret after the grace window).
 */
import { DAY_MS, HOUR_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential } from '../../domain/credential.js';
import type { CredentialHolderKind } from '../../providers/entra/graph.js';
import { WorkflowError, statusOf } from '../engine/errors.js';
import type { StepContext, StepOutcome, WorkflowDefinition } from '../engine/journal.js';
import { shortVersion, tail } from '../engine/keyvault-steps.js';
import { describeDrift, filledInLater, formatDuration, formatTime, type ActionPlan } from '../../domain/plan.js';
import type { WorkflowDeps } from '../engine/providers.js';
import { FOUR_STEPS, beforeOldGoes, compensateRotation, discardCreated, dispatchSteps, failureText, num, publishNewCredential, readPublished, str, verified, type RotationTarget } from './rotation-common.js';
import type { JobRecord } from '../../domain/job.js';

import { selfSwitchOperations } from './self-switch.js';

export function entraMarker(rotationId: string): string {
  return `keywarden rotation ${rotationId}`;
}

export function entraRotationBlocker(credential: Credential): string | undefined {
  if (credential.kind !== 'entra-password') return 'only Entra client secrets are rotated by this workflow';
  if (!credential.attributes.objectId || !credential.attributes.appId) return 'the app registration of this secret is not known — rescan and try again';
  if (credential.heldIn.length === 0) return 'this secret is not linked to a Key Vault secret, so there is nowhere to publish a new one — tag the secret (credential-id, app-id) or add a keyVault.mappings entry';
  return undefined;
}

export function planEntraRotation(credential: Credential, options: { config: KeywardenConfig; graceHours: number }): ActionPlan {
  const held = credential.heldIn[0];
  const lifetimeDays = Math.min(options.config.workflows.entraSecretLifetimeDays, options.config.policy.maxLifetimeDays['entra-password']);
  const app = String(credential.attributes.displayName ?? credential.owner?.name ?? credential.where.scope);
  const target = credential.attributes.objectType === 'servicePrincipal' ? 'service principal' : 'application';
  const blocker = entraRotationBlocker(credential);
  const grace = options.graceHours === 0 ? 'immediately after verification' : `${formatDuration(options.graceHours * HOUR_MS)} after verification (grace window; Rollback possible until then)`;
  return {
    kind: 'rotate-entra',
    subject: credential.id,
    title: `Rotate the client secret of ${app}`,
    facts: {
      appId: String(credential.attributes.appId ?? credential.where.scope),
      objectType: String(credential.attributes.objectType ?? 'application'),
      objectId: String(credential.attributes.objectId ?? ''),
      keyId: credential.nativeId,
      expiresAt: credential.expiresAt ?? -1,
      vault: held?.vault ?? null,
      secret: held?.name ?? null,
    },
    parameters: { lifetimeDays, graceHours: options.graceHours },
    operations: [
      `create: add a client secret to the ${target} ${app} named "${entraMarker(filledInLater('rotation id'))}", ending ${lifetimeDays} d from now`,
      `set: once Entra accepts the new secret (it replicates for seconds; retried within ${options.config.workflows.verifyTimeoutSeconds} s), write Key Vault secret ${held ? `${held.vault}/${held.name}` : '(none)'} as a new version with exp = the secret's end date and tags managed-by, credential-kind=entra-password, credential-id=${filledInLater('new key id')}, app-id=${String(credential.attributes.appId ?? credential.where.scope)}, rotation-id=${filledInLater('rotation id')}`,
      'test: get an Entra token with the value Key Vault now holds',
      ...selfSwitchOperations(credential),
      `finish: remove the old secret ${tail(credential.nativeId)} ${grace}`,
    ],
    warnings: blocker ? [blocker] : [],
  };
}

const target = (job: JobRecord): CredentialHolderKind => (job.plan.facts.objectType === 'servicePrincipal' ? 'servicePrincipal' : 'application');

export function createEntraRotation(deps: WorkflowDeps): WorkflowDefinition {
  const { providers, config } = deps;
  const graph = () => providers.graph();
  const kv = (job: JobRecord) => providers.keyVault(str(job.plan.facts.vault));
  const published = (job: JobRecord): RotationTarget => ({ vault: () => kv(job), name: str(job.plan.facts.secret), credentialId: str(job.facts.newKeyId), noun: 'secret' });

  async function passwords(job: JobRecord, signal: AbortSignal) {
    const objectId = str(job.plan.facts.objectId);
    const holder = target(job) === 'servicePrincipal'
      ? await graph().getServicePrincipal(objectId, { select: ['id', 'passwordCredentials'], signal })
      : await graph().getApplication(objectId, { select: ['id', 'passwordCredentials'], signal });
    return holder.passwordCredentials ?? [];
  }

  async function create(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const f = job.plan.facts;
    const marker = entraMarker(job.id);
    const existing = await passwords(job, signal);
    if (ctx.resumed) {
      const mine = existing.filter((p) => p.displayName === marker && p.keyId);
      const value = ctx.handoff.get(job.id, 'secret');
      const known = mine.find((p) => p.keyId === job.facts.newKeyId);
      if (known && value) return { kind: 'done', facts: { newKeyId: known.keyId!, newKeyExpiry: Date.parse(known.endDateTime ?? '') || null }, note: 'found the new secret by its name' };
      for (const orphan of mine) await graph().removePassword(str(f.objectId), orphan.keyId!, { signal, target: target(job) });
      if (mine.length) ctx.checkpoint({ orphansRemoved: mine.length }, `removed ${mine.length} secret(s) added by an interrupted attempt (value lost)`);
    } else {
      const old = existing.find((p) => p.keyId === f.keyId);
      if (!old) return { kind: 'stop', reason: `stopped before acting: the secret ${tail(f.keyId)} no longer exists on the app — review the card and approve again` };
      const drift = describeDrift({ expiresAt: f.expiresAt ?? null }, { expiresAt: Date.parse(old.endDateTime ?? '') || -1 }, { expiresAt: 'the secret end date' });
      if (drift.length) return { kind: 'stop', reason: `stopped before acting: ${drift.join('; ')} — review the card and approve again` };
    }
    const end = ctx.now() + num(job.plan.parameters.lifetimeDays) * DAY_MS;
    ctx.checkpoint({ marker }, 'adding the secret (marker journaled first)');
    let created;
    try {
      created = await graph().addPassword(str(f.objectId), { displayName: marker, endDateTime: end, signal, target: target(job) });
    } catch (err) {
      throw stepError(err, 'could not add the new client secret');
    }
    ctx.handoff.put(job.id, 'secret', created.secretText);
    // A new secret gets the whole replication budget (a redo after a restart must not inherit the old clock).
    return { kind: 'done', facts: { newKeyId: created.keyId, newKeyExpiry: Date.parse(created.endDateTime) || end, verifyStartedAt: null } };
  }

  async function set(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    return publishNewCredential(ctx, published(job), {
      held: ctx.handoff.get(job.id, 'secret'),
      expiresOn: num(job.facts.newKeyExpiry) || undefined,
      tags: { kind: 'entra-password', appId: str(job.plan.facts.appId) },
      async whenLost() {
        await graph().removePassword(str(job.plan.facts.objectId), str(job.facts.newKeyId), { signal, target: target(job) });
        return { kind: 'redo', from: 'create', note: `the new secret ${tail(job.facts.newKeyId)} was added but its value was lost in a restart; removed it, adding another`, facts: { newKeyId: null } };
      },
      // Publish only a secret Entra already accepts: consumers reading "latest" must never get one still replicating.
      beforeWrite: (value) => awaitAccepted(ctx, value),
    });
  }

  /** Gets a token with the secret; a refusal while Entra replicates it (seconds) is retried on the clock within the budget. */
  async function awaitAccepted(ctx: StepContext, value: string): Promise<void> {
    const { job, signal } = ctx;
    const startedAt = num(job.facts.verifyStartedAt);
    if (Number.isNaN(startedAt)) ctx.checkpoint({ verifyStartedAt: ctx.now() });
    const since = Number.isNaN(startedAt) ? ctx.now() : startedAt;
    const result = await providers.verifyClientSecret({ clientId: str(job.plan.facts.appId), secret: value, signal });
    if (result.ok) return;
    const waited = ctx.now() - since;
    const budget = config.workflows.verifyTimeoutSeconds * 1000;
    if (result.transient && waited < budget) {
      throw new WorkflowError(`the new secret is not accepted yet (${result.reason})`, 'NOT_PROPAGATED', { retryable: true, retryAfterMs: Math.min(5000, 1000 * ctx.step.attempts) });
    }
    throw new WorkflowError(`the new secret was refused: ${result.reason}`, result.code ?? 'VERIFY_FAILED');
  }

  async function test(ctx: StepContext): Promise<StepOutcome> {
    const { job } = ctx;
    // What consumers get: the value Key Vault's current version holds, checked to be this rotation's new secret.
    const current = await readPublished(ctx, published(job), ctx.handoff.get(job.id, 'secret'));
    if ('redo' in current) return current.redo;
    await awaitAccepted(ctx, current.value);
    return verified(ctx, current.version);
  }

  async function finish(ctx: StepContext): Promise<StepOutcome> {
    const { job, signal } = ctx;
    const gate = await beforeOldGoes(ctx, published(job), { id: job.plan.facts.keyId, removed: 'removed', removing: 'removing', verifiedText: (until) => verifiedText(job, until) });
    if (gate) return gate;
    // Anything else carrying this rotation's name was never published (a stalled runner's late create): remove it too.
    let strays = 0;
    for (const p of await passwords(job, signal)) {
      if (p.displayName === entraMarker(job.id) && p.keyId && p.keyId !== job.facts.newKeyId) {
        if ((await graph().removePassword(str(job.plan.facts.objectId), p.keyId, { signal, target: target(job) })) === 'removed') strays += 1;
      }
    }
    const outcome = await graph().removePassword(str(job.plan.facts.objectId), str(job.plan.facts.keyId), { signal, target: target(job) });
    return { kind: 'done', facts: { oldRemovedAt: ctx.now(), oldAlreadyGone: outcome === 'already-gone', ...(strays ? { straysRemoved: strays } : {}) } };
  }

  return {
    kind: 'rotate-entra',
    steps: FOUR_STEPS,
    // set and test wait out Entra's replication (bounded by workflows.verifyTimeoutSeconds), a few seconds per attempt.
    maxAttempts: { set: 60, test: 60, finish: 10 },
    run: dispatchSteps({ create, set, test, finish }),
    discard: discardCreated('newKeyId', async (keyId, { job, signal }) => {
      const outcome = await graph().removePassword(str(job.plan.facts.objectId), keyId, { signal, target: target(job) });
      return { removedUnjournaledSecret: outcome === 'removed' };
    }),
    compensate(ctx) {
      const { job, signal } = ctx;
      return compensateRotation(ctx, () => kv(job), async () => {
        let removed = 0;
        for (const p of await passwords(job, signal)) {
          if (p.displayName === entraMarker(job.id) && p.keyId) {
            if ((await graph().removePassword(str(job.plan.facts.objectId), p.keyId, { signal, target: target(job) })) === 'removed') removed += 1;
          }
        }
        return { newSecretsRemoved: removed };
      });
    },
    summarize(job) {
      const f = job.facts;
      if (job.state === 'done') {
        return `rotated: new client secret ${tail(f.newKeyId)} (expires ${formatTime(num(f.newKeyExpiry))}), Key Vault version ${shortVersion(f.kvVersion)}, verified, old secret ${tail(job.plan.facts.keyId)} removed at ${formatTime(num(f.oldRemovedAt))}`;
      }
      return failureText(job, `the old secret ${tail(job.plan.facts.keyId)}`, num(job.plan.facts.expiresAt));
    },
  };
}

function verifiedText(job: JobRecord, until: number): string {
  const f = job.facts;
  return `rotated: new client secret ${tail(f.newKeyId)} (expires ${formatTime(num(f.newKeyExpiry))}), Key Vault version ${shortVersion(f.kvVersion)}, verified; the old secret ${tail(job.plan.facts.keyId)} will be removed at ${formatTime(until)} — Rollback is possible until then`;
}

function stepError(err: unknown, what: string): Error {
  const status = statusOf(err);
  const code = (err as { code?: string }).code ?? 'PROVIDER_ERROR';
  const retryable = status === undefined ? ['Timeout', 'NetworkError'].includes(code) : status === 429 || status >= 500;
  return new WorkflowError(`${what}: ${(err as Error).message}`, code, { retryable, statusCode: status });
}
