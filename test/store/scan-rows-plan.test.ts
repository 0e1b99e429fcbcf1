import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runMigrations } from '../../src/store/migrations.js';
import { createSqliteScanRows, type RowOrder, type RowQuery } from '../../src/store/scan-rows.js';

/**
 * Every page the views ask SQLite for walks an index in the page's order (issue 14): none sorts the rows that match
 * (a kind alone, or a kind IN list, used to sort every remaining row of those kinds on each page).
 */

/** The query plans of the statements one page ran. */
function plansOf(query: RowQuery): string[] {
  const db = new Database(':memory:');
  runMigrations(db, 0);
  const statements: string[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    if (sql.startsWith('SELECT * FROM scan_credentials')) statements.push(sql);
    return prepare(sql);
  }) as typeof db.prepare;
  createSqliteScanRows(db).page(query, { scan: 1, seq: 1, id: 'databricks-pat:ws:a' }, 500);
  const plans = statements.map((sql) => (prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array.from(sql.matchAll(/\?/g), () => 1)) as Array<{ detail: string }>)
    .map((r) => r.detail).join(' | '));
  db.close();
  return plans;
}

const SHAPES: Array<[string, RowQuery]> = [
  ['every row', { seenSince: 1 }],
  ['relevant rows (alerts)', { seenSince: 1, relevantOnly: true }],
  ['rows with findings (/findings)', { seenSince: 1, withFindings: true }],
  ['one estate', { seenSince: 1, estate: 'entra' }],
  ['expiring (the latest state)', { expiresBefore: 5 }],
  ['a kind alone', { seenSince: 1, kind: 'keyvault-secret' }],
  ['kind IN (...)', { seenSince: 1, kinds: ['entra-password', 'entra-certificate'] }],
  ['a kind in one scope', { seenSince: 1, kind: 'databricks-pat', scope: 'ws' }],
];

describe.each(['id', 'scan'] satisfies RowOrder[])('scan row pages in %s order', (order) => {
  it.each(SHAPES)('%s: an index in the page order, no sort', (what, query) => {
    const plans = plansOf({ ...query, order });
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) {
      expect(plan).toMatch(/USING (COVERING )?INDEX/);
      // Scan order in one scope still sorts that scope's rows (a workspace, not the estate); readers page by id.
      if (order === 'id' || what !== 'a kind in one scope') expect(plan).not.toContain('TEMP B-TREE');
    }
  });
});
