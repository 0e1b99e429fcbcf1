/**
 * `keywarden audit --export [file]` writes the audit log as JSON lines, each with its hash chain fields;
 * `keywarden audit --verify [file]` checks the chain (of the store, or of an exported file) — with the HMAC key
 * and the anchors from Key Vault when audit.keySecret / audit.anchorSecret are configured — and says what it
 * checked, from when, and what it could not check.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { KeywardenConfig } from '../config/schema.js';
import { redactText } from '../logging/redact.js';
import { connectAuditKeyVault } from '../providers/keyvault/audit-key-vault.js';
import { checkAuditChain, type AuditAnchor, type AuditChainReport } from '../store/audit-chain.js';
import { openSqliteStore } from '../store/sqlite.js';
import { openConfiguredStore } from '../replicas/open.js';
import { systemClock } from '../clock.js';
import { createLogger } from '../logging/logger.js';
import { StoreError, type AuditRecord, type Store } from '../store/store.js';
import { AUDIT_USAGE } from './help.js';

export interface AuditCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export type ChainCheck = { ok: true; count: number } | { ok: false; brokenAt: number; count: number; reason: string };

/** Exit codes: intact and fully checked, broken (or no store), bad usage, intact as far as Key Vault let us check. */
export const EXIT = { intact: 0, broken: 1, usage: 2, incomplete: 3 } as const;

/** One JSON line per record, oldest first, with seq / prevHash / hash (and keyed) so the file can be verified on its own. */
export function auditToJsonLines(records: AuditRecord[]): string {
  return records.map((r) => JSON.stringify({
    seq: r.seq, at: r.at, action: r.action, actor: r.actor, subject: r.subject, result: r.result,
    details: r.details, prevHash: r.prevHash, hash: r.hash, ...(r.keyed ? { keyed: true } : {}),
  })).join('\n') + (records.length ? '\n' : '');
}

function parseLines(text: string): AuditRecord[] | { badLine: number; count: number } {
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  const records: AuditRecord[] = [];
  for (const [i, line] of lines.entries()) {
    try {
      records.push(JSON.parse(line) as AuditRecord);
    } catch {
      return { badLine: i + 1, count: lines.length };
    }
  }
  return records;
}

/** Recomputes the chain over exported lines (unkeyed records only, without a key): the first bad line is reported. */
export function verifyAuditLines(text: string, key?: Buffer): ChainCheck {
  const parsed = parseLines(text);
  if (!Array.isArray(parsed)) return { ok: false, brokenAt: parsed.badLine, count: parsed.count, reason: `line ${parsed.badLine} is not JSON` };
  const report = checkAuditChain(parsed, key ? { key } : {});
  return report.ok ? { ok: true, count: report.count } : { ok: false, brokenAt: report.brokenAt!, count: report.count, reason: report.reason! };
}

/** What Key Vault gave us for this check, and what it could not. */
interface Evidence {
  key?: Buffer;
  keyWhere?: string;
  anchors?: AuditAnchor[];
  anchorsWhere?: string;
  notChecked: string[];
}

export interface AuditCliDeps {
  openStore: () => Store;
  io?: AuditCliIo;
  /** Reads the audit key and the anchors (default: none — an unkeyed check). */
  evidence?: () => Promise<Evidence>;
  /** Shown in the report ("the store at …"). */
  storeName?: string;
}

/** Runs the audit subcommand; returns the process exit code (see EXIT). */
export async function runAuditCli(args: string[], deps: AuditCliDeps): Promise<number> {
  const io = deps.io ?? { stdout: process.stdout, stderr: process.stderr };
  const [flag, file, ...rest] = args;
  if ((flag !== '--export' && flag !== '--verify') || rest.length > 0 || (file?.startsWith('--') ?? false)) {
    io.stderr.write(`keywarden audit: ${flag ? `unknown arguments "${args.join(' ')}"` : 'say --export or --verify'}\n\n${AUDIT_USAGE}`);
    return EXIT.usage;
  }
  if (flag === '--verify') {
    let records: Iterable<AuditRecord> | undefined;
    let store: Store | undefined;
    if (file) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        io.stderr.write(`keywarden audit: cannot read ${file}: ${(err as Error).message} — give the path of a file written by "keywarden audit --export"\n`);
        return EXIT.broken;
      }
      const parsed = parseLines(text);
      if (!Array.isArray(parsed)) {
        io.stdout.write(`audit verify — ${file}\n  result: BROKEN — line ${parsed.badLine} is not JSON\n`);
        return EXIT.broken;
      }
      records = parsed;
    } else {
      try {
        store = deps.openStore();
      } catch (err) {
        io.stderr.write(`keywarden audit: ${redactText((err as Error).message)}\n`);
        return EXIT.broken;
      }
    }
    try {
      const evidence = deps.evidence ? await deps.evidence() : { notChecked: [] };
      const options = { ...(evidence.key ? { key: evidence.key } : {}), ...(evidence.anchors ? { anchors: evidence.anchors } : {}) };
      const report = store ? store.checkAudit(options) : checkAuditChain(records!, options);
      return printReport(report, evidence, io, file ?? deps.storeName ?? 'the store');
    } finally {
      store?.close();
    }
  }
  let store: Store;
  try {
    store = deps.openStore();
  } catch (err) {
    io.stderr.write(`keywarden audit: ${redactText((err as Error).message)}\n`);
    return EXIT.broken;
  }
  try {
    const text = auditToJsonLines(store.listAudit());
    if (!file) {
      io.stdout.write(text);
      return EXIT.intact;
    }
    const out = createWriteStream(file, { encoding: 'utf8' });
    out.end(text);
    await once(out, 'finish');
    io.stderr.write(`wrote ${text ? text.split('\n').length - 1 : 0} audit records to ${file}\n`);
    return EXIT.intact;
  } finally {
    store.close();
  }
}

