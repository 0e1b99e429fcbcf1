import type { Consumer, EstateInventory, SecretRef } from '../../domain/credential.js';
import type { DataFactoryClient } from './arm.js';
import { findSecretUses, type ConfiguredVault, type SecretUse } from './blast-radius.js';

/** One Data Factory → the linked services that consume Key Vault secrets (EstateInventory.consumers). */

export interface DataFactoryInventorySource {
  estate: 'datafactory';
  /** The factory name. */
  scope: string;
  host: string;
  scan(options: { signal?: AbortSignal }): Promise<EstateInventory>;
}

export interface FactoryConfig {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
}

/** A vault we cannot name (not configured, or an expression) is shown by its URL host or as "(dynamic)". */
function vaultLabel(use: SecretUse): string {
  if (use.vault) return use.vault;
  if (use.vaultUrl) {
    try {
      return new URL(use.vaultUrl).host;
    } catch {
      return use.vaultUrl;
    }
  }
  return '(dynamic)';
}

export function toConsumers(factory: string, uses: SecretUse[]): Array<Consumer & { secret: SecretRef }> {
  return uses.map((use) => ({
    kind: 'adf-linked-service',
    factory,
    name: use.linkedService,
    pipelines: use.pipelines,
    pinnedVersion: use.pinnedVersion,
    dynamic: use.dynamic,
    secret: { vault: vaultLabel(use), name: use.secretName, ...(use.secretVersion ? { version: use.secretVersion } : {}) },
  }));
}

export function createDataFactoryInventory(options: { factory: FactoryConfig; client: DataFactoryClient; vaults: ConfiguredVault[] }): DataFactoryInventorySource {
  const { factory, client, vaults } = options;
  return {
    estate: 'datafactory',
    scope: factory.name,
    host: client.baseUrl,
    async scan({ signal } = {}) {
      const defs = await client.readFactory({ subscriptionId: factory.subscriptionId, resourceGroup: factory.resourceGroup, factory: factory.name }, { signal });
      return {
        estate: 'datafactory', scope: factory.name, host: client.baseUrl, credentials: [], facts: {},
        consumers: toConsumers(factory.name, findSecretUses(defs, vaults)),
      };
    },
  };
}
