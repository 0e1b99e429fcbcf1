/** The card a workspace-controls job posts in its thread when done: the outcome, token buttons, and Rollback. */
import { renderCard } from '../../cards/render.js';
import type { AdaptiveCard } from '../../domain/chat.js';

export interface TokenButtons {
  text: string;
  /** The token's alert card state: Rotate / Revoke go through that card's own approval. */
  alertId?: string;
  nonce?: string;
}

export interface ResultCardInput {
  headline: string;
  status: string;
  tokensHeading: string;
  tokens: TokenButtons[];
  rollback?: { title: string; verb: string; data: Record<string, unknown> };
}

export function resultCard(input: ResultCardInput): AdaptiveCard {
  return renderCard('workspace-controls-result', {
    headline: input.headline,
    status: input.status,
    tokensHeading: input.tokensHeading,
    tokens: input.tokens.map((t) => ({ text: t.text, hasButtons: Boolean(t.alertId), buttonData: t.alertId ? { alertId: t.alertId, nonce: t.nonce } : {} })),
    hasRollback: Boolean(input.rollback),
    rollbackTitle: input.rollback?.title ?? '',
    rollbackVerb: input.rollback?.verb ?? '',
    rollbackData: input.rollback?.data ?? {},
  });
}
