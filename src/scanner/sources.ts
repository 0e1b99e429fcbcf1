import type { KeywardenConfig } from '../config/schema.js';
import { createAzureCredential } from '../providers/azure-credential.js';
import { buildInventorySources, type InventorySources, type InventorySourcesOptions } from './estate-sources.js';

export type { InventorySources, InventorySourcesOptions } from './estate-sources.js';

/** Every configured estate as an inventory source, with the credential from config.azure unless one is given. */
export function createInventorySources(config: KeywardenConfig, options: InventorySourcesOptions = {}): InventorySources {
  return buildInventorySources(config, { ...options, credential: options.credential ?? createAzureCredential(config.azure) });
}
