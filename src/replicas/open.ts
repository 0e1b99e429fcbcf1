import { BlobServiceClient } from '@azure/storage-blob';
import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { registerSecret } from '../logging/redact.js';
import { createAzureCredential } from '../providers/azure-credential.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import { openAzureTablesStore } from '../store/tables/store.js';
import { blobLeaseLeadership, type BlobLeaseLeadership } from './blob-lease.js';

/** The store `store.type` names, and with Azure Tables the blob lease that elects the leader replica. */

export interface OpenedStore {
  store: Store;
  /** Absent for SQLite: one instance is always the leader. */
  leadership?: BlobLeaseLeadership;
}

export function openConfiguredStore(config: KeywardenConfig, options: { clock: Clock; logger: Logger; auditKey?: Buffer; onAuditAppended?: (seq: number) => void }): OpenedStore {
  const { clock, auditKey, onAuditAppended } = options;
  if (config.store.type !== 'azure-tables') {
    return { store: openSqliteStore({ path: config.store.path, clock, auditKey, onAuditAppended }) };
  }
  const azure = config.store.azure!;
  if (azure.connectionString) registerSecret(azure.connectionString);
  const store = openAzureTablesStore({
    ...(azure.connectionString ? { connectionString: azure.connectionString } : { tableEndpoint: azure.tableEndpoint, blobEndpoint: azure.blobEndpoint, azure: config.azure }),
    table: azure.table, container: azure.container, clock, auditKey, onAuditAppended,
  });
  const blobs = azure.connectionString
    ? BlobServiceClient.fromConnectionString(azure.connectionString)
    : new BlobServiceClient(azure.blobEndpoint!, createAzureCredential(config.azure));
  const leadership = blobLeaseLeadership({
    blob: blobs.getContainerClient(azure.container).getBlobClient(azure.leaseBlob),
    leaseSeconds: azure.leaseSeconds,
    logger: options.logger,
  });
  return { store, leadership };
}
