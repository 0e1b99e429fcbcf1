/**
 * Where the scan rows sit in the store's table (see scan-rows.ts in this folder). One partition per credential kind,
 * read from the id's prefix (credentialId is `${kind}:…`), so a page of one source writes to one or two partitions and
 * `get(id)` is a point read. Each credential has two entities in its partition, written together in one entity group
 * transaction: the row ("d|" + id in hex) and a small order entry ("o|" + scan + seq + id) that pages walk in the
 * (scan, seq, id) order SQLite's index gives. Pages in id order walk the rows themselves (hex sorts like the id's bytes).
 */

const KINDS = new Set(['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate']);
/** Ids without a known kind prefix (none in practice) share one more partition. */
export const OTHER_PARTITION = 'rows|other';
export const ROW_PARTITIONS = [...[...KINDS].map((k) => `rows|${k}`), OTHER_PARTITION];

export function rowPartition(id: string): string {
  const kind = id.slice(0, id.indexOf(':'));
  return KINDS.has(kind) ? `rows|${kind}` : OTHER_PARTITION;
}

/** The partitions that can hold rows of these kinds (all of them when no kind is asked for). */
export function partitionsOfKinds(kinds: readonly string[] | undefined): string[] {
  if (!kinds) return ROW_PARTITIONS;
  return [...new Set(kinds.map((k) => (KINDS.has(k) ? `rows|${k}` : OTHER_PARTITION))), OTHER_PARTITION];
}

const hex = (id: string): string => Buffer.from(id, 'utf8').toString('hex');
export const pad = (n: number, width: number): string => String(Math.max(0, Math.floor(n))).padStart(width, '0');

export const dataKey = (id: string): string => `d|${hex(id)}`;
export const orderKey = (scan: number, seq: number, id: string): string => `o|${pad(scan, 10)}|${pad(seq, 10)}|${hex(id)}`;
/** Order entries of scans at or after `scan`. */
export const orderFrom = (scan: number): string => `o|${pad(scan, 10)}`;
/** Key ranges are [prefix|, prefix}) : "}" sorts right after "|". */
export const DATA_START = 'd|';
export const DATA_END = 'd}';
export const ORDER_END = 'o}';

/** Expiry as a fixed-width string, so Tables compares it in order whatever number type it would infer. */
export const expiryText = (at: number): string => pad(at, 16);

/** The properties of a row besides its value: what stamps, touches and deletes read. */
export interface RowInfo {
  pk: string;
  id: string;
  estate: string;
  scope: string;
  kind: string;
  scan: number;
  seq: number;
  /** expiryText, absent when the credential never expires. */
  e?: string;
  fp: string;
  ch: string;
  rel: boolean;
  fc: number;
  blob?: string;
}
export const INFO_PROPS = ['RowKey', 'id', 'estate', 'scope', 'kind', 'scan', 'seq', 'e', 'fp', 'ch', 'rel', 'fc', 'blob'];

/** The order entry of a row: what page filters look at, so a page reads rows only for what it returns. */
export function orderProps(info: Omit<RowInfo, 'pk' | 'fp' | 'ch' | 'blob'>): Record<string, unknown> {
  const { id, estate, scope, kind, scan, seq, rel, fc, e } = info;
  return { id, estate, scope, kind, scan, seq, rel, fc, ...(e !== undefined ? { e } : {}) };
}

/** One write in a scan commit; the ops of one credential (a unit) always land in the same entity group transaction. */
export type ScanOp =
  | { a: 'put'; rk: string; props: Record<string, unknown>; text?: string }
  | { a: 'merge'; rk: string; props: Record<string, unknown> }
  | { a: 'del'; rk: string };
export interface ScanGroup { pk: string; units: ScanOp[][] }

/** A row as the worker returns it: its properties and its value text (`[credential, findings]`). */
export interface RowEntity extends Omit<RowInfo, 'pk'> { text: string }
