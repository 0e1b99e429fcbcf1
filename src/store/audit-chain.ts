import { createHash, createHmac } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';
import type { AuditRecord } from './store.js';

/**
 * The audit hash chain. Each record's hash covers the previous hash and the record's canonical JSON.
 * Keyed records (written while audit.keySecret was configured) use HMAC-SHA256 with a key kept in Key Vault,
 * so someone who can edit the database cannot recompute them; records written before the key existed stay
 * plain SHA-256 ("legacy, unkeyed") and are verified as such — they are not re-keyed, so their original
 * hashes remain the evidence. Once one record is keyed every later one must be.
 * Anchors (the chain head copied to Key Vault at intervals) catch what a chain alone cannot: truncation.
 */

/** prev_hash of the first audit entry. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** A chain head copied outside the database (a Key Vault secret version). */
export interface AuditAnchor {
  seq: number;
  hash: string;
  /** Epoch ms when it was written. */
  at: number;
  /** Where it came from, for messages (e.g. the secret version id). */
  source?: string;
}

/** sha256 (or HMAC-SHA256 with key) over the previous hash and the canonical JSON of the entry (everything but the hashes). */
export function auditHash(prevHash: string, entry: Omit<AuditRecord, 'prevHash' | 'hash'>, key?: Buffer): string {
  const body = canonicalJson({
    seq: entry.seq,
    at: entry.at,
    action: entry.action,
    actor: entry.actor,
    subject: entry.subject,
    result: entry.result,
    details: entry.details,
  });
  const digest = key ? createHmac('sha256', key) : createHash('sha256');
  return digest.update(prevHash).update(body).digest('hex');
}

export interface AuditChainReport {
  ok: boolean;
  /** Records read. */
  count: number;
  /** First bad seq and why, when not ok. */
  brokenAt?: number;
  reason?: string;
  /** seq of the first keyed record, if any. */
  keyedFrom?: number;
  /** The last record read (what `after` takes to continue from it). */
  head?: VerifiedAuditHead;
  /** Keyed records whose HMAC was recomputed (0 when no key was given). */
  keyedChecked: number;
  /** Keyed records only checked for linkage, because no key was given. */
  keyedUnchecked: number;
  anchorsChecked: number;
  latestAnchor?: AuditAnchor;
}

export interface AuditChainOptions {
  key?: Buffer;
  anchors?: readonly AuditAnchor[];
  /** Continues a walk that already verified the chain up to this record: only later records are passed in. */
  after?: VerifiedAuditHead;
}

/** Where a verified walk ended: its last record, and the first keyed one (every later record must be keyed). */
export interface VerifiedAuditHead {
  seq: number;
  hash: string;
  keyedFrom?: number;
}

/** Walks the chain oldest first; stops judging at the first break but keeps counting. */
export function checkAuditChain(records: Iterable<AuditRecord>, options: AuditChainOptions = {}): AuditChainReport {
  const after = options.after;
  // `count` is the chain's length so far: a continued walk starts at the record it continues from.
  const report: AuditChainReport = { ok: true, count: after?.seq ?? 0, keyedChecked: 0, keyedUnchecked: 0, anchorsChecked: 0, ...(after?.keyedFrom !== undefined ? { keyedFrom: after.keyedFrom } : {}) };
  const anchors = [...(options.anchors ?? [])].sort((a, b) => a.seq - b.seq || a.at - b.at);
  const anchorsAt = new Map<number, AuditAnchor[]>();
  for (const a of anchors) anchorsAt.set(a.seq, [...(anchorsAt.get(a.seq) ?? []), a]);
  const fail = (seq: number, reason: string) => {
    if (!report.ok) return;
    report.ok = false;
    report.brokenAt = seq;
    report.reason = reason;
  };
  let prevHash = after?.hash ?? AUDIT_GENESIS_HASH;
  for (const record of records) {
    report.count += 1;
    const seq = record.seq;
    if (report.ok) {
      if (seq !== report.count) fail(seq, `#${report.count} is missing before #${seq}: a record was deleted or reordered`);
      else if (record.prevHash !== prevHash) fail(seq, `#${seq} does not link to the previous record`);
      else if (record.keyed) {
        report.keyedFrom ??= seq;
        if (options.key) {
          report.keyedChecked += 1;
          if (safeHash(prevHash, record, options.key) !== record.hash) fail(seq, `#${seq} was changed after it was written (its keyed hash does not match)`);
        } else {
          report.keyedUnchecked += 1;
        }
      } else if (report.keyedFrom !== undefined) {
        fail(seq, `#${seq} is unkeyed after keyed records from #${report.keyedFrom}: forged, or audit.keySecret was removed`);
      } else if (safeHash(prevHash, record) !== record.hash) {
        fail(seq, `#${seq} was changed after it was written`);
      }
      for (const anchor of anchorsAt.get(seq) ?? []) {
        report.anchorsChecked += 1;
        if (anchor.hash !== record.hash) fail(seq, `#${seq} differs from the anchor written ${iso(anchor.at)}: the record or an earlier one was changed and the hashes recomputed`);
      }
    }
    prevHash = record.hash;
  }
  if (report.count > 0) report.head = { seq: report.count, hash: prevHash, ...(report.keyedFrom !== undefined ? { keyedFrom: report.keyedFrom } : {}) };
  const latest = anchors[anchors.length - 1];
  if (latest) {
    report.latestAnchor = latest;
    if (report.ok && latest.seq > report.count) {
      fail(report.count + 1, `the anchor written ${iso(latest.at)} says #${latest.seq} existed, but the log ends at #${report.count}: records were deleted from the end`);
    }
  }
  return report;
}

function safeHash(prevHash: string, record: AuditRecord, key?: Buffer): string | undefined {
  try {
    return auditHash(prevHash, record, key);
  } catch {
    return undefined; // unreadable JSON in an edited row
  }
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'at an unknown time';
}
