import type { KeywardenConfig } from '../../config/schema.js';
import type { CloudCall } from '../../observability/calls.js';
import type { StoreAddress } from '../../store/store.js';
import type { InventorySourcesOptions } from '../sources.js';
import type { StreamScanOutcome } from '../pipeline.js';
import type { ThreadFailure } from './thread-kit.js';

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

/** An access token lent by the bot's credential (the scan thread has no credential of its own). */
export interface LentToken {
  token: string;
  expiresOnTimestamp: number;
  refreshAfterTimestamp?: number;
}

/** Why the bot's credential gave no token (redacted, never a token). */
export type TokenFailure = ThreadFailure;

export type ToScanThread =
  | { type: 'scan'; scanId: string; ordinal: number; now: number }
  /** The answer to the thread's token request `id`: a token (null when the credential gave none) or why not. */
  | { type: 'token'; id: number; token?: LentToken | null; error?: TokenFailure }
  /** Keywarden is shutting down: stop the running scan's calls. */
  | { type: 'abort' }
  /** This replica was fenced: the thread's store refuses every write from now on (then an abort follows). */
  | { type: 'fence'; reason: string }
  /** Stop the running scan, close the store, and end. */
  | { type: 'close' };

export type FromScanThread =
  | { type: 'ready' }
  /** The thread could not start (its store, its sources) and ends. */
  | { type: 'broken'; message: string }
  | { type: 'log'; line: string }
  /** The thread needs an access token for these scopes (answered with a `token` message of the same id). */
  | { type: 'token'; id: number; scopes: string[]; tenantId?: string; claims?: string }
  | { type: 'calls'; calls: CloudCall[] }
  | { type: 'done'; scanId: string; outcome: StreamScanOutcome }
  | { type: 'failed'; scanId: string; message: string; code?: string }
  | { type: 'closed' };
