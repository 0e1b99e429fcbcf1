import type { Clock } from '../clock.js';
import { openSqliteStore } from './sqlite.js';
import type { Store, StoreAddress } from './store.js';
import { openAzureTablesStore } from './tables/store.js';

/** Opens the store another thread announced (`store.address`): its own connection to the same file or table. */
export function openStoreAt(address: StoreAddress, options: { clock: Clock }): Store {
  if (address.type === 'sqlite') return openSqliteStore({ path: address.path, clock: options.clock, mustExist: true });
  return openAzureTablesStore({ ...address.connection, clock: options.clock });
}
