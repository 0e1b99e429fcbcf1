import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runAuditCli, verifyAuditLines } from '../../src/cli/audit.js';
import { auditCommand } from '../../src/commands/audit.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } } };
}

function storeWithEntries(path: string) {
  const store = openSqliteStore({ path });
  store.appendAudit({ action: 'approval.granted', actor: { aadObjectId: 'a1', name: 'Alex' }, subject: 'databricks-pat:ws-prod:1', result: 'ok', details: { planHash: 'abc', token: 'dapi0123456789abcdef0123456789abcdef' } });
  store.appendAudit({ action: 'job.step.create.done', subject: 'databricks-pat:ws-prod:1', result: 'ok', details: { newTokenId: 't2' } });
  store.appendAudit({ action: 'approval.refused', actor: { aadObjectId: 'a3', name: 'Lee Gu' }, subject: 'databricks-pat:ws-dev:2', result: 'refused', details: { code: 'not-approver' } });
  return store;
}

describe('keywarden audit --export / --verify', () => {
  it('exports JSON lines with the hash chain, verifies them, and exits non-zero on a broken chain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-audit-'));
    dirs.push(dir);
    const db = join(dir, 'kw.db');
    storeWithEntries(db).close();
    const file = join(dir, 'audit.jsonl');

    const exp = io();
    expect(await runAuditCli(['--export', file], { openStore: () => openSqliteStore({ path: db }), io: exp.io })).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ seq: 1, action: 'approval.granted', prevHash: '0'.repeat(64) });
    expect(lines[1]!.prevHash).toBe(lines[0]!.hash);
    expect(readFileSync(file, 'utf8')).not.toContain('dapi0123456789abcdef');

    const ok = io();
    expect(await runAuditCli(['--verify', file], { openStore: () => openSqliteStore({ path: db }), io: ok.io })).toBe(0);
    expect(ok.out.join('')).toMatch(/entries checked: 3 \(#1–#3\)[\s\S]*result: INTACT/);

    const tampered = readFileSync(file, 'utf8').replace('not-approver', 'approved');
    writeFileSync(file, tampered);
    const bad = io();
    expect(await runAuditCli(['--verify', file], { openStore: () => openSqliteStore({ path: db }), io: bad.io })).toBe(1);
    expect(bad.out.join('')).toMatch(/result: BROKEN at #3 — #3 was changed after it was written/);
    expect(verifyAuditLines(tampered.split('\n').filter((l, i) => i !== 1).join('\n'))).toMatchObject({ ok: false, brokenAt: 3, reason: '#2 is missing before #3: a record was deleted or reordered' });

    const store = io();
    expect(await runAuditCli(['--verify'], { openStore: () => openSqliteStore({ path: db }), io: store.io })).toBe(0);
    expect(await runAuditCli(['--bogus'], { openStore: () => openSqliteStore({ path: db }), io: io().io })).toBe(2);

    const stdout = io();
    expect(await runAuditCli(['--export'], { openStore: () => openSqliteStore({ path: db }), io: stdout.io })).toBe(0);
    expect(stdout.out.join('').trim().split('\n')).toHaveLength(3);
  });

  it('/audit shows recent entries, filtered by credential', async () => {
    const store = storeWithEntries(':memory:');
    const all = await auditCommand({ store }).handle('', {} as never);
    expect(all.kind === 'text' && all.text).toMatch(/Latest 3 audit entries \(hash chain intact/);
    const one = await auditCommand({ store }).handle('databricks-pat:ws-dev:2', {} as never);
    expect(one.kind === 'text' && one.text).toMatch(/approval.refused · refused · Lee Gu/);
    expect(one.kind === 'text' && one.text).not.toMatch(/approval.granted/);
    const none = await auditCommand({ store }).handle('nothing-like-this', {} as never);
    expect(none.kind === 'text' && none.text).toMatch(/No audit entries/);
    store.close();
  });

  it('/audit reads only the records written since its last check, and still reports an edited one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-audit-inc-'));
    dirs.push(dir);
    const path = join(dir, 'audit.db');
    const store = storeWithEntries(path);
    const audit = auditCommand({ store });
    const text = async () => { const r = await audit.handle('', {} as never); return r.kind === 'text' ? r.text : ''; };
    expect(await text()).toMatch(/\(hash chain intact \(3 entries\)\)/);
    store.appendAudit({ action: 'approval.granted', subject: 'databricks-pat:ws-dev:2', result: 'ok' });
    store.appendAudit({ action: 'job.step.create.done', subject: 'databricks-pat:ws-dev:2', result: 'ok' });
    expect(await text()).toMatch(/\(hash chain intact \(5 entries\)\)/);
    // A record written after the last check, edited with raw SQL (the append-only guard dropped).
    store.appendAudit({ action: 'approval.refused', subject: 'databricks-pat:ws-dev:2', result: 'refused' });
    const raw = new Database(path);
    raw.exec('DROP TRIGGER audit_log_no_update');
    raw.prepare("UPDATE audit_log SET result = 'ok' WHERE seq = 6").run();
    expect(await text()).toMatch(/hash chain BROKEN at #6/);
    // The last record an earlier check passed, edited: the next check walks the whole log again.
    raw.prepare("UPDATE audit_log SET result = 'refused' WHERE seq = 6").run();
    expect(await text()).toMatch(/\(hash chain intact \(6 entries\)\)/);
    raw.prepare("UPDATE audit_log SET result = 'info' WHERE seq = 6").run();
    expect(await text()).toMatch(/hash chain BROKEN at #6/);
    raw.close();
    store.close();
  });
});
