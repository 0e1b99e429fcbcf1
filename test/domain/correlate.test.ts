import { describe, expect, it } from 'vitest';
import { correlate, type MappingConfig } from '../../src/domain/correlate.js';
import type { Credential, EstateInventory } from '../../src/domain/credential.js';
import { cred, days } from './fixtures.js';

const APP = '11111111-1111-4111-8111-000000000001';

function estate(): EstateInventory[] {
  const prod: EstateInventory = {
    estate: 'databricks', scope: 'ws-prod', host: 'https://adb-1.example', facts: {},
    credentials: [
      cred('databricks-pat', 'ws-prod', '1001', { name: 'adf-etl', expiresAt: days(7), attributes: { comment: 'adf-etl' } }),
      cred('databricks-pat', 'ws-prod', '1002', { name: 'bob-jdbc', expiresAt: days(14), owner: { name: 'bob.dev@contoso.com', kind: 'user', active: true }, attributes: { comment: 'bob-jdbc' } }),
    ],
  };
  const entra: EstateInventory = {
    estate: 'entra', scope: 'contoso', facts: {},
    credentials: [cred('entra-password', 'contoso', 'key-1', { name: 'etl-ingest / etl-ingest-2026', expiresAt: days(14), attributes: { appId: APP } })],
  };
  const kv: EstateInventory = {
    estate: 'keyvault', scope: 'kv-prod', host: 'https://kv-prod.vault.example:8443/', facts: {},
    credentials: [
      cred('keyvault-secret', 'kv-prod', 'adb-prod-etl-token', {
        expiresAt: days(7),
        attributes: { 'tag:managed-by': 'keywarden', 'tag:credential-kind': 'databricks-pat', 'tag:credential-id': '1001', 'tag:workspace': 'ws-prod' },
      }),
      cred('keyvault-secret', 'kv-prod', 'adb-prod-bob-pipeline', { expiresAt: days(14) }),
      cred('keyvault-secret', 'kv-prod', 'etl-ingest-client-secret', {
        expiresAt: days(14), attributes: { 'tag:credential-kind': 'entra-password', 'tag:app-id': APP, 'tag:credential-id': 'key-1' },
      }),
      cred('keyvault-secret', 'kv-prod', 'sql-admin-password', { expiresAt: days(1) }),
    ],
  };
  const adf: EstateInventory = {
    estate: 'datafactory', scope: 'adf-prod', facts: {}, credentials: [],
    consumers: [
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_Prod', pipelines: ['bob-reports'], secret: { vault: 'https://kv-prod.vault.example:8443', name: 'adb-prod-bob-pipeline' } },
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Databricks_ETL', pipelines: ['nightly-etl'], secret: { vault: 'kv-prod', name: 'adb-prod-etl-token' } },
      { kind: 'adf-linked-service', factory: 'adf-prod', name: 'LS_Gone', secret: { vault: 'kv-prod', name: 'deleted-secret' } },
    ],
  };
  return [prod, entra, kv, adf];
}

const mappings = [{ secret: 'kv-prod/adb-prod-bob-pipeline', holds: { kind: 'databricks-pat' as const, scope: 'ws-prod', comment: 'bob-jdbc' } }];

describe('correlate', () => {
  it('links a secret to the PAT its tags name, and the PAT lists the secret that holds it', () => {
    const { credentials, links } = correlate(estate(), { mappings });
    const pat = credentials.find((c) => c.name === 'adf-etl')!;
    const secret = credentials.find((c) => c.name === 'adb-prod-etl-token')!;
    expect(secret.holds).toBe(pat.id);
    expect(pat.heldIn).toEqual([{ vault: 'kv-prod', name: 'adb-prod-etl-token' }]);
    expect(links.find((l) => l.secretId === secret.id)).toMatchObject({ via: 'tags', found: true, credentialExpiresAt: days(7) });
  });

  it('links an untagged secret through the configured mapping by workspace and comment', () => {
    const { credentials, links } = correlate(estate(), { mappings });
    const pat = credentials.find((c) => c.name === 'bob-jdbc')!;
    expect(pat.heldIn).toEqual([{ vault: 'kv-prod', name: 'adb-prod-bob-pipeline' }]);
    expect(links.find((l) => l.credentialId === pat.id)?.via).toBe('mapping');
  });

  it('links an Entra client secret by app id and key id', () => {
    const { credentials } = correlate(estate(), { mappings });
    const pw = credentials.find((c) => c.kind === 'entra-password')!;
    expect(pw.heldIn).toEqual([{ vault: 'kv-prod', name: 'etl-ingest-client-secret' }]);
  });

  it('attaches Data Factory consumers to the secret (by vault URL or name) and to the credential it holds', () => {
    const { credentials, danglingConsumers } = correlate(estate(), { mappings });
    const bob = credentials.find((c) => c.name === 'bob-jdbc')!;
    expect(bob.consumers.map((c) => c.name)).toEqual(['LS_Databricks_Prod']);
    expect(bob.consumers[0]!.pipelines).toEqual(['bob-reports']);
    expect(credentials.find((c) => c.name === 'adb-prod-bob-pipeline')!.consumers).toHaveLength(1);
    expect(credentials.find((c) => c.name === 'adf-etl')!.consumers.map((c) => c.name)).toEqual(['LS_Databricks_ETL']);
    expect(credentials.find((c) => c.name === 'sql-admin-password')!.consumers).toEqual([]);
    expect(danglingConsumers.map((c) => c.name)).toEqual(['LS_Gone']);
  });

  it('does not modify its input', () => {
    const input = estate();
    correlate(input, { mappings });
    expect(input[0]!.credentials[0]!.heldIn).toEqual([]);
    expect(input[2]!.credentials[0]!.holds).toBeUndefined();
  });

  it('without a mapping, an untagged secret stays unlinked', () => {
    const { credentials } = correlate(estate());
    expect(credentials.find((c) => c.name === 'adb-prod-bob-pipeline')!.holds).toBeUndefined();
    expect(credentials.find((c) => c.name === 'bob-jdbc')!.consumers).toEqual([]);
  });
});

