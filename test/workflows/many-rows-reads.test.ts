import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAutoRotationRule } from '../../src/approvals/auto-rotation.js';
import { DAY_MS } from '../../src/clock.js';
import type { JobRecord } from '../../src/domain/job.js';
import type { CredentialRow, ScanRows } from '../../src/store/scan-rows.js';
import type { Collection, Store } from '../../src/store/store.js';
import { ALEX, LEE, MEGAN, allText, startWorkflowHarness, type WorkflowHarness } from './harness.js';

/**
 * Issue 14: /autorotate, /rules, rule cards, /move-to-sp and /expiring's rotation states over an estate of more rows
 * than one page (1,200 more PATs in ws-analytics). Each still answers right, and reads only the rows it needs
 * (counted through the store's public `scanRows.page`) or, for /expiring, only the jobs still at work (not every job
 * record ever, counted through `store.list` / `store.get` on 'jobs').
 */

const ADDED = 1_200;
const FINISHED_JOBS = 300;
let h: WorkflowHarness;

/** What the store handed out while a command ran: rows by kind and scope, the largest page, job records. */
interface Reads {
  rows: CredentialRow[];
  largestPage: number;
  jobRecords: number;
}
let reads: Reads = { rows: [], largestPage: 0, jobRecords: 0 };
let r1CardId: string;

function countReads(store: Store): void {
  const rows = store.scanRows as ScanRows;
  const page = rows.page.bind(rows);
  rows.page = (query, after, limit) => {
    const got = page(query, after, limit);
    // A one-row probe (did the scan see anything at all?) reads no part of the estate in particular.
    if (limit === 1) return got;
    reads.rows.push(...got);
    reads.largestPage = Math.max(reads.largestPage, got.length);
    return got;
  };
  const list = store.list.bind(store);
  const get = store.get.bind(store);
  store.list = <T>(collection: Collection, options?: Parameters<Store['list']>[1]) => {
    const got = list<T>(collection, options);
    if (collection === 'jobs') reads.jobRecords += got.length;
    return got;
  };
  store.get = <T>(collection: Collection, id: string) => {
    const got = get<T>(collection, id);
    if (collection === 'jobs' && got) reads.jobRecords += 1;
    return got;
  };
}

async function measured<T>(fn: () => Promise<T>): Promise<{ result: T; reads: Reads }> {
  reads = { rows: [], largestPage: 0, jobRecords: 0 };
  const result = await fn();
  return { result, reads };
}

const kindsAndScopes = (r: Reads) => [...new Set(r.rows.map((row) => `${row.kind}|${row.scope}`))].sort();
const replyText = (reply: { text?: string; attachments: unknown[] }) => allText(reply.attachments.length ? reply.attachments : reply.text);

beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
  const ws = h.clouds.handles.databricks.workspace('ws-analytics');
  const now = Date.now();
  for (let i = 0; i < ADDED; i++) {
    ws.addToken({ ownerName: 'bob.dev@contoso.com', comment: `bulk-${String(i).padStart(4, '0')}`, createdAt: now - DAY_MS, expiryTime: -1, lastUsedDay: now });
  }
  await h.scanner.runScan('command');
  countReads(h.store);
}, 180_000);
afterAll(async () => h?.close());

describe('auto-rotation rules over many rows', () => {
  it('/autorotate kind + scope reads only that workspace\'s PATs, and its card covers them', async () => {
    const { result, reads: r } = await measured(() => h.command('/autorotate kind:databricks-pat scope:ws-prod 10 12', ALEX));
    const text = replyText(result.replies[0]!);
    r1CardId = result.replies[0]!.activityId!;
    expect(text).toContain('Auto-rotation rule R1 — proposed by Alex Wilber');
    expect(text).toContain('adf-etl');
    expect(text).toMatch(/cannot be rotated/); // bob-jdbc: a person's PAT in ws-prod
    expect(Object.keys(readAutoRotationRule(h.store, 'R1')!.template.approvedFacts!)).not.toHaveLength(0);
    expect(kindsAndScopes(r)).toEqual(['databricks-pat|ws-prod']);
  });

  it('/autorotate of a kind reads only that kind\'s estate', async () => {
    const { result, reads: r } = await measured(() => h.command('/autorotate kind:entra-password 10', ALEX));
    expect(replyText(result.replies[0]!)).toContain('Auto-rotation rule R2 — proposed by Alex Wilber');
    expect(r.rows.length).toBeGreaterThan(0);
    expect(r.rows.filter((row) => row.estate !== 'entra')).toEqual([]);
  });

  it('/autorotate by name finds a token on a later page, reading page by page', async () => {
    const { result, reads: r } = await measured(() => h.command('/autorotate bulk-1111 7', ALEX));
    const text = replyText(result.replies[0]!);
    expect(text).toContain('Auto-rotation rule R3');
    expect(text).toContain('bulk-1111');
    expect(r.rows.length).toBeGreaterThan(ADDED);
    expect(r.largestPage).toBeLessThanOrEqual(500);
  });

  it('approving R1 and /rules read only ws-prod\'s PATs; /rules shows R1\'s next run', async () => {
    const approved = await measured(() => h.click('approveRule', { ruleId: 'R1', nonce: readAutoRotationRule(h.store, 'R1')!.chat!.nonce }, r1CardId, MEGAN));
    expect(allText(approved.result.card)).toContain('Approved by Megan Bowen');
    expect(kindsAndScopes(approved.reads)).toEqual(['databricks-pat|ws-prod']);
    const rules = await measured(() => h.command('/rules', LEE));
    const text = replyText(rules.result.replies[0]!);
    expect(text).toContain('R1 · auto-rotation · active');
    expect(text).toMatch(/"title":"Next run","value":"[^"]*\(adf-etl/);
    expect(kindsAndScopes(rules.reads)).toEqual(['databricks-pat|ws-prod']);
  });
});

