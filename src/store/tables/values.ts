import { randomUUID } from 'node:crypto';
import type { TableEntity } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { CHUNK_CHARS, MAX_INLINE_CHUNKS } from './rows.js';

/**
 * A JSON value on an entity (worker side): split over string properties v0…vN while it fits the entity, else in a new
 * blob named by the entity (the entity keeps the blob's name). Shared by the records and the scan rows.
 */

export type Entity = TableEntity<Record<string, unknown>>;

/** Sets the value properties on `e`; a blob it had to upload is added to `uploaded` (deleted again if the write fails). */
export async function putValue(container: ContainerClient, e: Entity, text: string, uploaded: string[], signal: AbortSignal): Promise<void> {
  if (text.length > CHUNK_CHARS * MAX_INLINE_CHUNKS) {
    const name = `values/${e.partitionKey}/${e.rowKey}/${randomUUID()}`;
    await container.getBlockBlobClient(name).upload(text, Buffer.byteLength(text), { abortSignal: signal });
    uploaded.push(name);
    e.blob = name;
    e.n = 0;
    return;
  }
  const n = Math.max(1, Math.ceil(text.length / CHUNK_CHARS));
  e.n = n;
  for (let i = 0; i < n; i++) e[`v${i}`] = text.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
}

/** The value text of an entity read with its value properties. */
export async function getValue(container: ContainerClient, e: Entity, signal: AbortSignal): Promise<string> {
  if (typeof e.blob === 'string' && e.blob) {
    const buffer = await container.getBlockBlobClient(e.blob).downloadToBuffer(0, undefined, { abortSignal: signal });
    return buffer.toString('utf8');
  }
  return Array.from({ length: Number(e.n ?? 0) }, (_, i) => String(e[`v${i}`] ?? '')).join('');
}

export async function deleteBlobs(container: ContainerClient, names: readonly string[], signal: () => AbortSignal): Promise<void> {
  await Promise.all(names.map((n) => container.getBlockBlobClient(n).deleteIfExists({ abortSignal: signal() }).catch(() => undefined)));
}

/** An OData string literal. */
export function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
