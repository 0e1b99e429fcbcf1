/**
 * `keywarden audit --export [file]` writes the audit log as JSON lines, each with its hash chain fields;
 * `keywarden audit --verify [file]` checks the chain (of the store, or of an exported file) and exits 1 when broken.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { loadConfig } from '../config/load.js';
import { AUDIT_GENESIS_HASH, auditHash, openSqliteStore } from '../store/sqlite.js';
import type { AuditRecord, Store } from '../store/store.js';

export interface AuditCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export type ChainCheck = { ok: true; count: number } | { ok: false; brokenAt: number; count: number; reason: string };

/** One JSON line per record, oldest first, with seq / prevHash / hash so the file can be verified on its own. */
export function auditToJsonLines(records: AuditRecord[]): string {
  return records.map((r) => JSON.stringify({
    seq: r.seq, at: r.at, action: r.action, actor: r.actor, subject: r.subject, result: r.result,
    details: r.details, prevHash: r.prevHash, hash: r.hash,
  })).join('\n') + (records.length ? '\n' : '');
}

/** Recomputes the chain over exported lines: the first bad line (edited, removed, reordered) is reported. */
export function verifyAuditLines(text: string): ChainCheck {
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  let prevHash = AUDIT_GENESIS_HASH;
  let count = 0;
  for (const [i, line] of lines.entries()) {
    count = i + 1;
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
    } catch {
      return { ok: false, brokenAt: count, count: lines.length, reason: `line ${count} is not JSON` };
    }
    if (record.seq !== count) return { ok: false, brokenAt: count, count: lines.length, reason: `line ${count} has seq ${record.seq}; a record is missing or out of order` };
    if (record.prevHash !== prevHash) return { ok: false, brokenAt: record.seq, count: lines.length, reason: `seq ${record.seq} does not link to the previous record` };
    if (auditHash(prevHash, record) !== record.hash) return { ok: false, brokenAt: record.seq, count: lines.length, reason: `seq ${record.seq} was changed after it was written` };
    prevHash = record.hash;
  }
  return { ok: true, count };
}

const USAGE = 'usage: keywarden audit --export [file] | --verify [file]';

/** Runs the audit subcommand; returns the process exit code (0 ok, 1 broken chain or failure, 2 usage). */
export async function runAuditCli(args: string[], deps: { openStore: () => Store; io?: AuditCliIo }): Promise<number> {
  const io = deps.io ?? { stdout: process.stdout, stderr: process.stderr };
  const [flag, file, ...rest] = args;
  if ((flag !== '--export' && flag !== '--verify') || rest.length > 0 || (file?.startsWith('--') ?? false)) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (flag === '--verify' && file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      io.stderr.write(`cannot read ${file}: ${(err as Error).message} — give the path of a file written by "keywarden audit --export"\n`);
      return 1;
    }
    return report(verifyAuditLines(text), io, file);
  }
  let store: Store;
  try {
    store = deps.openStore();
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (flag === '--verify') {
      const check = store.verifyAudit();
      return report(check.ok ? check : { ...check, reason: `seq ${check.brokenAt} does not match its hash` }, io, 'the store');
    }
    const text = auditToJsonLines(store.listAudit());
    if (!file) {
      io.stdout.write(text);
      return 0;
    }
    const out = createWriteStream(file, { encoding: 'utf8' });
    out.end(text);
    await once(out, 'finish');
    io.stderr.write(`wrote ${text ? text.split('\n').length - 1 : 0} audit records to ${file}\n`);
    return 0;
  } finally {
    store.close();
  }
}

function report(check: ChainCheck, io: AuditCliIo, what: string): number {
  if (check.ok) {
    io.stdout.write(`audit chain intact: ${check.count} records in ${what}\n`);
    return 0;
  }
  io.stdout.write(`audit chain BROKEN in ${what} at seq ${check.brokenAt} (${check.reason}); ${check.count} records checked\n`);
  return 1;
}

/** `keywarden audit …` entry for src/cli/main.ts: opens the configured store (--config <file> or the default). */
export async function run(argv: string[]): Promise<number> {
  const args: string[] = [];
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') configPath = argv[++i];
    else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length);
    else if (arg !== '--sandbox') args.push(arg);
  }
  return runAuditCli(args, {
    openStore: () => {
      const { config } = loadConfig({ env: process.env, ...(configPath ? { path: configPath } : {}) });
      return openSqliteStore({ path: config.store.path });
    },
  });
}
