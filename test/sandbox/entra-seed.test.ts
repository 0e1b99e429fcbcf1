import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEntraEmulator } from '../../src/sandbox/entra/index.js';
import { APPROVER_GROUP_ID, seedEntra } from '../../src/sandbox/entra/seed.js';
import { START, startSeededEntra, type EntraFixture } from './entra-fixtures.js';

// The Contoso tenant of docs/sandbox-estate.md, as the other seeds and the sandbox product rely on it.

let f: EntraFixture;
beforeAll(async () => {
  f = await startSeededEntra();
});
afterAll(async () => {
  await f?.entra.close();
});

describe('seedEntra', () => {
  it('creates the six documented apps with their appIds, each with a service principal', () => {
    expect(f.seeded.tenantId).toBe('72f988bf-86f1-41af-91ab-2d7cd011db47');
    expect(Object.entries(f.seeded.apps).map(([name, a]) => [name, a.appId])).toEqual([
      ['etl-ingest', '11111111-1111-4111-8111-000000000001'],
      ['reporting-svc', '11111111-1111-4111-8111-000000000002'],
      ['keywarden-bot', '11111111-1111-4111-8111-000000000003'],
      ['legacy-crm', '11111111-1111-4111-8111-000000000004'],
      ['partner-sftp', '11111111-1111-4111-8111-000000000005'],
      ['hr-sync', '11111111-1111-4111-8111-000000000006'],
    ]);
    for (const a of Object.values(f.seeded.apps)) expect(f.entra.directory.servicePrincipals.get(a.spObjectId)?.appId).toBe(a.appId);
  });

  it('hands out keywarden-bot\'s credentials and the etl-ingest secret for Key Vault, both Entra-shaped', () => {
    expect(f.seeded.keywarden.clientId).toBe(f.seeded.apps['keywarden-bot']!.appId);
    for (const secret of [f.seeded.keywarden.clientSecret, f.seeded.etlSecret.value]) expect(secret).toMatch(/^.{3}8Q~.{34}$/);
    expect(f.seeded.etlSecret).toMatchObject({ appId: f.seeded.apps['etl-ingest']!.appId, expiresAt: START + 14 * 86_400_000 });
    expect(Date.parse(f.seeded.etlSecret.endDateTime)).toBe(f.seeded.etlSecret.expiresAt);
  });

  it('sets up the approver group, the owner relation and keywarden-bot\'s Graph permissions', () => {
    const group = f.entra.directory.groups.get(APPROVER_GROUP_ID)!;
    expect(group.displayName).toBe('Keywarden Approvers');
    expect(group.members).toEqual(['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2']);
    expect(f.entra.directory.users.get('00000000-0000-0000-0000-0000000000a3')?.displayName).toBe('Lee Gu');
    expect(f.entra.directory.applications.get(f.seeded.apps['etl-ingest']!.objectId)!.owners).toEqual([f.seeded.apps['keywarden-bot']!.spObjectId, f.seeded.estateUsers.alice.id]);
    expect(f.entra.directory.servicePrincipals.get(f.seeded.apps['reporting-svc']!.spObjectId)!.owners).toEqual([f.seeded.estateUsers.bob.id]);
    // The Databricks SCIM users exist in Entra under the same UPN.
    expect(f.entra.directory.users.get(f.seeded.estateUsers.bob.id)?.userPrincipalName).toBe('bob.dev@contoso.com');
    expect(f.entra.directory.permissionsOf(f.seeded.keywarden.clientId).sort()).toEqual(['Application.Read.All', 'Application.ReadWrite.OwnedBy', 'AuditLog.Read.All', 'GroupMember.Read.All', 'User.ReadBasic.All']);
  });

  it('is deterministic: ids and keyIds are the same in every run (secret values are not)', async () => {
    const other = await startEntraEmulator({ clock: f.clock });
    try {
      const again = seedEntra(other, { clock: f.clock });
      expect(again.apps).toEqual(f.seeded.apps);
      expect(again.etlSecret.keyId).toBe(f.seeded.etlSecret.keyId);
      expect(again.etlSecret.value).not.toBe(f.seeded.etlSecret.value);
    } finally {
      await other.close();
    }
  });
});
