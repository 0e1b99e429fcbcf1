import type { TableClient, TableServiceClient, TransactionAction } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import {
  DATA_END, INFO_PROPS, ORDER_END, dataKey, orderFrom, orderKey, type RowEntity, type RowInfo, type ScanGroup, type ScanOp,
} from './scan-keys.js';
import { deleteBlobs, getValue, putValue, quote, type Entity } from './values.js';
import { mapBounded } from '../../providers/bounded.js';

/**
 * The scan rows' storage calls, worker side: each function is one request from the calling thread and runs its HTTP
 * requests concurrently (batches, look-ups), so a page costs the caller one blocking round trip.
 */

export interface ScanContext {
  table: TableClient;
  container: ContainerClient;
  service: TableServiceClient;
  tableNamed(name: string): TableClient;
  signal(): AbortSignal;
}

const MAX_OPS = 100;
/** Entity group transactions carry at most 4 MiB; a batch stops well before. */
const MAX_BATCH_CHARS = 2_500_000;
/** Requests at once per call: the SDK's keep-alive agent has no socket cap; a partition serves ~2,000 entities/s. */
const IN_FLIGHT = 32;
const status = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

async function list(client: TableClient, ctx: ScanContext, filter: string, select: string[] | undefined, limit: number): Promise<Entity[]> {
  const out: Entity[] = [];
  if (limit <= 0) return out;
  const pages = client.listEntities<Record<string, unknown>>({ queryOptions: { filter, ...(select ? { select } : {}) }, abortSignal: ctx.signal() })
    .byPage({ maxPageSize: Math.min(limit, 1000) });
  for await (const page of pages) {
    for (const e of page) {
      out.push(e as Entity);
      if (out.length >= limit) return out;
    }
  }
  return out;
}

const range = (pk: string, from: string, exclusive: boolean, to: string): string =>
  `PartitionKey eq ${quote(pk)} and RowKey ${exclusive ? 'gt' : 'ge'} ${quote(from)} and RowKey lt ${quote(to)}`;

function infoOf(pk: string, e: Entity): RowInfo {
  return {
    pk, id: String(e.id), estate: String(e.estate), scope: String(e.scope), kind: String(e.kind), scan: Number(e.scan), seq: Number(e.seq),
    ...(typeof e.e === 'string' ? { e: e.e } : {}), fp: String(e.fp ?? ''), ch: String(e.ch ?? ''), rel: e.rel === true, fc: Number(e.fc ?? 0),
    ...(typeof e.blob === 'string' && e.blob ? { blob: e.blob } : {}),
  };
}

/**
 * Rows by data key: point reads, IN_FLIGHT at a time. A filter of OR'ed row keys would be fewer requests, but Tables
 * answers it with a scan of the partition; a point read costs the same whatever the partition holds.
 */
async function lookup(ctx: ScanContext, groups: ReadonlyArray<{ pk: string; rks: readonly string[] }>, values: boolean): Promise<Map<string, { info: RowInfo; text?: string }>> {
  const keys = groups.flatMap(({ pk, rks }) => rks.map((rk) => ({ pk, rk })));
  const found = new Map<string, { info: RowInfo; text?: string }>();
  await mapBounded(keys, IN_FLIGHT, async ({ pk, rk }) => {
    let e: Entity;
    try {
      e = await ctx.table.getEntity<Record<string, unknown>>(pk, rk, { abortSignal: ctx.signal(), ...(values ? {} : { queryOptions: { select: INFO_PROPS } }) }) as Entity;
    } catch (err) {
      if (status(err) === 404) return;
      throw err;
    }
    found.set(`${pk}\u0000${rk}`, { info: infoOf(pk, e), ...(values ? { text: await getValue(ctx.container, e, ctx.signal()) } : {}) });
  });
  return found;
}

export async function find(ctx: ScanContext, groups: Array<{ pk: string; ids: string[] }>): Promise<RowInfo[]> {
  const found = await lookup(ctx, groups.map(({ pk, ids }) => ({ pk, rks: ids.map(dataKey) })), false);
  return [...found.values()].map((f) => f.info);
}