describe('/move-to-sp over many rows', () => {
  it('finds a PAT by name on a later page and plans bob-jdbc\'s move, reading only Databricks rows', async () => {
    const bulk = await measured(() => h.command('/move-to-sp bulk-1111', LEE));
    expect(replyText(bulk.result.replies[0]!)).not.toContain('No Databricks PAT named');
    expect(replyText(bulk.result.replies[0]!)).toContain('bulk-1111');
    expect(bulk.reads.rows.length).toBeGreaterThan(ADDED);
    expect(bulk.reads.rows.filter((row) => row.kind !== 'databricks-pat')).toEqual([]);
    const bob = await measured(() => h.command('/move-to-sp bob-jdbc', MEGAN));
    expect(replyText(bob.result.replies[0]!)).toContain('on-behalf-of token for service principal sp-etl');
    expect(bob.reads.rows.filter((row) => row.kind !== 'databricks-pat')).toEqual([]);
  });
});

describe('/expiring with many finished jobs', () => {
  it('shows a credential in its grace window, reading only the jobs still at work', async () => {
    const seeded = h.clouds.seeds.databricks.tokens['ws-dev/dev-ci']!;
    const credentialId = `databricks-pat:ws-dev:${seeded.tokenId}`;
    const alert = await h.freshAlert(credentialId);
    await h.click('rotate', { alertId: alert.id, nonce: alert.nonce }, h.cardActivityId(credentialId), ALEX);
    const rotation = await h.waitForJob((j) => j.subject === credentialId && j.state === 'waiting' && typeof j.facts.verifiedAt === 'number');
    // Past rotations of other credentials, long finished: the history every store keeps.
    for (let i = 0; i < FINISHED_JOBS; i++) {
      h.store.insert<JobRecord>('jobs', `old-${String(i).padStart(4, '0')}`, { ...rotation, id: `old-${i}`, subject: `databricks-pat:ws-old:${i}`, state: 'done' });
    }
    // The job engine's own timer reads the job records too (every pollMs): stopped, so only the answer's reads count.
    await h.workflows.engine.stop();
    const { result, reads: r } = await measured(() => h.command('/expiring 14d', ALEX));
    expect(replyText(result.replies[0]!)).toMatch(/dev-ci[^]*"title":"Expires","value":"rotated — old token revoked at \d{4}-/);
    expect(r.jobRecords).toBeLessThan(10);
  }, 60_000);
});

describe('the job timer and /readyz with many finished jobs', () => {
  it('read only the jobs at work; failed jobs a store kept from before the job pointers are counted after a restart', async () => {
    const template = h.jobs().find((j) => j.state === 'waiting')!;
    // Failed jobs as the previous version left them: job records only, nothing else points at them.
    for (const id of ['failed-a', 'failed-b']) {
      h.store.insert<JobRecord>('jobs', id, { ...template, id, subject: `databricks-pat:ws-old:${id}`, state: 'failed', lease: undefined });
    }
    // …and without the marker this version leaves once every finished job has its pointers.
    for (const id of h.store.listIds('settings', { prefix: 'job-pointers' })) h.store.delete('settings', id);
    await h.restart();
    countReads(h.store);
    // The timer is measured by hand below: stopped, so its own passes do not count.
    await h.workflows.engine.stop();
    const due = await measured(async () => h.workflows.engine.dueJobIds());
    expect(due.result).toEqual([]); // the rotation waits out its grace window
    expect(due.reads.jobRecords).toBeLessThan(10);
    const ready = await measured(async () => (await fetch(`${h.botUrl}/readyz`)).json() as Promise<{ checks: Array<{ name: string; detail?: string }> }>);
    expect(ready.result.checks.find((c) => c.name === 'jobs')?.detail).toBe('1 unfinished job(s), 2 failed and need a person (see /audit)');
    expect(ready.reads.jobRecords).toBeLessThan(10);
  }, 60_000);
});
