import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/clock.js';
import { installationUpdateActivity } from '../helpers/bot.js';
import { ALEX, LEE, allText, startWorkflowHarness, SUPPORT_CHANNEL, type WorkflowHarness } from '../workflows/harness.js';

/**
 * Issue 13 point 6: the governance report — posted in the support channel at once after install, then weekly, with the
 * trend since the channel's previous report, the owners with most findings, personal vs service-principal tokens,
 * workspace token controls and remedy buttons; `/governance` shows it on demand.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness();
  await h.scanAndDeliver();
}, 60_000);
afterAll(async () => h?.close());

type Card = Record<string, unknown>;
const cardsIn = (activities: Array<{ activity?: unknown }>): Card[] =>
  activities.flatMap((a) => ((a.activity as { attachments?: Array<{ content?: Card }> })?.attachments ?? []).map((x) => x.content ?? {}));
const reports = (): Card[] => cardsIn(h.connector.postsIn(SUPPORT_CHANNEL.id)).filter((c) => allText(c).includes('Governance report'));
const actionsOf = (card: Card): Array<{ verb: string; title: string; data: Record<string, unknown> }> => {
  const out: Array<{ verb: string; title: string; data: Record<string, unknown> }> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.type === 'Action.Execute') out.push({ verb: String(o.verb), title: String(o.title), data: o.data as Record<string, unknown> });
      Object.values(o).forEach(walk);
    }
  };
  walk(card);
  return out;
};

async function install(): Promise<number> {
  const activity = installationUpdateActivity(h.connector.serviceUrl, 'add', { kind: 'channel', conversationId: SUPPORT_CHANNEL.id, user: ALEX });
  const res = await fetch(`${h.botUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
  return res.status;
}

describe('the governance report', () => {
  it('is not posted in a configured channel where Keywarden is not installed yet', async () => {
    expect(reports()).toHaveLength(0);
  });

  it('is posted at once when Keywarden is installed in the support channel: findings per estate, owners, controls, remedies', async () => {
    expect(await install()).toBe(200);
    const [first] = reports();
    expect(first, 'the install posts the first report').toBeDefined();
    const text = allText(first);
    expect(text).toContain('the first for this channel');
    expect(text).toMatch(/Databricks: \d+/);
    expect(text).toContain('unused');
    expect(text).toContain('human-owned-pipeline');
    expect(text).toContain('bob.dev@contoso.com');
    expect(text).toMatch(/Databricks tokens owned by people: \d+ · by service principals: \d+/);
    expect(text).toContain('No maximum token lifetime: ws-analytics, ws-prod');
    expect(text).toContain('Anyone may create tokens: ws-dev');
    expect(JSON.stringify(first)).toContain('Chart.VerticalBar.Grouped');

    const buttons = actionsOf(first!);
    expect(buttons.map((b) => b.verb)).toEqual(expect.arrayContaining(['enforceMaxLifetime', 'restrictTokenCreation', 'retireUnused', 'moveToServicePrincipal']));
    // A button carries only an offer id and its nonce: what it acts on is stored server-side.
    for (const b of buttons) expect(Object.keys(b.data).sort()).toEqual(['nonce', 'offerId']);
    const offer = h.store.get<{ remedy: string; subject: string }>('approvals', `remedy:${buttons.find((b) => b.verb === 'restrictTokenCreation')!.data.offerId}`)?.value;
    expect(offer).toMatchObject({ remedy: 'restrict-tokens', subject: 'ws-dev' });
    expect(h.store.listAudit().some((r) => r.action === 'governance.report.posted' && r.details?.via === 'install')).toBe(true);
  });

  it('a rescan within the week posts nothing more', async () => {
    await h.scanAndDeliver();
    expect(reports()).toHaveLength(1);
  });

  it('a week later the next scan posts the report with the trend since the last one', async () => {
    // Someone deletes the unused token meanwhile: one finding fewer.
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    const stale = h.clouds.seeds.databricks.tokens['ws-prod/stale-unused']!;
    ws.revokeToken(stale.tokenId);
    h.clock.advance(7 * DAY_MS + 1);
    await h.scanAndDeliver();
    const all = reports();
    expect(all).toHaveLength(2);
    const text = allText(all[1]);
    expect(text).not.toContain('the first for this channel');
    expect(text).toMatch(/▼ \d+ fewer since the report of/);
    expect(JSON.stringify(all[1])).toContain('Last report');
  });

  it('/governance answers anyone with the report card', async () => {
    const { replies } = await h.command('/governance', LEE);
    const text = allText(replies);
    expect(text).toContain('Governance report');
    expect(text).toContain('Workspace token controls');
    const wrong = await h.command('/governance now please', LEE);
    expect(allText(wrong.replies)).toContain('/governance takes no arguments');
  });
});
