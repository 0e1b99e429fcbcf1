import { pathToFileURL } from 'node:url';
import { systemClock, type Clock } from '../clock.js';
import { loadConfig, type Env } from '../config/load.js';
import type { KeywardenConfig } from '../config/schema.js';
import { credentialView } from '../commands/view.js';
import type { Credential, Finding } from '../domain/credential.js';
import { compareUrgency } from '../domain/expiry.js';
import { eachPage, scanViewOf, yieldToLoop, type ScannedCredential, type ScanResult, type ScanView } from '../domain/scan.js';
import { createLogger } from '../logging/logger.js';
import { redactText } from '../logging/redact.js';
import { startSandboxForKeywarden, type SandboxClouds } from '../sandbox/estate.js';
import { createScanner } from '../scanner/scanner.js';
import { createInventorySources } from '../scanner/sources.js';
import { openSqliteStore } from '../store/sqlite.js';
import { SCAN_USAGE } from './help.js';
import { usesSandboxClouds } from './sandbox-mode.js';

/** `keywarden scan [--json] [--config F] [--sandbox]`: scan every estate once and print the inventory and findings. */

export { SCAN_USAGE };

export interface ScanCliOptions {
  env?: Env;
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  clock?: Clock;
}

interface ScanArgs { json: boolean; sandbox: boolean; configPath?: string; help: boolean }

function parseArgs(argv: readonly string[]): ScanArgs | string {
  const args: ScanArgs = { json: false, sandbox: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') args.json = true;
    else if (a === '--sandbox') args.sandbox = true;
    else if (a === '--help' || a === '-h') args.help = true;
    else if (a === '--config') {
      const next = argv[i + 1];
      if (!next || next.startsWith('--')) return '--config needs a file path, e.g. --config keywarden.yaml';
      args.configPath = next;
      i += 1;
    } else if (a.startsWith('--config=')) args.configPath = a.slice('--config='.length);
    else return `unknown option "${a}"`;
  }
  return args;
}

type Brief = Pick<Finding, 'code' | 'severity' | 'message' | 'remedy'>;
const brief = (f: Finding): Brief => ({ code: f.code, severity: f.severity, message: f.message, remedy: f.remedy });

/** One credential as `--json` promises it. */
function jsonRow(c: Credential, findings: readonly Finding[], now: number) {
  const v = credentialView(c, [], now);
  return {
    kind: c.kind, id: c.id, name: c.name, where: v.where, estate: c.where.estate, scope: c.where.scope, owner: c.owner?.name ?? null,
    expiresAt: c.expiresAt === null ? null : new Date(c.expiresAt).toISOString(), daysLeft: v.daysLeft,
    heldIn: c.heldIn.map((r) => `${r.vault}/${r.name}`), ...(c.holds ? { holds: c.holds } : {}), consumers: c.consumers.map((x) => `${x.factory}/${x.name}`),
    findings: findings.map(brief),
  };
}

/** One credential as a table row. */
function tableRow(c: Credential, findings: readonly Finding[], now: number): string[] {
  const v = credentialView(c, [], now);
  const codes = findings.map((f) => f.code).join(', ');
  const expires = c.expiresAt === null ? 'never' : new Date(c.expiresAt).toISOString().slice(0, 10);
  return [v.kindLabel, c.name, v.where, c.owner?.name ?? '-', expires, v.daysLeft === null ? '-' : String(v.daysLeft), codes || '-'];
}

const HEADER = ['KIND', 'NAME', 'WHERE', 'OWNER', 'EXPIRES', 'DAYS LEFT', 'FINDINGS'];
const MAX_WIDTH = [20, 40, 48, 30, 10, 9, 60];
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;

/**
 * What a first pass over the scan keeps: the urgency order as small keys (not the credentials), the estates, findings
 * per severity and the table's column widths.
 */
async function firstPass(scan: ScanResult, now: number) {
  const view = scanViewOf(scan);
  const order: Array<Pick<Credential, 'id' | 'expiresAt' | 'name'>> = [];
  const estates = new Set<string>();
  const bySeverity = new Map<string, number>();
  const widths = HEADER.map((h) => h.length);
  // The providers' order breaks urgency ties; no other scan runs on the CLI's own store.
  for await (const page of eachPage(view.pages({ order: 'scan' }))) {
    for (const { credential: c, findings } of page) {
      order.push({ id: c.id, expiresAt: c.expiresAt, name: c.name });
      estates.add(c.where.estate);
      for (const f of findings) bySeverity.set(f.severity, (bySeverity.get(f.severity) ?? 0) + 1);
      tableRow(c, findings, now).forEach((cell, i) => { widths[i] = Math.min(MAX_WIDTH[i]!, Math.max(widths[i]!, cell.length)); });
    }
  }
  for (const f of view.scopeFindings) bySeverity.set(f.severity, (bySeverity.get(f.severity) ?? 0) + 1);
  // Stable: equally urgent credentials keep the scan's order.
  order.sort(compareUrgency);
  return { view, order, estates: [...estates].sort(), bySeverity, widths };
}

