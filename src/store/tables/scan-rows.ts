import { randomBytes } from 'node:crypto';
import type { Credential, CredentialKind, Estate, Finding } from '../../domain/credential.js';
import type { CredentialRow, RowQuery, RowStamp, ScanRows } from '../scan-rows.js';
import {
  DATA_START, dataKey, expiryText, orderFrom, orderKey, orderProps, pad, partitionsOfKinds, rowPartition,
  type RowEntity, type RowInfo, type ScanGroup, type ScanOp,
} from './scan-keys.js';
import { quote } from './values.js';

/**
 * The scanned estate as rows on Azure Tables (the ScanRows port; SQLite's is src/store/scan-rows.ts). Layout in
 * scan-keys.ts: a partition per kind, each credential a row plus an order entry, written in entity group transactions.
 * Every method is one blocking round trip to the worker, whatever the page size; the worker runs the page's batches and
 * look-ups concurrently. Staging is a table of its own per scan, dropped in one request.
 */

type Call = <T>(op: string, args: Record<string, unknown>) => T;

/** A staging table left by a replica that stopped mid-scan is dropped once it is this old. */
const STALE_STAGING_MS = 6 * 3600_000;
/** Infos kept between `stamps` and `write` (the scanner asks for a page's stamps, then writes that page). */
const MAX_KNOWN = 5_000;

function groupByPartition(ids: readonly string[]): Array<{ pk: string; ids: string[] }> {
  const out = new Map<string, string[]>();
  for (const id of ids) {
    const pk = rowPartition(id);
    out.set(pk, [...(out.get(pk) ?? []), id]);
  }
  return [...out].map(([pk, list]) => ({ pk, ids: list }));
}

function toRow(r: RowEntity): CredentialRow {
  const [credential, findings] = JSON.parse(r.text) as [Credential, Finding[]];
  return {
    id: r.id, estate: r.estate as Estate, scope: r.scope, kind: r.kind as CredentialKind, scan: r.scan, seq: r.seq,
    expiresAt: r.e !== undefined ? Number(r.e) : null, fingerprint: r.fp, contentHash: r.ch, relevant: r.rel, credential, findings,
  };
}

/** The OData filter of a page over the order entries' properties. */
function filterOf(query: RowQuery): string {
  const parts: string[] = [];
  if (query.relevantOnly) parts.push('rel eq true');
  if (query.withFindings) parts.push('fc gt 0');
  if (query.kind) parts.push(`kind eq ${quote(query.kind)}`);
  if (query.kinds) parts.push(`(${query.kinds.map((k) => `kind eq ${quote(k)}`).join(' or ')})`);
  if (query.scope !== undefined) parts.push(`scope eq ${quote(query.scope)}`);
  if (query.estate) parts.push(`estate eq ${quote(query.estate)}`);
  if (query.expiresBefore !== undefined) parts.push(`e lt ${quote(expiryText(query.expiresBefore))}`);
  return parts.join(' and ');
}

/** `batches`: entity group transactions written so far. `unstage`: what SQLite's rows do when a source is read or fails. */
export type TablesScanRows = ScanRows & { readonly batches: number; unstage(source: number): void };

