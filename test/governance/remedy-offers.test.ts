import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemedyOffer } from '../../src/approvals/remedy-offers.js';
import { DAY_MS } from '../../src/clock.js';
import { ALEX, LEE, allText, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { cardOf, findAction } from './remedy-helpers.js';

/**
 * Every report and every `/governance` stores new remedy offers (the buttons' server-side half), and none is ever used
 * up: offers older than the last two reports (at least 30 days) go after a scan, and their buttons answer "ask again".
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

const offers = () => h.store.list<RemedyOffer>('approvals', { prefix: 'remedy:' }).map((r) => r.value);

describe('remedy offers', () => {
  it('older than 30 days are removed by the next scan; their button asks to run the command again, a fresh one works', async () => {
    const old = (await h.command('/governance', LEE)).replies[0]!;
    const oldButton = findAction(cardOf(old), 'restrictTokenCreation')!;
    const made = offers().length;
    expect(made).toBeGreaterThan(0);

    h.clock.advance(20 * DAY_MS);
    await h.scanAndDeliver();
    expect(offers()).toHaveLength(made);

    h.clock.advance(11 * DAY_MS);
    await h.scanAndDeliver();
    // The scheduled report a month on made its own offers; the first ones are gone.
    expect(offers().map((o) => o.id)).not.toContain(oldButton.data.offerId);

    const stale = await h.click('restrictTokenCreation', oldButton.data, old.activityId!, ALEX);
    expect(stale.text).toMatch(/names nothing I know\. Ask again/);

    const fresh = (await h.command('/governance', LEE)).replies[0]!;
    const click = await h.click('restrictTokenCreation', findAction(cardOf(fresh), 'restrictTokenCreation')!.data, fresh.activityId!, ALEX);
    expect(allText(click.card ?? click.text)).toContain('ws-dev');
  });
});