/** The credentials in urgency order, a page at a time (read again by id, so only a page is in memory). */
async function* inOrder(view: ScanView, order: ReadonlyArray<{ id: string }>): AsyncIterable<ScannedCredential[]> {
  for (let i = 0; i < order.length; i += 500) {
    if (i > 0) await yieldToLoop();
    yield order.slice(i, i + 500).map((k) => view.get(k.id)).filter((r): r is ScannedCredential => r !== undefined);
  }
}

/** `--json`: one row per credential, written page by page; the same text JSON.stringify(report, null, 2) gives. */
export async function writeJsonReport(scan: ScanResult, now: number, write: (text: string) => void): Promise<void> {
  const { view, order, estates } = await firstPass(scan, now);
  const marker = '@@keywarden-credentials@@';
  const report = {
    scanId: scan.id,
    scannedAt: new Date(scan.finishedAt).toISOString(),
    estates,
    credentials: order.length ? [marker] : [],
    scopeFindings: view.scopeFindings.map((f) => ({ scope: f.scope, estate: f.estate, ...brief(f) })),
    errors: scan.errors,
  };
  const text = `${JSON.stringify(report, null, 2)}\n`;
  const at = text.indexOf(`    "${marker}"`);
  if (at < 0) {
    write(text);
    return;
  }
  write(text.slice(0, at));
  let first = true;
  for await (const page of inOrder(view, order)) {
    const rows = page.map((r) => `    ${JSON.stringify(jsonRow(r.credential, r.findings, now), null, 2).replace(/\n/g, '\n    ')}`);
    if (rows.length) write(`${first ? '' : ',\n'}${rows.join(',\n')}`);
    first &&= rows.length === 0;
  }
  write(text.slice(at + `    "${marker}"`.length));
}

function cell(text: string, width: number): string {
  const t = text.length > width ? `${text.slice(0, width - 1)}…` : text;
  return t.padEnd(width);
}

/** A table for people: most urgent first, then scope findings and errors; written page by page. */
export async function writeTable(scan: ScanResult, now: number, write: (text: string) => void): Promise<void> {
  const { view, order, bySeverity, widths } = await firstPass(scan, now);
  const line = (r: string[]) => r.map((x, i) => cell(x, widths[i]!)).join('  ').trimEnd();
  write(`${line(HEADER)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for await (const page of inOrder(view, order)) {
    if (page.length) write(`${page.map((r) => line(tableRow(r.credential, r.findings, now))).join('\n')}\n`);
  }
  const out: string[] = [];
  const scopeFindings = view.scopeFindings;
  if (scopeFindings.length) out.push('', 'Scope findings:', ...scopeFindings.map((f) => `  [${f.severity}] ${f.code} ${f.scope}: ${f.message}\n      fix: ${f.remedy}`));
  out.push('', `${order.length} credentials; findings: ${SEVERITIES.map((s) => `${bySeverity.get(s) ?? 0} ${s}`).join(', ')}.`);
  if (scan.errors.length) out.push('', 'Could not scan:', ...scan.errors.map((e) => `  ${e.message}`));
  write(`${out.join('\n')}\n`);
}

export async function run(argv: string[], options: ScanCliOptions = {}): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  const clock = options.clock ?? systemClock;
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    err.write(`keywarden scan: ${args}\n\n${SCAN_USAGE}`);
    return 2;
  }
  if (args.help) {
    out.write(SCAN_USAGE);
    return 0;
  }

  const loaded = loadConfig({ ...(args.configPath ? { path: args.configPath } : {}), ...(options.env ? { env: options.env } : {}) });
  let config: KeywardenConfig = loaded.config;
  let clouds: SandboxClouds | undefined;
  // Progress goes to stderr so stdout stays machine-readable.
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, name: 'keywarden-scan', destination: err });
  try {
    if (usesSandboxClouds(config, args.sandbox)) {
      if (!args.json) err.write('keywarden scan: starting the emulated clouds (sandbox) — nothing real is touched\n');
      // Uses the CA in config.sandbox.dataDir: the one the CLI entry trusts (NODE_EXTRA_CA_CERTS) for sandbox runs.
      const sandbox = await startSandboxForKeywarden({ config, clock });
      clouds = sandbox.clouds;
      config = sandbox.config;
    }
    const store = openSqliteStore({ path: ':memory:', clock });
    try {
      const { sources } = createInventorySources(config, { clock });
      if (sources.length === 0) {
        err.write('keywarden scan: nothing to scan — add databricks.workspaces, keyVault.vaults or dataFactory.factories to the config (or use --sandbox)\n');
        return 1;
      }
      const scanner = createScanner({ sources, config, store, clock, logger });
      const scan = await scanner.runScan('cli');
      const now = clock.now();
      const write = (text: string) => out.write(redactText(text));
      await (args.json ? writeJsonReport(scan, now, write) : writeTable(scan, now, write));
      return scan.errors.length > 0 ? 1 : 0;
    } finally {
      store.close();
    }
  } finally {
    await clouds?.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exit(await run(process.argv.slice(2)));
}
