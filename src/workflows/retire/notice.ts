/** What the owners read in the thread before their tokens go, and the batch's progress card. */
import { renderCard } from '../../cards/render.js';
import type { AdaptiveCard } from '../../domain/chat.js';
import type { JobRecord } from '../../domain/job.js';
import { formatTime } from '../../domain/plan.js';
import { renderProgressCard } from '../cards.js';
import { tail } from '../engine/keyvault-steps.js';
import { batchOf, lastUsedText, type BatchToken } from './planner.js';

export interface OwnerNotice {
  text: string;
  mentions: Array<{ aadObjectId: string; name: string }>;
  card: AdaptiveCard;
}

/** Owners in the order of their first token; a person Teams can reach is @mentioned, anyone else named with why. */
export function ownerNotice(job: JobRecord, dueAt: number): OwnerNotice {
  const batch = batchOf(job.plan);
  const groups = new Map<string, BatchToken[]>();
  for (const t of batch) {
    const key = t.ownerEntraId ?? `name:${t.ownerName}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const mentions: OwnerNotice['mentions'] = [];
  const lines: string[] = [];
  const owners: Array<{ heading: string; tokens: Array<{ text: string; data: Record<string, unknown> }> }> = [];
  for (const tokens of groups.values()) {
    const first = tokens[0]!;
    const who = first.ownerEntraId ? `<at>${first.ownerName}</at>` : `${first.ownerName} (not mentioned: ${first.ownerNote ?? 'no Entra user'})`;
    if (first.ownerEntraId) mentions.push({ aadObjectId: first.ownerEntraId, name: first.ownerName });
    const names = tokens.map((t) => `"${t.comment}" in ${t.workspace}`).join(', ');
    lines.push(`${who}: ${names}`);
    owners.push({
      heading: first.ownerEntraId ? first.ownerName : `${first.ownerName} — ${first.ownerNote ?? 'not mentioned'}`,
      tokens: tokens.map((t) => ({
        text: `"${t.comment}" in ${t.workspace} (token ${tail(t.tokenId)}; ${lastUsedText(t)}; ${t.reason})`,
        data: { jobId: job.id, workspace: t.workspace, tokenId: t.tokenId, nonce: String(job.facts.keepNonce ?? '') },
      })),
    });
  }
  const when = formatTime(dueAt);
  const howToKeep = `To keep a token, use it before ${when} (any use drops it from the batch), or click "Keep this token" (its owner or an approver). There is no undo after ${when}: Databricks cannot restore a deleted token.`;
  const text = [`These Databricks tokens will be revoked on ${when} (approved by ${job.approvedBy.map((a) => a.name).join(' and ')}):`, ...lines, howToKeep].join('\n');
  const card = renderCard('retire-notice', { title: `Tokens to be revoked on ${when}`, howToKeep, owners });
  return { text, mentions, card };
}

export function retireProgressCard(job: JobRecord, headline: string, status: string): AdaptiveCard {
  return renderProgressCard({ plan: job.plan, planHash: job.planHash, approvers: job.approvedBy, job, headline, status, color: job.state === 'failed' ? 'Attention' : 'Accent' });
}
