import type { KeywardenConfig } from '../../config/schema.js';
import type { CloudCall } from '../../observability/metrics.js';
import type { StoreAddress } from '../../store/store.js';
import type { InventorySourcesOptions } from '../sources.js';
import type { StreamScanOutcome } from '../pipeline.js';

/** What the bot's thread and the scan thread say to each other (structured-cloned over the worker's port). */

export interface ScanThreadData {
  config: KeywardenConfig;
  /** The store the bot uses, opened again by the scan thread for the rows. */
  address: StoreAddress;
  /** The bot's registered secrets: the thread redacts its own log lines and errors with them. */
  secrets: string[];
  logLevel: string;
  retry?: InventorySourcesOptions['retry'];
  sourceTimeoutMs: number;
  /** The bot's clock when the thread started (the thread's clock follows it, re-set at every scan). */
  now: number;
}

export type ToScanThread =
  | { type: 'scan'; scanId: string; ordinal: number; now: number }
  /** Keywarden is shutting down: stop the running scan's calls. */
  | { type: 'abort' }
  /** Stop the running scan, close the store, and end. */
  | { type: 'close' };

export type FromScanThread =
  | { type: 'ready' }
  /** The thread could not start (its store, its sources) and ends. */
  | { type: 'broken'; message: string }
  | { type: 'log'; line: string }
  | { type: 'calls'; calls: CloudCall[] }
  | { type: 'done'; scanId: string; outcome: StreamScanOutcome }
  | { type: 'failed'; scanId: string; message: string; code?: string }
  | { type: 'closed' };
