import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import { createLogger } from '../../src/logging/logger.js';
import { startSandboxClouds, type SandboxClouds } from '../../src/sandbox/estate.js';
import { ESTATE_USERS, PLAYGROUND_USERS } from '../../src/sandbox/entra/seed.js';
import { createScanner, type Scanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { cardIn, cardText, isDigest, START, startAlertsHarness, type AlertsHarness } from './harness.js';

/**
 * Owners over the protocols: Graph lists each app's and SP's owners (paged), Databricks SCIM names a PAT's owner,
 * Graph /users turns that name into an Entra object id; the card @mentions them and they get a personal notice.
 */

let clouds: SandboxClouds;
let h: AlertsHarness;
let scanner: Scanner;
const BOB = ESTATE_USERS.bob;
const LEE = PLAYGROUND_USERS.lee;

beforeAll(async () => {
  const clock = new AdjustableClock({ frozenAt: START });
  clouds = await startSandboxClouds({ clock });
  const entra = clouds.handles.entra;
  const reporting = clouds.seeds.entra.apps['reporting-svc']!;
  // A client secret set on reporting-svc's service principal (not its app registration), due in 5 days.
  entra.directory.addPassword({ kind: 'servicePrincipal', id: reporting.spObjectId }, {
    displayName: 'reporting-svc-sp-soon', endDateTime: clock.now() + 5 * DAY_MS, addedAt: Number.NEGATIVE_INFINITY,
  });
  // One item per Graph page: every listing and owners list is read across pages.
  entra.graphPageSize = 1;
  // Bob's own ad-hoc PAT in ws-prod, due in 3 days: inside the @mention band.
  clouds.handles.databricks.workspace('ws-prod').addToken({ ownerName: BOB.userPrincipalName, comment: 'bob-adhoc', expiryTime: clock.now() + 3 * DAY_MS });
  h = await startAlertsHarness({ clock, config: { ...clouds.config }, alerts: { ownerNotices: true, digest: false } });
  const { sources } = createInventorySources(h.config, { clock, retry: { maxRetries: 1, baseDelayMs: 5 } });
  scanner = createScanner({ sources, config: h.config, store: h.store, clock, logger: createLogger({ level: 'silent' }) });
  scanner.onScan(async (result) => { await h.alerts.onScan(result); });
  const result = await scanner.runScan('command');
  expect(result.errors).toEqual([]);
  await h.drainAll(10 * 60_000);
}, 60_000);

afterAll(async () => {
  await scanner?.shutdown();
  await h?.close();
  await clouds?.close();
});

const cardFor = (needle: string) => h.channelActivities().filter((a) => !isDigest(a)).find((a) => cardText(a).includes(needle));
const ownerFact = (needle: string): string => {
  const facts = JSON.stringify(cardIn(cardFor(needle)!)!.body);
  return /"title":"Owner","value":"([^"]*)"/.exec(facts)?.[1] ?? '';
};

describe('Entra owners from Graph', () => {
  it('an app secret card names its owners, read with the apps listing ($expand=owners), people first, not the app', () => {
    const requests = clouds.handles.entra.graph.requests;
    expect(requests.filter((r) => r.path === '/v1.0/applications').every((r) => decodeURIComponent(r.query).includes('$expand=owners'))).toBe(true);
    expect(requests.some((r) => /\/applications\/[^/]+\/owners/.test(r.path))).toBe(false);
    expect(ownerFact('etl-ingest / etl-ingest-2026')).toBe('Alice Admin (user), keywarden-bot (service principal)');
  });

  it('a client secret on a service principal is labelled an SP secret and names the SP\'s owner', () => {
    const card = cardFor('reporting-svc-sp-soon')!;
    expect(cardText(card)).toContain('Entra SP client secret reporting-svc / reporting-svc-sp-soon');
    expect(cardText(card)).toContain('service principal reporting-svc');
    expect(cardText(card)).not.toContain('Entra client secret reporting-svc');
    expect(ownerFact('reporting-svc-sp-soon')).toBe('Bob Dev (user)');
    expect(clouds.handles.entra.graph.requests.some((r) => /\/servicePrincipals\/[^/]+\/owners/.test(r.path))).toBe(true);
  });

  it('an app with no owner says so instead of naming the app', () => {
    expect(ownerFact('partner-sftp')).toBe('no owner in Entra — add one to the app registration');
  });
});

describe('owner @mentions and notices reach people', () => {
  it('a user-owned PAT: SCIM userName → Graph /users → the owner is @mentioned by Entra object id and messaged personally', () => {
    const lookups = clouds.handles.entra.graph.requests.filter((r) => r.path === '/v1.0/users');
    expect(lookups.length).toBeGreaterThan(0);
    expect(decodeURIComponent(lookups[0]!.query.replace(/\+/g, ' '))).toContain("userPrincipalName in ('bob.dev@contoso.com'");
    const card = cardFor('Databricks PAT bob-adhoc')!;
    expect(card.mentions).toContainEqual(expect.objectContaining({ id: BOB.id, name: 'bob.dev@contoso.com' }));
    expect(JSON.stringify(cardIn(card)!.msteams)).toContain(BOB.id);
    // The personal chat is opened (POST /v3/conversations) with members[0].id = the owner's Entra object id.
    expect(h.connector.server.requests.some((r) => r.method === 'POST' && r.path === '/v3/conversations' && r.status === 201)).toBe(true);
    const notice = h.connector.activities.find((a) => a.conversationId === `a:personal-${BOB.id}`);
    expect(notice?.text).toContain('Your Databricks PAT "bob-adhoc"');
  });

  it('an Entra credential: its human owner from Graph is @mentioned and messaged', () => {
    const card = cardFor('hr-sync / hr-sync-secret')!;
    expect(card.mentions).toContainEqual(expect.objectContaining({ id: LEE.id, name: LEE.displayName }));
    const notice = h.connector.activities.find((a) => a.conversationId === `a:personal-${LEE.id}`);
    expect(notice?.text).toContain('Your Entra client secret "hr-sync / hr-sync-secret"');
  });

  it('a deactivated owner is neither mentioned nor messaged', () => {
    expect(h.connector.activities.some((a) => a.conversationId === `a:personal-${ESTATE_USERS.carol.id}`)).toBe(false);
    expect(h.channelActivities().some((a) => a.mentions.some((m) => m.id === ESTATE_USERS.carol.id))).toBe(false);
  });

  it('without User.ReadBasic.All the scan still succeeds; the PAT owner stays unresolved with the reason noted', async () => {
    const entra = clouds.handles.entra;
    entra.directory.withdraw(clouds.seeds.entra.keywarden.clientId, 'User.ReadBasic.All');
    try {
      const result = await scanner.runScan('command');
      expect(result.errors).toEqual([]);
      const pat = result.credentials.find((c) => c.kind === 'databricks-pat' && c.name === 'bob-adhoc')!;
      expect(pat.owner?.entraObjectId).toBeUndefined();
      expect(String(pat.attributes.ownerLookupError)).toMatch(/could not resolve the owner in Entra: .*Authorization_RequestDenied/);
      // Graph still names a user owner by object id (type + id only), so Entra owners stay reachable.
      const hr = result.credentials.find((c) => c.name === 'hr-sync / hr-sync-secret')!;
      expect(hr.owner).toMatchObject({ kind: 'user', entraObjectId: LEE.id, name: `user ${LEE.id}` });
    } finally {
      entra.directory.grant(clouds.seeds.entra.keywarden.clientId, 'User.ReadBasic.All');
    }
  });
});
