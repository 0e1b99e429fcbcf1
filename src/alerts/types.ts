import type { Credential, CredentialKind, Finding } from '../domain/credential.js';
import type { ExpiryThreshold } from '../domain/expiry.js';

/** What the alerts keep in the store: one AlertRecord per credential (collection `alerts`), plus claims and an outbox. */

export type AlertState = 'open' | 'acknowledged' | 'snoozed' | 'resolved';

/** A person as the card shows them. */
export interface AlertActor {
  name: string;
  aadObjectId?: string;
}

/** Where the alert's card lives; enough to update it in place or reply in its thread. */
export interface AlertMessageRef {
  conversationId: string;
  serviceUrl: string;
  tenantId: string;
  /** Undefined when Teams returned no id: the next update is posted as a new message instead. */
  activityId?: string;
}

/** 'merged': a Key Vault secret whose card folded into the card of the credential it holds. */
export type ResolutionKind = 'rotated' | 'extended' | 'removed' | 'revoked' | 'disabled' | 'merged' | 'rolled-back';

export interface AlertResolution {
  kind: ResolutionKind;
  /** One sentence shown on the card, e.g. "rotated outside Keywarden: kv-prod/adb-prod-etl-token now holds token 42". */
  text: string;
  at: number;
  by?: AlertActor;
  /** A rotation in its grace window: when Keywarden revokes the old credential. */
  rotation?: { revokeAt: number; noun: 'token' | 'client secret' };
}

export interface AlertSnooze {
  until: number;
  reason: string;
  by: AlertActor;
  at: number;
  /** The threshold when it was snoozed: only a worse one inside the urgent band wakes it early. */
  threshold: ExpiryThreshold | null;
}

export interface AlertHistoryEntry {
  at: number;
  /** e.g. "threshold", "posted", "updated", "acknowledged", "snoozed", "woken", "resolved", "delivery-failed". */
  event: string;
  text: string;
  actor?: AlertActor;
}

export interface AlertRecord {
  /** Opaque random id; the only thing a card carries besides the nonce. */
  id: string;
  credentialId: string;
  /** The credential as last scanned (never a secret value). */
  credential: Credential;
  /** Findings about this credential from the last scan. */
  findings: Finding[];
  /** Tightest threshold crossed (30/14/7/1/'expired'); null when only a finding raised the alert. */
  threshold: ExpiryThreshold | null;
  /** True once the alert deserves its own card (≤ cardAtDays or a finding ≥ cardSeverity); else digest only. */
  card: boolean;
  state: AlertState;
  acknowledged?: { by: AlertActor; at: number; reason?: string };
  snooze?: AlertSnooze;
  resolution?: AlertResolution;
  /** Set when a rotation of this credential was rolled back and the alert reopened: what happened, shown on the card. */
  rolledBack?: { text: string; at: number; by?: AlertActor };
  /** A line workflows set while they act ("Rotation started by Alex at …"); shown on the card. `jobId` while the job runs. */
  progress?: { text: string; at: number; jobId?: string };
  /** Card data nonce; a click with another nonce is answered "this card is out of date". */
  nonce: string;
  nonceIssuedAt: number;
  /** Support-channel key (routing.ts); undefined while no channel is configured or installed. */
  channel?: string;
  message?: AlertMessageRef;
  /** Bumped on every change the card shows; `deliveredRevision` says what Teams has. */
  revision: number;
  deliveredRevision: number;
  history: AlertHistoryEntry[];
  createdAt: number;
  updatedAt: number;
}

/** Pointer record `alert-claims/<credentialId>`: the credential's current alert (null after resolution). */
export interface AlertPointer {
  alertId: string | null;
  /**
   * Stamp of what the last scan told this alert (credential, findings, threshold, route): a later scan with the same
   * stamp has nothing to change, so it skips the alert without reading it (scan-alerts.ts).
   */
  seen?: string;
}

/** Claim record `alert-claims/<credentialId>#<threshold|finding:code|owner>#<alertId>`: who claimed it, when. */
export interface AlertClaim {
  alertId: string;
  at: number;
  scanId?: string;
}

/** One digest row. */
export interface DigestItem {
  name: string;
  kind: CredentialKind;
  where: string;
  owner: string;
  expires: string;
  urgency: string;
  /** Known consumers (the digest ranks by blast radius × urgency and shows the count). */
  consumers?: number;
}

/** What a digest card shows, frozen at scan time so a retried send shows the same numbers. */
export interface DigestData {
  scanId: string;
  at: number;
  channel: string;
  total: number;
  newCount: number;
  byUrgency: Array<{ urgency: string; count: number }>;
  byKind: Array<{ kind: CredentialKind; count: number }>;
  items: DigestItem[];
  /** Old credentials waiting out a rotation's grace window: listed as rotated, not counted as needing attention. */
  rotated?: DigestItem[];
}

export type OutboxKind = 'alert-card' | 'digest' | 'owner-notice' | 'details';
export type OutboxStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'superseded';

/** A send that must happen; collection `outbox`. Survives restarts; drained in priority order (lower first). */
export interface OutboxEntry {
  kind: OutboxKind;
  status: OutboxStatus;
  /** Lower goes first: digests, resolutions, then by days left (expired first). */
  priority: number;
  /** Not before this time (backoff after a transient failure). */
  dueAt: number;
  attempts: number;
  createdAt: number;
  /** While `sending`: another replica may take it over after this time. */
  leaseUntil?: number;
  channel?: string;
  alertId?: string;
  digest?: DigestData;
  /** Shrunk after a too-large answer. */
  maxRows?: number;
  user?: AlertActor & { aadObjectId: string };
  lastError?: { code: string; message: string; at: number };
  activityId?: string;
  sentAt?: number;
}

/** Health of a delivery target; collection `deliveries`, id `channel:<key>` or `owner:<aadObjectId>`. */
export interface DeliveryHealth {
  target: string;
  status: 'ok' | 'dead' | 'unreachable';
  code?: string;
  message?: string;
  since?: number;
  /** Conversation the target was using when it failed (to match a reinstall). */
  conversationId?: string;
}
