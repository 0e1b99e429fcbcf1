import { DAY_MS } from '../../src/clock.js';
import type { Consumer, Credential, EstateInventory, SecretRef } from '../../src/domain/credential.js';
import { credentialId, KV_TAGS, MANAGED_BY_VALUE } from '../../src/domain/credential.js';
import { seededRandom } from './measure.js';

/**
 * Inventories shaped like the providers' output (same ids, attributes and tags), generated in memory for the pure
 * scenarios: policy + correlation, the /expiring card, and the alerts.
 */

export interface SyntheticEstate {
  workspaces: number;
  patsPerWorkspace: number;
  vaults: number;
  secretsPerVault: number;
  entraApps: number;
  credentialsPerApp: number;
  /** Data Factory linked services that read a secret. */
  consumers: number;
  now: number;
  /** Expiries are drawn from this many days around now (negative = already expired). */
  expiryDays?: [number, number];
  seed?: number;
}

const pad = (n: number, width = 5) => String(n).padStart(width, '0');
const hex = (rand: () => number, length: number) => Array.from({ length }, () => Math.floor(rand() * 16).toString(16)).join('');

export function syntheticInventories(o: SyntheticEstate): EstateInventory[] {
  const rand = seededRandom(o.seed ?? 7);
  const [minDays, maxDays] = o.expiryDays ?? [-10, 400];
  const expiry = (created: number) => (rand() < 0.04 ? null : Math.max(created + DAY_MS, o.now + Math.floor(minDays + rand() * (maxDays - minDays)) * DAY_MS));
  const inventories: EstateInventory[] = [];
  const patsByWorkspace = new Map<string, Credential[]>();

  for (let w = 0; w < o.workspaces; w++) {
    const scope = `ws-${w}`;
    const host = `https://adb-${w}.azuredatabricks.net`;
    const credentials: Credential[] = [];
    for (let i = 0; i < o.patsPerWorkspace; i++) {
      const tokenId = hex(rand, 64);
      const createdAt = o.now - Math.floor(rand() * 200) * DAY_MS;
      const sp = i % 4 === 0;
      const ownerName = sp ? `sp-pipeline-${pad(i % 40, 3)}` : `user${pad(i % 300, 3)}@contoso.com`;
      credentials.push({
        id: credentialId('databricks-pat', scope, tokenId), kind: 'databricks-pat', nativeId: tokenId, name: `token-${pad(i)}`,
        where: { estate: 'databricks', scope, host, label: scope },
        owner: { id: String(1_000_000_000_000_000 + i), name: ownerName, kind: sp ? 'service-principal' : 'user', active: rand() > 0.03, ...(sp ? { applicationId: `22222222-2222-4222-8222-${pad(i % 40, 12)}` } : {}) },
        createdAt, expiresAt: expiry(createdAt), lastUsedAt: rand() < 0.9 ? o.now - Math.floor(rand() * 120) * DAY_MS : null, enabled: true,
        heldIn: [], consumers: [],
        attributes: { tokenId, comment: `token-${pad(i)}`, workspaceId: String(7_000_000_000_000_000 + w), ownerId: String(1_000_000_000_000_000 + i), createdById: null, createdByUsername: ownerName, maxTokenLifetimeDays: null },
      });
    }
    patsByWorkspace.set(scope, credentials);
    inventories.push({ estate: 'databricks', scope, host, credentials, facts: { maxTokenLifetimeDays: w % 2 ? 90 : null, tokenUsers: [{ principal: 'admins', type: 'group' }, { principal: w === 0 ? 'users' : 'sp-etl', type: w === 0 ? 'group' : 'service-principal' }] } });
  }

  const workspaces = [...patsByWorkspace.keys()];
  const secretNames: SecretRef[] = [];
  for (let v = 0; v < o.vaults; v++) {
    const scope = `kv-${v}`;
    const host = `https://kv-${v}.vault.azure.net`;
    const credentials: Credential[] = [];
    for (let i = 0; i < o.secretsPerVault; i++) {
      const name = `secret-${pad(i)}`;
      const createdAt = o.now - Math.floor(rand() * 300) * DAY_MS;
      const attributes: Credential['attributes'] = { version: hex(rand, 32), contentType: null, updatedAt: createdAt, notBefore: null, managed: false, versionCount: 1 + (i % 3), disabledVersions: 0 };
      let expiresAt = expiry(createdAt);
      if (workspaces.length && i % 3 === 0) {
        // Holds a PAT, tagged the way Keywarden tags what it rotates; most mirror its expiry, some disagree.
        const ws = workspaces[i % workspaces.length]!;
        const pats = patsByWorkspace.get(ws)!;
        const pat = pats[(i * 7) % pats.length]!;
        Object.assign(attributes, {
          [`tag:${KV_TAGS.managedBy}`]: MANAGED_BY_VALUE, [`tag:${KV_TAGS.credentialKind}`]: 'databricks-pat',
          [`tag:${KV_TAGS.credentialId}`]: pat.nativeId, [`tag:${KV_TAGS.workspace}`]: ws,
        });
        expiresAt = i % 9 === 0 ? expiresAt : pat.expiresAt;
      }
      credentials.push({
        id: credentialId('keyvault-secret', scope, name), kind: 'keyvault-secret', nativeId: name, name,
        where: { estate: 'keyvault', scope, host, label: scope }, createdAt, expiresAt, enabled: true, heldIn: [], consumers: [], attributes,
      });
      secretNames.push({ vault: scope, name });
    }
    inventories.push({ estate: 'keyvault', scope, host, credentials, facts: {} });
  }

  if (o.entraApps > 0) {
    const host = 'https://graph.microsoft.com';
    const credentials: Credential[] = [];
    for (let a = 0; a < o.entraApps; a++) {
      const appId = `33333333-3333-4333-8333-${pad(a, 12)}`;
      const displayName = `app-${pad(a)}`;
      for (let k = 0; k < o.credentialsPerApp; k++) {
        const keyId = `c0c0c0c0-${pad(a % 10_000, 4)}-4000-8000-${pad(k, 12)}`;
        const createdAt = o.now - Math.floor(rand() * 300) * DAY_MS;
        credentials.push({
          id: credentialId('entra-password', appId, keyId), kind: 'entra-password', nativeId: keyId, name: `${displayName} / secret-${k}`,
          where: { estate: 'entra', scope: appId, host, label: `app ${displayName}` },
          owner: { id: `a1a1a1a1-0000-4000-8000-${pad(a, 12)}`, name: displayName, kind: 'application', applicationId: appId },
          createdAt, expiresAt: expiry(createdAt), heldIn: [], consumers: [],
          attributes: { appId, appObjectId: `a1a1a1a1-0000-4000-8000-${pad(a, 12)}`, objectType: 'application', objectId: `a1a1a1a1-0000-4000-8000-${pad(a, 12)}`, displayName, credentialDisplayName: `secret-${k}`, hint: 'abc' },
        });
      }
    }
    inventories.push({ estate: 'entra', scope: 'contoso', host, credentials, facts: {} });
  }

  if (o.consumers > 0 && secretNames.length > 0) {
    const consumers: Array<Consumer & { secret: SecretRef }> = [];
    for (let i = 0; i < o.consumers; i++) {
      consumers.push({ kind: 'adf-linked-service', factory: 'adf-prod', name: `LS_${pad(i)}`, pipelines: [`pipeline-${pad(i % 50)}`], secret: secretNames[(i * 3) % secretNames.length]! });
    }
    inventories.push({ estate: 'datafactory', scope: 'adf-prod', host: 'https://management.azure.com', credentials: [], facts: {}, consumers });
  }
  return inventories;
}

export function credentialCount(inventories: readonly EstateInventory[]): number {
  return inventories.reduce((n, i) => n + i.credentials.length, 0);
}
