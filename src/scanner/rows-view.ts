import { credentialId, type Credential, type Finding } from '../domain/credential.js';
import { kindsOf, type ScanCounts, type ScannedCredential, type ScanResult, type ScanView } from '../domain/scan.js';
import { cursorOf, type CredentialRow, type RowCursor, type RowQuery, type ScanRows } from '../store/scan-rows.js';

/** A scan over stored rows: the small summary kept as "latest", and the result and view built on it. */

export interface RowScanSummary extends Omit<ScanResult, 'credentials' | 'findings' | 'view' | 'counts'> {
  /** Ordinal of the scan in the rows (rows seen by it, or by a later scan, have `scan >= ordinal`). */
  ordinal: number;
  counts: ScanCounts;
  scopeFindings: Finding[];
}

export function isRowSummary(value: unknown): value is RowScanSummary {
  return typeof (value as RowScanSummary)?.ordinal === 'number' && !Array.isArray((value as ScanResult).credentials);
}

const scanned = (r: CredentialRow): ScannedCredential => ({ credential: r.credential, findings: r.findings });

function* rowPages(rows: ScanRows, query: RowQuery, pageSize: number): Iterable<CredentialRow[]> {
  let after: RowCursor | undefined;
  for (;;) {
    const page = rows.page(query, after, pageSize);
    if (page.length === 0) return;
    after = cursorOf(page[page.length - 1]!);
    yield page;
    if (page.length < pageSize) return;
  }
}

/**
 * The view of one scan: the rows it saw, or that a later scan saw since (while the next scan runs, a click still reads
 * every credential, some already in their newer state). Rows a failed scope kept from before are left out.
 * Pages go by id unless asked for the providers' order: the next scan moves rows in that order while a reader yields.
 */
export function rowScanView(rows: ScanRows, summary: Pick<RowScanSummary, 'ordinal' | 'scopeFindings'>): ScanView {
  const since = summary.ordinal;
  return {
    get(id) {
      const r = rows.get(id);
      return r && r.scan >= since ? scanned(r) : undefined;
    },
    holders(id) {
      const held = rows.get(id);
      if (!held || held.scan < since) return [];
      return held.credential.heldIn
        .map((ref) => rows.get(credentialId('keyvault-secret', ref.vault, ref.name)))
        .filter((r): r is CredentialRow => r !== undefined && r.scan >= since && r.credential.holds === id)
        .map(scanned);
    },
    *pages(options = {}) {
      const query: RowQuery = { ...options.where, seenSince: since, relevantOnly: options.relevantOnly, order: options.order ?? 'id' };
      for (const page of rowPages(rows, query, options.pageSize ?? 500)) yield page.map(scanned);
    },
    inScope(kind, scope) {
      const out: Credential[] = [];
      for (const page of rowPages(rows, { seenSince: since, kind, scope, order: 'id' }, 1000)) for (const r of page) out.push(r.credential);
      return out;
    },
    sawScope: (estate, scope) => kindsOf(estate).some((kind) => rows.page({ seenSince: since, kind, scope, order: 'id' }, undefined, 1).length > 0),
    *query(query, pageSize = 500) {
      for (const page of rowPages(rows, { ...query, order: 'id' }, pageSize)) yield page.map(scanned);
    },
    scopeFindings: summary.scopeFindings,
  };
}

/** The result consumers get; `credentials` and `findings` read every row on use (the view pages instead). */
export function rowBackedResult(rows: ScanRows, summary: RowScanSummary): ScanResult {
  const { ordinal: _ordinal, scopeFindings: _scopeFindings, ...rest } = summary;
  const view = rowScanView(rows, summary);
  const result = { ...rest, view } as ScanResult;
  Object.defineProperty(result, 'credentials', {
    enumerable: true,
    get: () => [...view.pages()].flatMap((page) => page.map((r) => r.credential)),
  });
  Object.defineProperty(result, 'findings', {
    enumerable: true,
    get: () => [...[...view.pages()].flatMap((page) => page.flatMap((r) => r.findings)), ...summary.scopeFindings],
  });
  return result;
}
