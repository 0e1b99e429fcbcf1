import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { BlobClient, BlobLeaseClient } from '@azure/storage-blob';
import type { Logger } from '../logging/logger.js';
import type { Leadership, ReplicaRole } from './leadership.js';

/**
 * Leadership by a blob lease: the replica holding the lease on one blob is the leader. It renews at a third of the
 * period and steps down itself before the lease could have lapsed when renewals fail, so two replicas never both
 * believe they lead; a follower tries to acquire every few seconds, so leadership passes within the lease period (plus
 * one try) after the leader dies, and at once after a clean stop (the lease is released).
 * Timers here are real time, not the injected Clock: the lease expires in the storage service's time.
 */

export interface BlobLeaseOptions {
  blob: BlobClient;
  /** 15–60 s (the service's limits). */
  leaseSeconds: number;
  logger: Logger;
  /** How often a follower tries to take the lease (default min(2 s, period/3)). */
  tryEveryMs?: number;
  /** Shown to the other replicas (blob metadata) and in /readyz; default host + pid. */
  name?: string;
}

export interface BlobLeaseLeadership extends Leadership {
  /** Ensures the blob exists and makes the first attempt, so modules start knowing their role. */
  start(): Promise<void>;
  /** Stops trying and releases the lease when held (a follower takes over at its next try); `release: false` walks away like a crash. */
  stop(options?: { release?: boolean }): Promise<void>;
}

const status = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

export function blobLeaseLeadership(options: BlobLeaseOptions): BlobLeaseLeadership {
  const { blob, logger } = options;
  const log = logger.child({ component: 'leadership' });
  const periodMs = options.leaseSeconds * 1000;
  const tryEveryMs = options.tryEveryMs ?? Math.min(2_000, periodMs / 3);
  const name = options.name ?? `${hostname()} pid ${process.pid}`;
  const lease: BlobLeaseClient = blob.getBlockBlobClient().getBlobLeaseClient(randomUUID());
  const listeners = new Set<(leader: boolean) => void>();
  let leader = false;
  let lastRenewedAt = 0;
  let otherLeader: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let abort = new AbortController();

  const become = (next: boolean, why: string): void => {
    if (leader === next) return;
    leader = next;
    log.info({ replica: name, role: next ? 'leader' : 'follower', why }, next ? 'this replica is now the leader' : 'this replica is now a follower');
    for (const l of listeners) {
      try {
        l(next);
      } catch (err) {
        log.error({ err }, 'a leadership listener failed');
      }
    }
  };

  const ensureBlob = async (): Promise<void> => {
    await blob.getBlockBlobClient().upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal: abort.signal }).catch((err: unknown) => {
      // 409 exists; 412 exists and is leased by the leader.
      if (status(err) !== 409 && status(err) !== 412) throw err;
    });
  };

  const attempt = async (): Promise<void> => {
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(Math.max(1_000, periodMs / 3))]);
    if (leader) {
      try {
        await lease.renewLease({ abortSignal: signal });
        lastRenewedAt = Date.now();
      } catch (err) {
        if (status(err) === 409 || status(err) === 412) return become(false, `the lease was lost (${(err as Error).message.split('\n')[0]})`);
        // Cannot reach storage: keep leading only while the lease surely has not lapsed (2 s margin for clock skew).
        if (Date.now() - lastRenewedAt > periodMs - 2_000) become(false, 'could not renew the lease before it lapsed');
        else log.warn({ err }, 'could not renew the leader lease; trying again');
      }
      return;
    }
    try {
      await lease.acquireLease(options.leaseSeconds, { abortSignal: signal });
      lastRenewedAt = Date.now();
      otherLeader = undefined;
      await blob.setMetadata({ leader: encodeURIComponent(name), since: String(lastRenewedAt) }, { conditions: { leaseId: lease.leaseId }, abortSignal: signal })
        .catch((err: unknown) => log.warn({ err }, 'could not label the leader blob'));
      become(true, 'acquired the lease');
    } catch (err) {
      if (status(err) !== 409) {
        log.warn({ err }, 'could not try for the leader lease; trying again');
        return;
      }
      const props = await blob.getProperties({ abortSignal: signal }).catch(() => undefined);
      const label = props?.metadata?.leader;
      otherLeader = label ? decodeURIComponent(label) : undefined;
    }
  };

  const loop = (): void => {
    if (stopped) return;
    void attempt().finally(() => {
      if (stopped) return;
      timer = setTimeout(loop, leader ? periodMs / 3 : tryEveryMs);
      timer.unref();
    });
  };

  const role = (): ReplicaRole => (leader ? 'leader' : 'follower');
  return {
    get role() {
      return role();
    },
    isLeader: () => leader,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    describe() {
      if (stopped) return 'stopped';
      if (leader) return `leader (${name}; lease renewed ${Math.round((Date.now() - lastRenewedAt) / 1000)} s ago, period ${options.leaseSeconds} s)`;
      return `follower (${name}; leader: ${otherLeader ?? 'unknown'}) — serves clicks and commands; the leader runs schedules and resumes jobs`;
    },
    async start() {
      stopped = false;
      abort = new AbortController();
      await ensureBlob();
      await attempt();
      timer = setTimeout(loop, leader ? periodMs / 3 : tryEveryMs);
      timer.unref();
    },
    async stop(stopOptions = {}) {
      stopped = true;
      if (timer) clearTimeout(timer);
      abort.abort(new Error('Keywarden is stopping'));
      if (!leader) return;
      become(false, 'stopping');
      if (stopOptions.release === false) return;
      await lease.releaseLease({ abortSignal: AbortSignal.timeout(5_000) }).catch((err: unknown) => log.warn({ err }, 'could not release the leader lease; it lapses by itself'));
    },
  };
}
