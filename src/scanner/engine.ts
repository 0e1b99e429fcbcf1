import type { KeywardenConfig } from '../config/schema.js';
import { selfIdentityOf } from '../domain/self-credential.js';
import type { ScanRows } from '../store/scan-rows.js';
import { streamScan, type StreamScanOutcome } from './pipeline.js';
import type { InventorySource, SourceRunner } from './run-sources.js';

/** Where a streamed scan runs: on the bot's thread (inline) or on a scan thread of its own (scanner/thread/). */

export interface ScanRequest {
  scanId: string;
  /** Ordinal of this scan in the rows. */
  ordinal: number;
}

export interface ScanEngine {
  /** Sources it scans (for the log). */
  readonly sources: number;
  /** Set when the scan runs off the bot's thread. */
  readonly thread?: string;
  /** Reads every source, writes the rows, and answers with the summary of what it found and changed. */
  run(request: ScanRequest, signal?: AbortSignal): Promise<StreamScanOutcome>;
  /** Stops a running scan's calls and releases what the engine holds (after the scanner's shutdown). */
  close(): Promise<void>;
  /**
   * This replica was fenced (a newer release took the store): the engine's own store connection refuses the scan's
   * writes from now on. The inline engine writes through the core's store, which already refuses them.
   */
  fence?(reason: string): void;
}

export type ScanEngineConfig = Pick<KeywardenConfig, 'scanner' | 'policy' | 'keyVault'> & Partial<Pick<KeywardenConfig, 'bot' | 'azure' | 'databricks'>>;

export interface InlineScanEngineOptions {
  sources: readonly InventorySource[];
  config: ScanEngineConfig;
  rows: ScanRows;
  now(): number;
  runner: SourceRunner;
}

export function inlineScanEngine(options: InlineScanEngineOptions): ScanEngine {
  const { sources, config, rows, runner } = options;
  return {
    sources: sources.length,
    run: ({ ordinal }) => streamScan({
      ordinal, rows, config, self: selfIdentityOf(config), now: options.now,
      estates: sources.map((s) => s.estate),
      fetch: (onPage, onDone) => runner.streamAll(sources, config.scanner.concurrencyPerHost, onPage, onDone),
    }),
    close: async () => undefined,
  };
}