export function createTablesScanRows(call: Call, table: string): TablesScanRows {
  /** What this store last read or wrote of a row: lets a write replace the row's old order entry without reading it. */
  const known = new Map<string, RowInfo | null>();
  const stagingPrefix = `${table.slice(0, 45)}stg`;
  let staging: { name: string; created: boolean; next: Map<number, number> } | undefined;
  let batches = 0;

  const remember = (id: string, info: RowInfo | null) => {
    if (known.size >= MAX_KNOWN) known.clear();
    known.set(id, info);
  };
  /** Stamps of these ids from storage; ids without a row are remembered as absent (null). */
  const lookUp = (ids: readonly string[]): RowInfo[] => {
    const infos = call<RowInfo[]>('scanFind', { groups: groupByPartition(ids) });
    for (const id of ids) remember(id, null);
    for (const info of infos) remember(info.id, info);
    return infos;
  };

  function commitRound(entries: Array<{ upsert?: CredentialRow; touch?: { id: string; scan: number; seq: number } }>): void {
    const units = new Map<string, ScanOp[][]>();
    const oldBlobs: string[] = [];
    const add = (pk: string, unit: ScanOp[]) => units.set(pk, [...(units.get(pk) ?? []), unit]);
    for (const { upsert: r, touch: t } of entries) {
      const id = (r ?? t)!.id;
      const old = known.get(id);
      const pk = rowPartition(id);
      if (r) {
        const info: RowInfo = {
          pk, id, estate: r.estate, scope: r.scope, kind: r.kind, scan: r.scan, seq: r.seq,
          ...(r.expiresAt !== null ? { e: expiryText(r.expiresAt) } : {}), fp: r.fingerprint, ch: r.contentHash, rel: r.relevant, fc: r.findings.length,
        };
        const newOrder = orderKey(r.scan, r.seq, id);
        const unit: ScanOp[] = [
          { a: 'put', rk: dataKey(id), props: { ...orderProps(info), fp: info.fp, ch: info.ch }, text: `[${r.texts?.credential ?? JSON.stringify(r.credential)},${r.texts?.findings ?? JSON.stringify(r.findings)}]` },
          { a: 'put', rk: newOrder, props: orderProps(info) },
        ];
        if (old && orderKey(old.scan, old.seq, id) !== newOrder) unit.push({ a: 'del', rk: orderKey(old.scan, old.seq, id) });
        if (old?.blob) oldBlobs.push(old.blob);
        add(pk, unit);
        remember(id, info);
      } else if (t && old && (old.scan !== t.scan || old.seq !== t.seq)) {
        // An unchanged row only moves: its scan and seq, and its order entry.
        const info = { ...old, scan: t.scan, seq: t.seq };
        add(pk, [
          { a: 'merge', rk: dataKey(id), props: { scan: t.scan, seq: t.seq } },
          { a: 'del', rk: orderKey(old.scan, old.seq, id) },
          { a: 'put', rk: orderKey(t.scan, t.seq, id), props: orderProps(info) },
        ]);
        remember(id, info);
      }
    }
    if (units.size === 0) return;
    const groups: ScanGroup[] = [...units].map(([pk, list]) => ({ pk, units: list }));
    batches += call<number>('scanCommit', { groups, oldBlobs });
  }

  const rows: TablesScanRows = {
    get batches() {
      return batches;
    },

    stage(source, credentials) {
      if (credentials.length === 0) return;
      // Table names are letters and digits: the prefix, when it was made (base 36), and a random tail.
      staging ??= { name: `${stagingPrefix}${Date.now().toString(36).padStart(9, '0')}${randomBytes(3).toString('hex')}`, created: false, next: new Map() };
      let seq = staging.next.get(source) ?? 0;
      const list = credentials.map((c) => ({ rk: `${pad(source, 6)}|${pad(++seq, 10)}`, text: JSON.stringify(c) }));
      call('scanStage', { q: { name: staging.name, create: !staging.created, rows: list } });
      staging.created = true;
      staging.next.set(source, seq);
    },

    staged(source, afterSeq, limit) {
      if (!staging?.created) return [];
      const got = call<Array<{ rk: string; text: string }>>('scanStaged', {
        q: { name: staging.name, from: `${pad(source, 6)}|${pad(afterSeq, 10)}`, to: `${pad(source, 6)}}`, limit },
      });
      return got.map((g) => ({ seq: Number(g.rk.slice(7)), credential: JSON.parse(g.text) as Credential, text: g.text }));
    },

    unstage(source) {
      if (!staging?.created) return;
      call('scanUnstage', { q: { name: staging.name, from: `${pad(source, 6)}|`, to: `${pad(source, 6)}}` } });
    },

    clearStaging() {
      const own = staging?.created ? staging.name : undefined;
      staging = undefined;
      known.clear();
      call('scanDropStaging', { q: { ...(own ? { own } : {}), prefix: stagingPrefix, staleBefore: Date.now() - STALE_STAGING_MS } });
    },

    stamps(ids) {
      const out = new Map<string, RowStamp>();
      if (ids.length === 0) return out;
      for (const info of lookUp(ids)) out.set(info.id, { fingerprint: info.fp, contentHash: info.ch });
      return out;
    },

    write(batch) {
      const ids = [...batch.upsert.map((r) => r.id), ...batch.touch.map((t) => t.id)];
      const unknown = ids.filter((id) => !known.has(id));
      if (unknown.length) lookUp(unknown);
      // One id twice in a call (never from the scanner) goes in a later round, in order, as SQLite would apply it.
      let round: Parameters<typeof commitRound>[0] = [];
      const inRound = new Set<string>();
      const push = (entry: Parameters<typeof commitRound>[0][number], id: string) => {
        if (inRound.has(id)) {
          commitRound(round);
          round = [];
          inRound.clear();
        }
        inRound.add(id);
        round.push(entry);
      };
      for (const r of batch.upsert) push({ upsert: r }, r.id);
      for (const t of batch.touch) push({ touch: t }, t.id);
      commitRound(round);
    },

    get(id) {
      const r = call<RowEntity | undefined>('scanGet', { pk: rowPartition(id), rowId: id });
      return r ? toRow(r) : undefined;
    },

    page(query, after, limit) {
      if (limit <= 0 || query.kinds?.length === 0) return [];
      const pks = partitionsOfKinds(query.kinds ?? (query.kind ? [query.kind] : undefined));
      if (query.order === 'id') {
        // The rows themselves, by key: a touch merges scan and seq into them but never moves them.
        const filter = [filterOf(query), ...(query.seenSince !== undefined ? [`scan ge ${Math.floor(query.seenSince)}`] : [])].filter(Boolean).join(' and ');
        const got = call<RowEntity[]>('scanPage', { q: { pks, from: after ? dataKey(after.id) : DATA_START, exclusive: after !== undefined, filter, limit, byId: true } });
        return got.map(toRow);
      }
      const since = query.seenSince !== undefined ? orderFrom(query.seenSince) : 'o|';
      const cursor = after ? orderKey(after.scan, after.seq, after.id) : undefined;
      const exclusive = cursor !== undefined && cursor >= since;
      const got = call<RowEntity[]>('scanPage', { q: { pks, from: exclusive ? cursor : since, exclusive, filter: filterOf(query), limit } });
      return got.map(toRow);
    },

    unseen(scan, afterId, limit) {
      return call<Array<{ id: string; estate: Estate; scope: string }>>('scanUnseen', { q: { pks: partitionsOfKinds(undefined), scan, afterId, limit } });
    },

    delete(ids) {
      if (ids.length === 0) return;
      for (const id of ids) remember(id, null);
      call('scanDelete', { groups: groupByPartition(ids) });
    },

    lastScan() {
      return call<number>('scanLast', { pks: partitionsOfKinds(undefined) });
    },
  };
  return rows;
}
