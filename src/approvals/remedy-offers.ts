/**
 * Remedy buttons for things that have no alert card of their own (a workspace's token settings, a batch of unused
 * tokens, a credential with no alert). Whoever renders such a button first stores an offer: the remedy, its subject
 * and a nonce. The click carries only `{ offerId, nonce }`; the handler reads everything else from the offer, so a
 * click never chooses what the remedy acts on. Stored in `approvals` as `remedy:<offerId>`.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { ApprovalAction } from './types.js';

export type RemedyKind = Extract<ApprovalAction, 'move-to-sp' | 'max-lifetime' | 'restrict-tokens' | 'retire-unused' | 'revoke'>;

export interface RemedyOffer {
  id: string;
  remedy: RemedyKind;
  /** What the remedy acts on: a workspace name (scope remedies) or a credential id. */
  subject: string;
  /** Workspace / vault / app scope, matched against approvals.highRisk. */
  scope: string;
  /** Server-chosen parameters shown on the offer (e.g. unusedDays); never taken from a click. */
  parameters: Record<string, string | number | boolean | null>;
  nonce: string;
  nonceIssuedAt: number;
  /** Who asked (a command) or "Keywarden (governance report)". */
  offeredBy?: { aadObjectId?: string; name: string };
  createdAt: number;
}

export const remedyOfferKey = (offerId: string): string => `remedy:${offerId}`;

/** Stores a fresh offer and returns it; its id and nonce go into the button's data. */
export function createRemedyOffer(store: Store, clock: Clock, offer: Omit<RemedyOffer, 'id' | 'nonce' | 'nonceIssuedAt' | 'createdAt'>): RemedyOffer {
  const now = clock.now();
  const value: RemedyOffer = { ...offer, id: `rem-${randomBytes(6).toString('hex')}`, nonce: randomBytes(12).toString('base64url'), nonceIssuedAt: now, createdAt: now };
  store.insert<RemedyOffer>('approvals', remedyOfferKey(value.id), value);
  return value;
}

export function readRemedyOffer(store: Store, offerId: unknown): RemedyOffer | undefined {
  if (typeof offerId !== 'string' || !/^rem-[0-9a-f]{12}$/.test(offerId)) return undefined;
  return store.get<RemedyOffer>('approvals', remedyOfferKey(offerId))?.value;
}

/**
 * Deletes offers made before `before` (every report and `/governance` makes new ones; none is ever used up). A click
 * on a pruned button is answered like any unknown offer: ask again. Returns how many went.
 */
export function pruneRemedyOffers(store: Store, before: number): number {
  let pruned = 0;
  for (const rec of store.list<RemedyOffer>('approvals', { prefix: 'remedy:' })) {
    if (rec.value.createdAt < before && store.delete('approvals', rec.id, rec.version)) pruned += 1;
  }
  return pruned;
}
