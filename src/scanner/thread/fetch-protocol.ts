import type { KeywardenConfig } from '../../config/schema.js';
import type { Credential } from '../../domain/credential.js';
import type { CloudCall } from '../../observability/calls.js';
import type { InventoryHeader } from '../../providers/pages.js';
import type { InventorySourcesOptions } from '../sources.js';
import type { FromScanThread, ToScanThread } from './protocol.js';
import type { ThreadFailure } from './thread-kit.js';

/**
 * What the scan thread and its fetch threads say to each other: a fetch thread runs some sources' calls and parsing
 * (the Key Vault SDK, Graph, Databricks) and posts their pages to the scan thread, which correlates, judges and writes.
 */

export interface FetchThreadData {
  config: KeywardenConfig;
  secrets: string[];
  retry?: InventorySourcesOptions['retry'];
  now: number;
  /** Which fetch thread this is (for the log). */
  index: number;
}

/** Enough of what a source threw for the estate error to read as it does without fetch threads (redacted). */
/** How a source failed (thread-kit.ts). */
export type SourceFailure = ThreadFailure;

export type ToFetchThread =
  /** Stream source `source` (its index among buildInventorySources' sources) as stream `id`. */
  | { type: 'stream'; id: number; source: number; now: number }
  /** The scan thread took one page of stream `id`. */
  | { type: 'ack'; id: number }
  /** The scan gave stream `id` up (timeout, shutdown, a failed page): stop its calls. */
  | { type: 'abort'; id: number }
  | Extract<ToScanThread, { type: 'token' }>;

export type FromFetchThread =
  | { type: 'page'; id: number; credentials: Credential[] }
  | { type: 'end'; id: number; header: InventoryHeader }
  | { type: 'failed'; id: number; error: SourceFailure }
  | { type: 'broken'; message: string }
  | Extract<FromScanThread, { type: 'token' }>
  | { type: 'calls'; calls: CloudCall[] };

/** Pages of one stream in flight between the threads: the fetch thread reads on while the scan thread takes them. */
export const PAGE_WINDOW = 2;

/**
 * How many fetch threads: the setting, else none. Off by default: on 2 CPUs one gains 5–15% of a large scan's wall
 * (it leaves the scan thread room to judge sources early) for ≈ 50 MB; set it where cores are free (docs/performance.md).
 */
export function fetchThreadCount(config: Pick<KeywardenConfig, 'scanner'>): number {
  return config.scanner.fetchThreads ?? 0;
}

/**
 * The fetch thread of each source (buildInventorySources' order: workspaces, vaults, the tenant, factories). Host gates
 * are per thread, so everything that talks to one host stays on one thread: Graph (the tenant and the workspaces'
 * PAT-owner lookups) with every workspace and ARM (the factories) on thread 0; each vault is its own host, dealt
 * round-robin starting after thread 0, so the vaults' SDK work spreads over the threads. (A workspace whose PAT is kept
 * in a vault reads that one secret through thread 0's gate for the vault: one read per rotation, not the scan's load.)
 */
export function fetchThreadOf(config: Pick<KeywardenConfig, 'databricks' | 'keyVault' | 'entra' | 'dataFactory'>, threads: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < config.databricks.workspaces.length; i++) out.push(0);
  for (let i = 0; i < config.keyVault.vaults.length; i++) out.push((i + 1) % threads);
  if (config.entra.enabled) out.push(0);
  for (let i = 0; i < config.dataFactory.factories.length; i++) out.push(0);
  return out;
}
