/**
 * Which tokens a "retire unused tokens" batch revokes, and the plan an approver approves: Databricks PATs unused for
 * at least N days (governance.retire.unusedDays) or not rotated within the policy (the `not-rotated` finding), from
 * the latest scan. The batch is part of the plan's facts, so its hash pins exactly these tokens with the facts they
 * were chosen on (last use, owner); phase 2 compares each token with them again before revoking.
 */
import { DAY_MS } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential, CredentialOwner } from '../../domain/credential.js';
import { formatUtcDate } from '../../domain/expiry.js';
import { keywardenRunsOn } from '../../domain/self-credential.js';
import { eachPage, scanViewOf, type ScanResult } from '../../domain/scan.js';
import { formatTime, type ActionPlan } from '../../domain/plan.js';
import { tail } from '../engine/keyvault-steps.js';

export interface RetireOptions {
  /** A configured workspace name, or 'all'. */
  scope: string;
  unusedDays: number;
  waitDays: number;
  maxBatch: number;
  now: number;
}

/** One token of the batch: what the card lists and what phase 2 checks again. */
export interface BatchToken {
  workspace: string;
  tokenId: string;
  comment: string;
  /** Credential id in the scan (databricks-pat:<ws>:<id>). */
  credentialId: string;
  /** SCIM id of the owner when known: a changed owner drops the token. */
  ownerId: string | null;
  ownerName: string;
  /** Entra object id to @mention; null when the owner cannot be mentioned (see ownerNote). */
  ownerEntraId: string | null;
  /** Why the owner is named in plain text instead of mentioned. */
  ownerNote: string | null;
  /** Epoch ms (day precision, as Databricks reports it), or null = never used. */
  lastUsedAt: number | null;
  createdAt: number | null;
  /** "unused 120 d", "not rotated for 200 d (policy 90 d)". */
  reason: string;
}

export interface RetireBatch {
  tokens: BatchToken[];
  /** Matching tokens left for a later batch (over maxBatch). */
  more: number;
  /** Tokens that matched but Keywarden must not revoke (its own credential), with why. */
  skipped: Array<{ comment: string; workspace: string; why: string }>;
}

const days = (ms: number) => Math.floor(ms / DAY_MS);

/** Why the owner cannot be @mentioned, or null when they can. */
export function ownerNoteOf(owner: CredentialOwner | undefined): string | null {
  if (!owner) return 'no owner is known for this token';
  if (owner.kind === 'service-principal') return 'a service principal (no person to mention; tell whoever runs it)';
  if (owner.active === false) return 'deactivated — nobody will read a mention';
  if (!owner.entraObjectId) return 'no Entra user with this name was found (Graph /users by UPN or mail), so Teams cannot mention them';
  return null;
}

function reasonFor(c: Credential, config: KeywardenConfig, unusedDays: number, now: number): string | undefined {
  const since = c.lastUsedAt === null ? c.createdAt : c.lastUsedAt;
  const reasons: string[] = [];
  if (typeof since === 'number' && now - since >= unusedDays * DAY_MS) {
    reasons.push(c.lastUsedAt === null ? `never used (created ${days(now - since)} d ago)` : `unused for ${days(now - since)} d`);
  }
  const notRotated = config.policy.notRotatedDays;
  if (typeof c.createdAt === 'number' && now - c.createdAt >= notRotated * DAY_MS) {
    reasons.push(`not rotated for ${days(now - c.createdAt)} d (policy ${notRotated} d)`);
  }
  return reasons.length ? reasons.join('; ') : undefined;
}

const lastUse = (t: BatchToken) => t.lastUsedAt ?? t.createdAt ?? 0;
const oldestUseFirst = (a: BatchToken, b: BatchToken) => lastUse(a) - lastUse(b) || a.workspace.localeCompare(b.workspace) || a.tokenId.localeCompare(b.tokenId);

