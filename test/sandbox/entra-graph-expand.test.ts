import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSeededEntra, type EntraFixture } from './entra-fixtures.js';

// `$expand=owners` on the apps and SPs listings, as Graph documents it for directory objects: at most 20 expanded
// owners with no link to the rest, and (reported by Graph's users) at most 100 items a page.

let f: EntraFixture;
let token: string;

const get = async (path: string) => {
  const res = await fetch(`${f.entra.graphUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped wire JSON under test
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

beforeAll(async () => {
  f = await startSeededEntra({ graphPageSize: 999 });
  token = (await f.keywardenCredential().getToken('https://graph.microsoft.com/.default')).token;
  for (let i = 0; i < 120; i++) f.entra.directory.addApplication({ displayName: `expand-app-${i}` });
  const crowded = f.seeded.apps['hr-sync']!;
  for (let i = 0; i < 25; i++) {
    const id = `0be0b0e0-0000-4000-8000-${String(i).padStart(12, '0')}`;
    f.entra.directory.addUser({ id, displayName: `Owner ${i}`, userPrincipalName: `owner${i}@contoso.com`, accountEnabled: true });
    f.entra.directory.addOwner({ kind: 'application', id: crowded.objectId }, id);
  }
});
afterAll(async () => {
  await f?.entra.close();
});

describe('Graph emulator: $expand=owners', () => {
  it('gives each app its owners inline, at most 20 and no link to more, in pages of at most 100', async () => {
    const first = await get('/v1.0/applications?$select=id,appId,displayName&$expand=owners&$top=999');
    expect(first.status).toBe(200);
    expect(first.body.value).toHaveLength(100);
    expect(decodeURIComponent(first.body['@odata.nextLink'])).toContain('$expand=owners');
    const etl = first.body.value.find((a: { id: string }) => a.id === f.seeded.apps['etl-ingest']!.objectId);
    expect(Object.keys(etl)).toEqual(['id', 'appId', 'displayName', 'owners']);
    expect(etl.owners.map((o: { displayName: string }) => o.displayName)).toEqual(['keywarden-bot', 'Alice Admin']);
    const hr = first.body.value.find((a: { id: string }) => a.id === f.seeded.apps['hr-sync']!.objectId);
    expect(hr.owners).toHaveLength(20);
    expect(hr['owners@odata.nextLink']).toBeUndefined();
    // Without it, pages hold what $top asks for.
    expect((await get('/v1.0/applications?$select=id&$top=999')).body.value.length).toBeGreaterThan(100);
  });

  it('refuses a relationship it does not expand, naming it', async () => {
    const res = await get('/v1.0/servicePrincipals?$expand=memberOf');
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("'memberOf'");
  });
});