function printReport(report: AuditChainReport, evidence: Evidence, io: AuditCliIo, what: string): number {
  const lines = [`audit verify — ${what}`];
  lines.push(`  entries checked: ${report.count}${report.count ? ` (#1–#${report.count})` : ''}`);
  if (report.keyedFrom === undefined) {
    lines.push(`  keyed: no keyed entries${evidence.keyWhere ? '' : ' (audit.keySecret is not configured: someone who can edit the database can recompute plain hashes)'}`);
  } else {
    const legacy = report.keyedFrom > 1 ? `; #1–#${report.keyedFrom - 1} legacy, unkeyed (SHA-256)` : '';
    const how = evidence.key ? `HMAC-SHA256 checked with ${evidence.keyWhere}` : 'NOT checked: no key (linkage only)';
    lines.push(`  keyed: from #${report.keyedFrom} (${how})${legacy}`);
  }
  if (evidence.anchors) {
    const latest = report.latestAnchor;
    lines.push(`  anchors: ${report.anchorsChecked} of ${evidence.anchors.length} checked in ${evidence.anchorsWhere}${latest ? `; latest #${latest.seq} written ${Number.isFinite(latest.at) ? new Date(latest.at).toISOString() : '(time unknown)'}` : ' (none written yet)'}`);
  } else if (!evidence.anchorsWhere) {
    lines.push('  anchors: none configured (audit.keySecret / audit.anchorSecret): records deleted from the end cannot be detected');
  }
  for (const n of evidence.notChecked) lines.push(`  NOT CHECKED: ${n}`);
  const incomplete = evidence.notChecked.length > 0 || report.keyedUnchecked > 0;
  if (!report.ok) lines.push(`  result: BROKEN at #${report.brokenAt} — ${report.reason}`);
  else lines.push(`  result: ${incomplete ? 'INTACT as far as checked (see NOT CHECKED)' : 'INTACT'}`);
  io.stdout.write(`${lines.map((l) => redactText(l)).join('\n')}\n`);
  if (!report.ok) return EXIT.broken;
  return incomplete ? EXIT.incomplete : EXIT.intact;
}

/** Reads the key and the anchors from Key Vault; whatever fails is reported as not checked, never thrown. */
export async function keyVaultEvidence(config: KeywardenConfig): Promise<Evidence> {
  const evidence: Evidence = { notChecked: [] };
  let vault;
  try {
    vault = connectAuditKeyVault(config);
  } catch (err) {
    evidence.notChecked.push((err as Error).message);
    return evidence;
  }
  if (!vault) return evidence;
  if (vault.keyWhere) {
    evidence.keyWhere = vault.keyWhere;
    try {
      evidence.key = await vault.readKey();
    } catch (err) {
      evidence.notChecked.push(`the keyed hashes — ${(err as Error).message}`);
    }
  }
  if (vault.anchors) {
    evidence.anchorsWhere = vault.anchors.where;
    try {
      evidence.anchors = await vault.anchors.list();
    } catch (err) {
      evidence.notChecked.push(`truncation (anchors in ${vault.anchors.where}) — could not list them: ${(err as Error).message}; grant secrets List on that vault`);
    }
  }
  return evidence;
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
  const { config } = loadConfig({ env: process.env, ...(configPath ? { path: configPath } : {}) });
  const tables = config.store.type === 'azure-tables' ? config.store.azure : undefined;
  const storeName = tables
    ? `the Azure Tables store (table ${tables.table})`
    : `the store at ${config.store.path === ':memory:' ? ':memory:' : resolve(config.store.path)}`;
  return runAuditCli(args, {
    storeName,
    // Reading the log never creates one: a missing file is "not found", not an empty, intact log.
    openStore: () => {
      if (tables) return openConfiguredStore(config, { clock: systemClock, logger: createLogger({ level: 'warn', name: 'keywarden-audit' }) }).store;
      try {
        return openSqliteStore({ path: config.store.path, mustExist: true });
      } catch (err) {
        if (err instanceof StoreError && err.code === 'STORE_NOT_FOUND') throw new Error(`audit log not found: ${err.message}`);
        throw err;
      }
    },
    evidence: () => keyVaultEvidence(config),
  });
}
