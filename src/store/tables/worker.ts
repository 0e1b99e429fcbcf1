import { type MessagePort, workerData } from 'node:worker_threads';
import { TableClient, TableServiceClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import type { AzureConfig } from '../../providers/azure-credential.js';
import type { CommitResult, RowMeta, RowOp, ServerRow } from './rows.js';
import type { ScanGroup } from './scan-keys.js';
import * as scan from './scan-worker.js';
import { deleteBlobs as dropBlobs, getValue, putValue, quote } from './values.js';

/**
 * The worker thread behind the Azure Tables store: the real @azure/data-tables and @azure/storage-blob clients, one
 * request at a time. The main thread blocks on `flag` until the answer is on `port` (see blocking-call.ts).
 */

export interface TablesConnection {
  connectionString?: string;
  tableEndpoint?: string;
  blobEndpoint?: string;
  table: string;
  container: string;
  /** For endpoints without a connection string: the production credential (azure.credential). */
  azure?: AzureConfig;
  /** Per call, so a hung request fails instead of blocking forever. */
  requestTimeoutMs: number;
}

interface WorkerInput { port: MessagePort; flag: SharedArrayBuffer }
const { port, flag } = workerData as WorkerInput;
const signalFlag = new Int32Array(flag);

/** One worker serves every store of the process (they take turns: each call blocks its caller). */
interface Connection { table: TableClient; container: ContainerClient; service: TableServiceClient; tableNamed(name: string): TableClient; timeoutMs: number }
const connections = new Map<number, Connection>();
let nextConnection = 0;

async function connect(c: TablesConnection): Promise<Connection> {
  if (c.connectionString) {
    const cs = c.connectionString;
    return {
      table: TableClient.fromConnectionString(cs, c.table, { allowInsecureConnection: true }),
      container: BlobServiceClient.fromConnectionString(cs).getContainerClient(c.container),
      service: TableServiceClient.fromConnectionString(cs, { allowInsecureConnection: true }),
      tableNamed: (name) => TableClient.fromConnectionString(cs, name, { allowInsecureConnection: true }),
      timeoutMs: c.requestTimeoutMs,
    };
  }
  // Loaded only here: @azure/identity is big, and azurite connections never need it.
  const { createAzureCredential } = await import('../../providers/azure-credential.js');
  const credential = createAzureCredential(c.azure ?? { credential: { type: 'default' } } as AzureConfig);
  return {
    table: new TableClient(c.tableEndpoint!, c.table, credential),
    container: new BlobServiceClient(c.blobEndpoint!, credential).getContainerClient(c.container),
    service: new TableServiceClient(c.tableEndpoint!, credential),
    tableNamed: (name) => new TableClient(c.tableEndpoint!, name, credential),
    timeoutMs: c.requestTimeoutMs,
  };
}

let current: Connection;
let table: TableClient;
let container: ContainerClient;
const signal = (): AbortSignal => AbortSignal.timeout(current.timeoutMs);
const status = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;
/** 409 exists, 412 ETag changed, 404 gone meanwhile: someone else won the write. */
const isConflict = (err: unknown): boolean => [404, 409, 412].includes(status(err) ?? 0);

async function init(data: TablesConnection): Promise<number> {
  current = await connect(data);
  ({ table, container } = current);
  try {
    await table.createTable({ abortSignal: signal() });
  } catch (err) {
    if (status(err) !== 409) throw err;
  }
  try {
    await container.createIfNotExists({ abortSignal: signal() });
  } catch (err) {
    if (status(err) !== 409) throw err;
  }
  connections.set(++nextConnection, current);
  return nextConnection;
}

async function toRow(e: TableEntity<Record<string, unknown>>, values: boolean): Promise<ServerRow> {
  const row: ServerRow = { rk: e.rowKey!, etag: e.etag as string, id: String(e.id ?? ''), meta: JSON.parse(String(e.meta ?? '{"v":0,"c":0,"u":0}')) as RowMeta };
  if (e.tomb === true) row.tombstone = true;
  if (typeof e.blob === 'string' && e.blob) row.blob = e.blob;
  if (values && !row.tombstone) row.valueText = await getValue(container, e, signal());
  return row;
}

async function read(pk: string, rk: string): Promise<ServerRow | undefined> {
  try {
    const e = await table.getEntity<Record<string, unknown>>(pk, rk, { abortSignal: signal() });
    return await toRow(e as TableEntity<Record<string, unknown>>, true);
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
}

async function query(pk: string, from: string, to: string, values: boolean, limit?: number): Promise<ServerRow[]> {
  const rows: ServerRow[] = [];
  const filter = `PartitionKey eq ${quote(pk)} and RowKey ge ${quote(from)} and RowKey lt ${quote(to)}`;
  const select = values ? undefined : ['RowKey', 'id', 'meta', 'tomb'];
  for await (const e of table.listEntities<Record<string, unknown>>({ queryOptions: { filter, ...(select ? { select } : {}) }, abortSignal: signal() })) {
    const row = await toRow(e as TableEntity<Record<string, unknown>>, values);
    if (row.tombstone) continue;
    rows.push(row);
    if (limit !== undefined && rows.length >= limit) break;
  }
  return rows;
}

/** The entity for a write: the value split over properties v0…vN, or in a new blob when it is too big for an entity. */
async function entityFor(pk: string, op: RowOp, uploaded: string[]): Promise<TableEntity<Record<string, unknown>>> {
  const e: TableEntity<Record<string, unknown>> = { partitionKey: pk, rowKey: op.rk, id: op.id ?? '', meta: JSON.stringify(op.meta) };
  await putValue(container, e, op.valueText ?? 'null', uploaded, signal());
  return e;
}

const deleteBlobs = (names: string[]): Promise<void> => dropBlobs(container, names, signal);

async function commit(pk: string, ops: RowOp[]): Promise<CommitResult> {
  const uploaded: string[] = [];
  const etags: Record<string, string> = {};
  const tombstoned: Array<{ rk: string }> = [];
  try {
    if (ops.length === 1) {
      const op = ops[0]!;
      if (op.kind === 'delete') {
        await table.deleteEntity(pk, op.rk, { etag: op.etag, abortSignal: signal() });
      } else {
        const e = await entityFor(pk, op, uploaded);
        const res = op.kind === 'create'
          ? await table.createEntity(e, { abortSignal: signal() })
          : await table.updateEntity(e, 'Replace', { etag: op.etag, abortSignal: signal() });
        if (res.etag) etags[op.rk] = res.etag;
      }
    } else {
      const actions: TransactionAction[] = [];
      for (const op of ops) {
        if (op.kind === 'create') actions.push(['create', await entityFor(pk, op, uploaded)]);
        else if (op.kind === 'replace') actions.push(['update', await entityFor(pk, op, uploaded), 'Replace', { etag: op.etag }]);
        else {
          // The SDK sends batch deletes with If-Match "*": a tombstone written with the row's ETag keeps the delete conditional.
          actions.push(['update', { partitionKey: pk, rowKey: op.rk, tomb: true, id: op.id ?? '', meta: JSON.stringify(op.meta ?? { v: 0, c: 0, u: 0 }) }, 'Replace', { etag: op.etag }]);
          tombstoned.push({ rk: op.rk });
        }
      }
      const res = await table.submitTransaction(actions, { abortSignal: signal() });
      for (const sub of res.subResponses) if (sub.rowKey && sub.etag) etags[sub.rowKey] = sub.etag;
    }
  } catch (err) {
    await deleteBlobs(uploaded);
    if (isConflict(err)) return { ok: false, conflict: (err as Error).message.split('\n')[0]!.slice(0, 200) };
    throw err;
  }
  // Committed: old blobs and tombstones are garbage now (best effort; readers skip tombstones, writers replace them).
  await deleteBlobs(ops.flatMap((op) => (op.oldBlob ? [op.oldBlob] : [])));
  for (const t of tombstoned) {
    await table.deleteEntity(pk, t.rk, { etag: etags[t.rk] ?? '*', abortSignal: signal() }).catch(() => undefined);
  }
  return { ok: true, etags };
}

type Request = { id: number; conn: number } & (
  | { op: 'init'; data: TablesConnection }
  | { op: 'read'; pk: string; rk: string }
  | { op: 'query'; pk: string; from: string; to: string; values: boolean; limit?: number }
  | { op: 'commit'; pk: string; ops: RowOp[] }
  | { op: 'disconnect' }
  | { op: 'scanFind'; groups: Array<{ pk: string; ids: string[] }> }
  | { op: 'scanGet'; pk: string; rowId: string }
  | { op: 'scanCommit'; groups: ScanGroup[]; oldBlobs: string[] }
  | { op: 'scanDelete'; groups: Array<{ pk: string; ids: string[] }> }
  | { op: 'scanPage'; q: Parameters<typeof scan.page>[1] }
  | { op: 'scanUnseen'; q: Parameters<typeof scan.unseen>[1] }
  | { op: 'scanLast'; pks: string[] }
  | { op: 'scanStage'; q: Parameters<typeof scan.stage>[1] }
  | { op: 'scanStaged'; q: Parameters<typeof scan.staged>[1] }
  | { op: 'scanUnstage'; q: Parameters<typeof scan.unstage>[1] }
  | { op: 'scanDropStaging'; q: Parameters<typeof scan.dropStaging>[1] });

async function handle(req: Request): Promise<unknown> {
  if (req.op === 'init') return init(req.data);
  const conn = connections.get(req.conn);
  if (!conn) throw new Error(`store connection ${req.conn} is closed`);
  current = conn;
  ({ table, container } = conn);
  switch (req.op) {
    case 'read': return read(req.pk, req.rk);
    case 'query': return query(req.pk, req.from, req.to, req.values, req.limit);
    case 'commit': return commit(req.pk, req.ops);
    case 'disconnect': return connections.delete(req.conn);
  }
  const ctx: scan.ScanContext = { ...conn, signal };
  switch (req.op) {
    case 'scanFind': return scan.find(ctx, req.groups);
    case 'scanGet': return scan.get(ctx, req.pk, req.rowId);
    case 'scanCommit': return scan.commit(ctx, req.groups, req.oldBlobs);
    case 'scanDelete': return scan.remove(ctx, req.groups);
    case 'scanPage': return scan.page(ctx, req.q);
    case 'scanUnseen': return scan.unseen(ctx, req.q);
    case 'scanLast': return scan.lastScan(ctx, req.pks);
    case 'scanStage': return scan.stage(ctx, req.q);
    case 'scanStaged': return scan.staged(ctx, req.q);
    case 'scanUnstage': return scan.unstage(ctx, req.q);
    case 'scanDropStaging': return scan.dropStaging(ctx, req.q);
  }
}

// One request at a time: a call that timed out on the caller's side must not overlap the next one.
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: Request) => {
  queue = queue.then(() => handle(req)).then(
    (value) => ({ id: req.id, ok: true, value }),
    (err: unknown) => ({
      id: req.id, ok: false,
      error: { message: (err as Error)?.message ?? String(err), code: (err as { code?: string }).code, statusCode: status(err) },
    }),
  ).then((answer) => {
    port.postMessage(answer);
    Atomics.store(signalFlag, 0, 1);
    Atomics.notify(signalFlag, 0);
  });
});
