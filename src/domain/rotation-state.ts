import type { JobRecord } from './job.js';
import { formatUtc } from './expiry.js';

/**
 * What Keywarden's own jobs say about a credential right now, read from the job records: an old credential waiting
 * out its rotation's grace window (Keywarden revokes it itself), or one a rollback is moving back to. Such a
 * credential is being handled: it is shown with this state and raises nothing new. Pure: job records in.
 */

export interface CredentialInRotation {
  state: 'grace' | 'rolling-back';
  /** The rotation job (for 'rolling-back': the rotation being rolled back). */
  rotationJobId: string;
  /** The alert the rotation was started from, if any. */
  alertId?: string;
  /** When the old credential is revoked (end of the grace window); absent while rolling back. */
  revokeAt?: number;
  /** "token" or "client secret". */
  noun: 'token' | 'client secret';
}

const ACTIVE_ROLLBACK: readonly JobRecord['state'][] = ['queued', 'running', 'waiting', 'compensating'];

/** Credential id → its rotation state, for credentials in a grace window or being rolled back. */
export function credentialsInRotation(jobs: Iterable<JobRecord>): Map<string, CredentialInRotation> {
  const out = new Map<string, CredentialInRotation>();
  for (const job of jobs) {
    const rotation = job.kind === 'rotate-pat' || job.kind === 'rotate-entra';
    const noun = job.kind === 'rotate-entra' || job.plan.facts.rotationKind === 'rotate-entra' ? 'client secret' : 'token';
    const base = job.alertId ? { alertId: job.alertId } : {};
    if (rotation && job.state === 'waiting' && typeof job.facts.verifiedAt === 'number' && typeof job.facts.graceUntil === 'number') {
      out.set(job.subject, { ...base, state: 'grace', rotationJobId: job.id, revokeAt: job.facts.graceUntil, noun });
    } else if (job.kind === 'rollback' && ACTIVE_ROLLBACK.includes(job.state)) {
      const rotationJobId = typeof job.plan.facts.rotationJobId === 'string' ? job.plan.facts.rotationJobId : job.id;
      out.set(job.subject, { ...base, state: 'rolling-back', rotationJobId, noun });
    }
  }
  return out;
}

/** "rotated — old token revoked at 2026-04-09 09:00 UTC" (the words every view uses). */
export function rotationText(r: Pick<CredentialInRotation, 'state' | 'revokeAt' | 'noun'>): string {
  if (r.state === 'rolling-back') return `rotation being rolled back — the old ${r.noun} stays valid`;
  return `rotated — old ${r.noun} revoked at ${r.revokeAt === undefined ? 'the end of the grace window' : formatUtc(r.revokeAt)}`;
}