/** Builds a batch credential by credential, keeping only the oldest maxBatch tokens (the estate may be large). */
function batchBuilder(config: KeywardenConfig, options: RetireOptions) {
  let matching: BatchToken[] = [];
  let count = 0;
  const skipped: RetireBatch['skipped'] = [];
  const keepOldest = () => {
    matching.sort(oldestUseFirst);
    matching = matching.slice(0, options.maxBatch);
  };
  return {
    add(c: Credential): void {
      if (c.kind !== 'databricks-pat' || (options.scope !== 'all' && c.where.scope !== options.scope)) return;
      if (c.expiresAt !== null && c.expiresAt <= options.now) return;
      const reason = reasonFor(c, config, options.unusedDays, options.now);
      if (!reason) return;
      const self = keywardenRunsOn(c);
      if (self) {
        skipped.push({ comment: c.name, workspace: c.where.scope, why: `Keywarden runs on it (${self})` });
        return;
      }
      const note = ownerNoteOf(c.owner);
      count += 1;
      matching.push({
        workspace: c.where.scope, tokenId: c.nativeId, comment: c.name, credentialId: c.id,
        ownerId: c.owner?.id ?? null, ownerName: c.owner?.name ?? 'unknown owner',
        ownerEntraId: note === null ? c.owner!.entraObjectId! : null, ownerNote: note,
        lastUsedAt: c.lastUsedAt ?? null, createdAt: c.createdAt ?? null, reason,
      });
      if (matching.length >= 4 * options.maxBatch + 100) keepOldest();
    },
    batch(): RetireBatch {
      keepOldest();
      return { tokens: matching, more: Math.max(0, count - options.maxBatch), skipped };
    },
  };
}

/** The batch for a scope from credentials in memory: oldest use first, at most maxBatch. */
export function retireBatch(scan: Pick<ScanResult, 'credentials'>, config: KeywardenConfig, options: RetireOptions): RetireBatch {
  const builder = batchBuilder(config, options);
  for (const c of scan.credentials) builder.add(c);
  return builder.batch();
}

/** The batch from a scan, read page by page (yielding between pages). */
export async function retireBatchOf(scan: ScanResult, config: KeywardenConfig, options: RetireOptions): Promise<RetireBatch> {
  const builder = batchBuilder(config, options);
  // PATs only (the (kind, id) index), of one workspace or of all.
  const where = options.scope === 'all' ? { kind: 'databricks-pat' as const } : { kind: 'databricks-pat' as const, scope: options.scope };
  for await (const page of eachPage(scanViewOf(scan).pages({ where }))) for (const r of page) builder.add(r.credential);
  return builder.batch();
}

export function lastUsedText(t: Pick<BatchToken, 'lastUsedAt'>): string {
  return t.lastUsedAt === null ? 'never used' : `last used ${formatUtcDate(t.lastUsedAt)}`;
}

/** The retire plan: every token with its facts, who is told, the wait, and that nothing can be undone. */
export function planRetire(batch: RetireBatch, options: RetireOptions): ActionPlan {
  const where = options.scope === 'all' ? 'every workspace' : options.scope;
  const owners = [...new Set(batch.tokens.map((t) => t.ownerName))];
  return {
    kind: 'retire-unused',
    subject: `retire-unused:${options.scope}`,
    title: `Retire ${batch.tokens.length} unused or unrotated Databricks token${batch.tokens.length === 1 ? '' : 's'} in ${where}`,
    facts: { scope: options.scope, tokenCount: batch.tokens.length, batch: JSON.stringify(batch.tokens) },
    parameters: { unusedDays: options.unusedDays, notRotatedDays: -1, waitDays: options.waitDays },
    operations: [
      `set: post in this thread an @mention of each owner (${owners.join(', ') || 'none'}) naming their tokens, the date they will be revoked (approval + ${options.waitDays} d) and how to keep one`,
      `wait ${options.waitDays} d; any token used during the wait (its last_used_day moves), kept by its owner, gone already, or with another owner is dropped from the batch`,
      ...batch.tokens.map((t) => `finish: revoke token ${tail(t.tokenId)} "${t.comment}" in ${t.workspace} (owner ${t.ownerName}; ${lastUsedText(t)}; created ${t.createdAt ? formatUtcDate(t.createdAt) : 'unknown'}; ${t.reason})`),
      'finish: list each revocation and each dropped token with its reason in this thread',
    ],
    warnings: [
      'No rollback: Databricks cannot restore a deleted token. Whoever still needs one creates a new token (or uses it during the wait to keep it).',
      ...batch.tokens.filter((t) => t.ownerNote).map((t) => `${t.ownerName} (owner of "${t.comment}") is named in plain text, not mentioned: ${t.ownerNote}`),
      ...(batch.more > 0 ? [`${batch.more} more matching token(s) are not in this batch (at most ${options.maxBatch}: governance.retire.maxBatch); retire them in a later batch`] : []),
      ...batch.skipped.map((s) => `"${s.comment}" in ${s.workspace} is not in the batch: ${s.why}`),
    ],
  };
}

export function batchOf(plan: ActionPlan): BatchToken[] {
  try {
    const parsed = JSON.parse(String(plan.facts.batch ?? '[]')) as unknown;
    return Array.isArray(parsed) ? (parsed as BatchToken[]) : [];
  } catch {
    return [];
  }
}

/** When phase 2 runs, from the approval time. */
export function revokeDate(approvedAt: number, waitDays: number): string {
  return formatTime(approvedAt + waitDays * DAY_MS);
}