export async function get(ctx: ScanContext, pk: string, id: string): Promise<RowEntity | undefined> {
  try {
    const e = await ctx.table.getEntity<Record<string, unknown>>(pk, dataKey(id), { abortSignal: ctx.signal() }) as Entity;
    const { pk: _pk, ...info } = infoOf(pk, e);
    return { ...info, text: await getValue(ctx.container, e, ctx.signal()) };
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
}

/** Units packed into entity group transactions: at most 100 operations and a few MB each, never splitting a unit. */
function pack(units: ScanOp[][]): ScanOp[][] {
  const batches: ScanOp[][] = [];
  let batch: ScanOp[] = [];
  let chars = 0;
  for (const unit of units) {
    const size = unit.reduce((n, op) => n + 1_000 + ('text' in op && op.text ? op.text.length : 0), 0);
    if (batch.length && (batch.length + unit.length > MAX_OPS || chars + size > MAX_BATCH_CHARS)) {
      batches.push(batch);
      batch = [];
      chars = 0;
    }
    batch.push(...unit);
    chars += size;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

async function entityOf(ctx: ScanContext, pk: string, op: ScanOp & { a: 'put' | 'merge' }, uploaded: string[]): Promise<Entity> {
  const e: Entity = { partitionKey: pk, rowKey: op.rk, ...op.props };
  if (op.a === 'put' && op.text !== undefined) await putValue(ctx.container, e, op.text, uploaded, ctx.signal());
  return e;
}

async function runBatch(ctx: ScanContext, pk: string, ops: ScanOp[]): Promise<void> {
  const uploaded: string[] = [];
  try {
    const actions: TransactionAction[] = [];
    for (const op of ops) {
      if (op.a === 'put') actions.push(['upsert', await entityOf(ctx, pk, op, uploaded), 'Replace']);
      else if (op.a === 'merge') actions.push(['update', await entityOf(ctx, pk, op, uploaded), 'Merge']);
      else actions.push(['delete', { partitionKey: pk, rowKey: op.rk }]);
    }
    await ctx.table.submitTransaction(actions, { abortSignal: ctx.signal() });
  } catch (err) {
    await deleteBlobs(ctx.container, uploaded, ctx.signal);
    if (status(err) !== 404) throw err;
    // Someone moved or deleted a row meanwhile: apply the ops one by one, skipping what is gone.
    for (const op of ops) await runOne(ctx, pk, op);
  }
}

async function runOne(ctx: ScanContext, pk: string, op: ScanOp): Promise<void> {
  const uploaded: string[] = [];
  try {
    if (op.a === 'put') await ctx.table.upsertEntity(await entityOf(ctx, pk, op, uploaded), 'Replace', { abortSignal: ctx.signal() });
    else if (op.a === 'merge') await ctx.table.updateEntity(await entityOf(ctx, pk, op, uploaded), 'Merge', { abortSignal: ctx.signal() });
    else await ctx.table.deleteEntity(pk, op.rk, { abortSignal: ctx.signal() });
  } catch (err) {
    await deleteBlobs(ctx.container, uploaded, ctx.signal);
    if (status(err) !== 404) throw err;
  }
}

export async function commit(ctx: ScanContext, groups: ScanGroup[], oldBlobs: string[]): Promise<number> {
  const batches = groups.flatMap(({ pk, units }) => pack(units).map((ops) => ({ pk, ops })));
  await mapBounded(batches, IN_FLIGHT, ({ pk, ops }) => runBatch(ctx, pk, ops));
  await deleteBlobs(ctx.container, oldBlobs, ctx.signal);
  return batches.length;
}

/** Deletes rows with their order entries (read first: the entry's key holds the row's scan and seq). */
export async function remove(ctx: ScanContext, groups: Array<{ pk: string; ids: string[] }>): Promise<void> {
  const infos = await find(ctx, groups);
  const byPk = new Map<string, ScanOp[][]>();
  for (const i of infos) {
    const units = byPk.get(i.pk) ?? [];
    units.push([{ a: 'del', rk: dataKey(i.id) }, { a: 'del', rk: orderKey(i.scan, i.seq, i.id) }]);
    byPk.set(i.pk, units);
  }
  await commit(ctx, [...byPk].map(([pk, units]) => ({ pk, units })), infos.flatMap((i) => (i.blob ? [i.blob] : [])));
}

/**
 * A page in (scan, seq, id) order: the first `limit` order entries after `from` that pass `filter`, merged over the
 * partitions, then their rows. An entry whose row has moved on (a write that lost a race) is skipped, and the page
 * read on, so a short page still means the end. `byId`: the rows' own keys instead (id order; `from` is a data key),
 * which a scan running meanwhile never moves.
 */
export async function page(ctx: ScanContext, q: { pks: string[]; from: string; exclusive: boolean; filter: string; limit: number; byId?: boolean }): Promise<RowEntity[]> {
  const out: RowEntity[] = [];
  let from = q.from;
  let exclusive = q.exclusive;
  while (out.length < q.limit) {
    const want = q.limit - out.length;
    const lists = await Promise.all(q.pks.map(async (pk) => (await list(ctx.table, ctx,
      `${range(pk, from, exclusive, q.byId ? DATA_END : ORDER_END)}${q.filter ? ` and ${q.filter}` : ''}`, ['RowKey', 'id', 'scan', 'seq'], want)).map((e) => ({ pk, e }))));
    const entries = lists.flat().sort((a, b) => (a.e.rowKey! < b.e.rowKey! ? -1 : 1)).slice(0, want);
    if (entries.length === 0) break;
    const rows = await lookup(ctx, [...groupBy(entries.map(({ pk, e }) => ({ pk, rk: dataKey(String(e.id)) })))].map(([pk, rks]) => ({ pk, rks })), true);
    for (const { pk, e } of entries) {
      const row = rows.get(`${pk}\u0000${dataKey(String(e.id))}`);
      if (!row || (!q.byId && (row.info.scan !== Number(e.scan) || row.info.seq !== Number(e.seq)))) continue;
      const { pk: _pk, ...info } = row.info;
      out.push({ ...info, text: row.text ?? '' });
    }
    if (entries.length < want) break;
    from = entries[entries.length - 1]!.e.rowKey!;
    exclusive = true;
  }
  return out;
}

function groupBy(items: Array<{ pk: string; rk: string }>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { pk, rk } of items) out.set(pk, [...(out.get(pk) ?? []), rk]);
  return out;
}

/** Rows a scan did not see, by id. */
export async function unseen(ctx: ScanContext, q: { pks: string[]; scan: number; afterId: string; limit: number }): Promise<Array<{ id: string; estate: string; scope: string }>> {
  const lists = await Promise.all(q.pks.map((pk) => list(ctx.table, ctx,
    `${range(pk, dataKey(q.afterId), true, DATA_END)} and scan lt ${Math.floor(q.scan)}`, ['RowKey', 'id', 'estate', 'scope'], q.limit)));
  return lists.flat().sort((a, b) => (a.rowKey! < b.rowKey! ? -1 : 1)).slice(0, q.limit)
    .map((e) => ({ id: String(e.id), estate: String(e.estate), scope: String(e.scope) }));
}

/** The highest scan with an order entry: gallop up, then halve (a few small queries; Tables cannot read keys backwards). */
export async function lastScan(ctx: ScanContext, pks: string[]): Promise<number> {
  const firstAtLeast = async (scan: number): Promise<number | undefined> => {
    const found = await Promise.all(pks.map((pk) => list(ctx.table, ctx, range(pk, orderFrom(scan), false, ORDER_END), ['RowKey', 'scan'], 1)));
    const scans = found.flat().map((e) => Number(e.scan));
    return scans.length ? Math.min(...scans) : undefined;
  };
  let lo = await firstAtLeast(0);
  if (lo === undefined) return 0;
  // Invariant: an entry has scan lo; none has a scan at or after hi.
  let hi: number;
  for (;;) {
    const m = await firstAtLeast(lo * 2 + 1);
    if (m === undefined) {
      hi = lo * 2 + 1;
      break;
    }
    lo = m;
  }
  while (lo + 1 < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const m = await firstAtLeast(mid);
    if (m === undefined) hi = mid;
    else lo = m;
  }
  return lo;
}

// ---- staging: one table per scan, dropped whole when the scan ends ----

const STAGE_PARTITION = 's';

export async function stage(ctx: ScanContext, q: { name: string; create: boolean; rows: Array<{ rk: string; text: string }> }): Promise<void> {
  const client = ctx.tableNamed(q.name);
  if (q.create) {
    try {
      await client.createTable({ abortSignal: ctx.signal() });
    } catch (err) {
      if (status(err) !== 409) throw err;
    }
  }
  const units = q.rows.map((r): ScanOp[] => [{ a: 'put', rk: r.rk, props: {}, text: r.text }]);
  await mapBounded(pack(units), IN_FLIGHT, async (ops) => {
    const uploaded: string[] = [];
    const actions: TransactionAction[] = [];
    for (const op of ops) {
      const e: Entity = { partitionKey: STAGE_PARTITION, rowKey: op.rk };
      await putValue(ctx.container, e, (op as { text: string }).text, uploaded, ctx.signal());
      actions.push(['upsert', e, 'Replace']);
    }
    await client.submitTransaction(actions, { abortSignal: ctx.signal() });
  });
}

export async function staged(ctx: ScanContext, q: { name: string; from: string; to: string; limit: number }): Promise<Array<{ rk: string; text: string }>> {
  let entities: Entity[];
  try {
    entities = await list(ctx.tableNamed(q.name), ctx, range(STAGE_PARTITION, q.from, true, q.to), undefined, q.limit);
  } catch (err) {
    if (status(err) === 404) return [];
    throw err;
  }
  return Promise.all(entities.map(async (e) => ({ rk: e.rowKey!, text: await getValue(ctx.container, e, ctx.signal()) })));
}

/** Deletes one source's staged credentials (keys `from` to `to`), a hundred per transaction. */
export async function unstage(ctx: ScanContext, q: { name: string; from: string; to: string }): Promise<void> {
  const client = ctx.tableNamed(q.name);
  let entities: Entity[];
  try {
    entities = await list(client, ctx, range(STAGE_PARTITION, q.from, false, q.to), ['RowKey', 'blob'], Number.MAX_SAFE_INTEGER);
  } catch (err) {
    if (status(err) === 404) return;
    throw err;
  }
  const batches = Array.from({ length: Math.ceil(entities.length / MAX_OPS) }, (_, i) => entities.slice(i * MAX_OPS, (i + 1) * MAX_OPS));
  await mapBounded(batches, IN_FLIGHT, (batch) => client.submitTransaction(batch.map((e): TransactionAction => ['delete', { partitionKey: STAGE_PARTITION, rowKey: e.rowKey! }]), { abortSignal: ctx.signal() }));
  await deleteBlobs(ctx.container, entities.flatMap((e) => (typeof e.blob === 'string' && e.blob ? [e.blob] : [])), ctx.signal);
}

/** Drops this store's staging table, and staging tables a stopped replica left behind (older than `staleBefore`). */
export async function dropStaging(ctx: ScanContext, q: { own?: string; prefix: string; staleBefore: number }): Promise<void> {
  const drop = async (name: string) => {
    const blobs: string[] = [];
    try {
      for await (const e of ctx.tableNamed(name).listEntities<Record<string, unknown>>({ queryOptions: { filter: 'blob ne \'\'', select: ['blob'] }, abortSignal: ctx.signal() })) {
        if (typeof e.blob === 'string' && e.blob) blobs.push(e.blob);
      }
      await deleteBlobs(ctx.container, blobs, ctx.signal);
      await ctx.service.deleteTable(name, { abortSignal: ctx.signal() });
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
  };
  if (q.own) await drop(q.own);
  try {
    const filter = `TableName ge ${quote(q.prefix)} and TableName lt ${quote(`${q.prefix}~`)}`;
    for await (const t of ctx.service.listTables({ queryOptions: { filter }, abortSignal: ctx.signal() })) {
      const name = t.name ?? '';
      const made = Number.parseInt(name.slice(q.prefix.length, q.prefix.length + 9), 36);
      if (name !== q.own && Number.isFinite(made) && made < q.staleBefore) await drop(name);
    }
  } catch { /* best effort: a leftover table only costs storage */ }
}
