import { TableClient } from '@azure/data-tables';
import type { RunningKeywarden } from '../../src/cli/start.js';

/**
 * The settings/store-format row written at the protocol edge, the way the Azure Tables store encodes a record
 * (src/store/tables/rows.ts and values.ts): partition "state", row key "settings|<hex id>", meta {v,c,u}, value in v0.
 * What a newer release's replica would have written.
 */

export const NEWER = { format: 2, version: '9.9.9', host: 'replica-b', pid: 4242 };

export async function writeFormatRow(connectionString: string, table: string, record: Record<string, unknown>): Promise<void> {
  const client = TableClient.fromConnectionString(connectionString, table, { allowInsecureConnection: true });
  await client.createTable().catch(() => undefined);
  const rowKey = `settings|${Buffer.from('store-format', 'utf8').toString('hex')}`;
  const current = await client.getEntity<{ meta: string }>('state', rowKey).catch(() => undefined);
  const now = Date.now();
  const old = current ? JSON.parse(current.meta) as { v: number; c: number } : undefined;
  const meta = { v: (old?.v ?? 0) + 1, c: old?.c ?? now, u: now };
  const text = JSON.stringify(record);
  await client.upsertEntity({ partitionKey: 'state', rowKey, id: 'store-format', meta: JSON.stringify(meta), n: 1, v0: text }, 'Replace');
}

/** A replica's /readyz: its status and every check. */
export async function readyz(r: RunningKeywarden): Promise<{ status: number; checks: Array<{ name: string; ok: boolean; detail?: string }> }> {
  const res = await fetch(`${r.server.url}/readyz`);
  return { status: res.status, checks: (await res.json() as { checks: Array<{ name: string; ok: boolean; detail?: string }> }).checks };
}