describe('correlate over a large estate', () => {
  /** 3,000 PATs, 1,000 Entra secrets and 2,000 Key Vault secrets whose links are known from how they are built. */
  function largeEstate() {
    const pats = [1, 2, 3].map((w): EstateInventory => ({
      estate: 'databricks', scope: `ws-${w}`, facts: {},
      credentials: Array.from({ length: 1_000 }, (_, i) => cred('databricks-pat', `ws-${w}`, `${w}${String(i).padStart(4, '0')}`, {
        // Every comment is used twice per workspace (i and i + 500): a mapping picks the later expiry, and no expiry beats any.
        name: `job-${i % 500}`, expiresAt: i === 6 ? null : days(i), attributes: { comment: `job-${i % 500}` },
      })),
    }));
    const entra: EstateInventory = {
      estate: 'entra', scope: 'contoso', facts: {},
      credentials: Array.from({ length: 1_000 }, (_, i) => cred('entra-password', 'contoso', `key-${i}`, {
        name: `app-${i % 100} / secret-${i}`, expiresAt: days(i), attributes: { appId: `app-${i % 100}` },
      })),
    };
    const secrets: Credential[] = [];
    const mappings: MappingConfig[] = [];
    for (let i = 0; i < 2_000; i++) {
      const name = `s-${i}`;
      const ws = `ws-${(i % 3) + 1}`;
      if (i % 4 === 0) {
        // Tagged with a PAT; every tenth one names a token the scan did not see.
        const tokenId = i % 40 === 0 ? `gone-${i}` : `${(i % 3) + 1}${String(i % 1000).padStart(4, '0')}`;
        secrets.push(cred('keyvault-secret', 'kv-big', name, { attributes: { 'tag:credential-kind': 'databricks-pat', 'tag:workspace': ws, 'tag:credential-id': tokenId } }));
      } else if (i % 4 === 1) {
        // Tagged with an Entra key id in another case than Graph reports.
        secrets.push(cred('keyvault-secret', 'kv-big', name, { attributes: { 'tag:credential-kind': 'entra-password', 'tag:app-id': `APP-${i % 1000 % 100}`, 'tag:credential-id': `KEY-${i % 1000}` } }));
      } else if (i % 4 === 2) {
        secrets.push(cred('keyvault-secret', 'kv-big', name));
        mappings.push({ secret: `KV-BIG/${name}`, holds: { kind: 'databricks-pat', scope: ws, comment: `job-${i % 500}` } });
      } else {
        secrets.push(cred('keyvault-secret', 'kv-big', name));
        mappings.push({ secret: `kv-big/${name}`, holds: { kind: 'entra-password', scope: `app-${i % 100}`, comment: `secret-${i % 1000}` } });
      }
    }
    return { inventories: [...pats, entra, { estate: 'keyvault', scope: 'kv-big', facts: {}, credentials: secrets } as EstateInventory], mappings };
  }

  /** What each secret holds, from the construction above. */
  function expectedLink(i: number): { credentialId: string; found: boolean; via: 'tags' | 'mapping' } {
    const w = (i % 3) + 1;
    if (i % 4 === 0) {
      return i % 40 === 0
        ? { credentialId: `databricks-pat:ws-${w}:gone-${i}`, found: false, via: 'tags' }
        : { credentialId: `databricks-pat:ws-${w}:${w}${String(i % 1000).padStart(4, '0')}`, found: true, via: 'tags' };
    }
    if (i % 4 === 1) return { credentialId: `entra-password:contoso:key-${i % 1000}`, found: true, via: 'tags' };
    if (i % 4 === 2) {
      const pat = i % 500 === 6 ? 6 : (i % 500) + 500;
      return { credentialId: `databricks-pat:ws-${w}:${w}${String(pat).padStart(4, '0')}`, found: true, via: 'mapping' };
    }
    return { credentialId: `entra-password:contoso:key-${i % 1000}`, found: true, via: 'mapping' };
  }

  it('links every secret to what it holds, and each held credential to its secrets', () => {
    const { inventories, mappings } = largeEstate();
    const { credentials, links } = correlate(inventories, { mappings });
    expect(links).toHaveLength(2_000);
    expect(links.map((l) => ({ credentialId: l.credentialId, found: l.found, via: l.via })))
      .toEqual(Array.from({ length: 2_000 }, (_, i) => expectedLink(i)));

    const byId = new Map(credentials.map((c) => [c.id, c]));
    const heldIn = new Map<string, string[]>();
    for (let i = 0; i < 2_000; i++) {
      const link = expectedLink(i);
      expect(byId.get(`keyvault-secret:kv-big:s-${i}`)!.holds).toBe(link.credentialId);
      if (link.found) heldIn.set(link.credentialId, [...(heldIn.get(link.credentialId) ?? []), `s-${i}`]);
    }
    for (const c of credentials.filter((x) => x.kind !== 'keyvault-secret')) {
      expect(c.heldIn.map((r) => r.name)).toEqual(heldIn.get(c.id) ?? []);
    }
  });
});
