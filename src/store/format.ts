import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../cards/render.js';
import { StoreError, type Store, type StoredRecord } from './store.js';

/**
 * The store format: one number in `settings/store-format` that says which release's records the store holds. A replica
 * refuses to start on a store whose format is newer than its own, and a running replica that sees the format move past
 * it fences itself (src/replicas/format-gate.ts), so an older release never writes records without what a newer one
 * added (an index record, a new shape) while the two run side by side.
 */

/** Bump it when a release adds an index record or changes a record's shape that older replicas would write wrongly. */
export const STORE_FORMAT = 1;

export const STORE_FORMAT_ID = 'store-format';

export interface StoreFormatRecord {
  format: number;
  /** The Keywarden version (package.json) that wrote it. */
  version: string;
  host: string;
  pid: number;
  at: number;
}

export interface FormatClaim {
  /** The record as it stands after the claim (ours, or an equal one another replica wrote). */
  record: StoreFormatRecord;
  /** Whether this start wrote the record. */
  wrote: boolean;
  /** Set when the store's format was raised from a lower one (by this start or another replica's): when that happened. */
  raisedAt?: number;
  /** The format the store had before this start raised it (absent: it did not raise it, or the store had none). */
  raisedFrom?: number;
}

let cachedVersion: string | undefined;

/** This build's version, from the package.json the cards are found by (src/ with tsx, dist/src built). */
export function keywardenVersion(): string {
  if (cachedVersion) return cachedVersion;
  try {
    const pkg = JSON.parse(readFileSync(join(findPackageRoot(), 'package.json'), 'utf8')) as { version?: string };
    cachedVersion = pkg.version ?? 'unknown';
  } catch {
    cachedVersion = 'unknown';
  }
  return cachedVersion;
}

export function readStoreFormat(store: Store): StoredRecord<StoreFormatRecord> | undefined {
  const record = store.get<StoreFormatRecord>('settings', STORE_FORMAT_ID);
  return record && typeof record.value?.format === 'number' ? record : undefined;
}

/** What an operator reads when a store is ahead of this release: both formats, who wrote it, and the fix. */
export function newerFormatText(stored: StoreFormatRecord, ours: number, ourVersion = keywardenVersion()): string {
  return `the store is at format ${stored.format}, written by Keywarden ${stored.version} (${stored.host} pid ${stored.pid}), `
    + `but this Keywarden ${ourVersion} writes format ${ours} — upgrade this replica to Keywarden ${stored.version} or newer; `
    + 'do not run an older release against this store';
}

export interface ClaimOptions {
  now: number;
  /** This release's format (default STORE_FORMAT; tests pretend to be a newer release). */
  format?: number;
  version?: string;
}

/**
 * Writes this release's format when the store has none or a lower one (insert / compare-and-set, so two new replicas
 * racing both end on the same record), and throws STORE_FORMAT_NEWER when the store is ahead of this release.
 */
export function claimStoreFormat(store: Store, options: ClaimOptions): FormatClaim {
  const ours = options.format ?? STORE_FORMAT;
  const mine: StoreFormatRecord = { format: ours, version: options.version ?? keywardenVersion(), host: hostname(), pid: process.pid, at: options.now };
  for (let attempt = 0; attempt < 8; attempt++) {
    const current = readStoreFormat(store);
    if (!current) {
      if (store.insert('settings', STORE_FORMAT_ID, mine)) return { record: mine, wrote: true };
      continue;
    }
    const stored = current.value;
    if (stored.format > ours) throw new StoreError(newerFormatText(stored, ours, mine.version), 'STORE_FORMAT_NEWER');
    // Version 1 was inserted; a later version was raised from a lower format by some replica.
    if (stored.format === ours) return { record: stored, wrote: false, ...(current.version > 1 ? { raisedAt: stored.at } : {}) };
    if (store.compareAndSet('settings', STORE_FORMAT_ID, current.version, mine)) return { record: mine, wrote: true, raisedAt: mine.at, raisedFrom: stored.format };
  }
  throw new StoreError('could not write settings/store-format: other replicas kept changing it — start this replica again', 'STORE_FORMAT_RACE');
}
