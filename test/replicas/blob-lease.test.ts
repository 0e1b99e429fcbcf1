import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { blobLeaseLeadership, type BlobLeaseLeadership } from '../../src/replicas/blob-lease.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';

/** Two lease holders on one blob (azurite, real time, the minimum 15 s lease): one leads; when it dies the other takes over. */

let azurite: Azurite;
const holders: BlobLeaseLeadership[] = [];
beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);
afterAll(async () => {
  for (const h of holders) await h.stop({ release: false });
  await azurite?.stop();
});

function holder(name: string): BlobLeaseLeadership {
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('keywarden');
  const h = blobLeaseLeadership({ blob: container.getBlobClient('leader'), leaseSeconds: 15, tryEveryMs: 250, name, logger: createLogger({ level: 'silent' }) });
  holders.push(h);
  return h;
}

async function leaderWithin(h: BlobLeaseLeadership, ms: number): Promise<number> {
  const started = Date.now();
  while (!h.isLeader()) {
    if (Date.now() - started > ms) throw new Error(`no leadership within ${ms} ms: ${h.describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

describe('blob lease leadership', () => {
  it('one of two holders leads; the other takes over within the lease period when the leader dies, at once after a clean stop', async () => {
    await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('keywarden').createIfNotExists();
    const a = holder('replica-a');
    const b = holder('replica-b');
    const changes: string[] = [];
    a.onChange((l) => changes.push(`a:${l}`));
    b.onChange((l) => changes.push(`b:${l}`));
    await a.start();
    await b.start();
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(a.describe()).toMatch(/^leader \(replica-a/);
    expect(b.describe()).toMatch(/^follower \(replica-b; leader: replica-a\)/);

    // A dies: it stops renewing and never releases. B leads once the lease lapses — within the 15 s period.
    await new Promise((r) => setTimeout(r, 1_000));
    await a.stop({ release: false });
    const takeover = await leaderWithin(b, 17_000);
    expect(takeover).toBeGreaterThan(8_000); // the lease really was held until it lapsed
    expect(b.isLeader()).toBe(true);

    // A clean stop releases the lease: a new holder takes it at its next try, not after the period.
    const c = holder('replica-c');
    await c.start();
    expect(c.isLeader()).toBe(false);
    await b.stop();
    expect(await leaderWithin(c, 3_000)).toBeLessThan(3_000);
    expect(changes).toEqual(['a:true', 'a:false', 'b:true', 'b:false']);
  }, 40_000);
});
