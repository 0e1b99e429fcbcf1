import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { allText, LEE, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cardOf } from './remedy-helpers.js';

/**
 * Issue 14: /findings, /governance and /revoke read the stored scan page by page instead of loading the estate. Over an
 * estate of more rows than one page (1,200 more PATs in one workspace), their answers still count every row and find
 * a token by name on any page.
 */

const ADDED = 1_200;
let h: WorkflowHarness;
let before: { findings: string; governance: string };

const answer = async (text: string) => allText((await h.command(text, LEE)).replies);
const number = (text: string, pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);

beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanner.runScan('command');
  before = { findings: await answer('/findings'), governance: await answer('/governance') };
  // Never expiring (one high finding each), created yesterday and used today (no other finding), owned by a person.
  const ws = h.clouds.handles.databricks.workspace('ws-analytics');
  const now = Date.now();
  for (let i = 0; i < ADDED; i++) {
    ws.addToken({ ownerName: 'bob.dev@contoso.com', comment: `bulk-${String(i).padStart(4, '0')}`, createdAt: now - DAY_MS, expiryTime: -1, lastUsedDay: now });
  }
  await h.scanner.runScan('command');
}, 180_000);
afterAll(async () => h?.close());

describe('an estate of many pages', () => {
  it('/findings counts every row: the added tokens are in the total and under High', async () => {
    const text = await answer('/findings');
    const total = /(\d+) findings? besides expiry/;
    const high = /High \((\d+)\)/;
    expect(number(text, total)).toBe(number(before.findings, total) + ADDED);
    expect(number(text, high)).toBe(number(before.findings, high) + ADDED);
    // Still one card of at most 30 findings: the rest is counted, not shown.
    expect(text).toMatch(/\d+ more not shown/);
  });

  it('/governance counts every PAT and every finding', async () => {
    const text = await answer('/governance');
    const people = /Databricks tokens owned by people: (\d+)/;
    expect(number(text, people)).toBe(number(before.governance, people) + ADDED);
    expect(text).toContain('bob.dev@contoso.com');
    expect(text).toMatch(/no-expiry ×\d{4}/);
  });

  it('/revoke finds a token by name on a later page', async () => {
    const { replies } = await h.command('/revoke bulk-1111', LEE);
    expect(replies).toHaveLength(1);
    expect(allText(cardOf(replies[0]!))).toContain('bulk-1111');
  });
});
