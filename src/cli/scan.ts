import { pathToFileURL } from 'node:url';
import { systemClock, type Clock } from '../clock.js';
import { loadConfig, type Env } from '../config/load.js';
import type { KeywardenConfig } from '../config/schema.js';
import { credentialView, findingsByCredential } from '../commands/view.js';
import type { Finding } from '../domain/credential.js';
import { compareUrgency } from '../domain/expiry.js';
import type { ScanResult } from '../domain/scan.js';
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

/** One row per credential, the shape `--json` promises. */
export function toJsonReport(scan: ScanResult, now: number) {
  const perCredential = findingsByCredential(scan.findings);
  const brief = (f: Finding) => ({ code: f.code, severity: f.severity, message: f.message, remedy: f.remedy });
  return {
    scanId: scan.id,
    scannedAt: new Date(scan.finishedAt).toISOString(),
    estates: [...new Set(scan.credentials.map((c) => c.where.estate))].sort(),
    credentials: [...scan.credentials].sort(compareUrgency).map((c) => {
      const v = credentialView(c, [], now);
      return {
        kind: c.kind, id: c.id, name: c.name, where: v.where, estate: c.where.estate, scope: c.where.scope, owner: c.owner?.name ?? null,
        expiresAt: c.expiresAt === null ? null : new Date(c.expiresAt).toISOString(), daysLeft: v.daysLeft,
        heldIn: c.heldIn.map((r) => `${r.vault}/${r.name}`), ...(c.holds ? { holds: c.holds } : {}), consumers: c.consumers.map((x) => `${x.factory}/${x.name}`),
        findings: (perCredential.get(c.id) ?? []).map(brief),
      };
    }),
    scopeFindings: scan.findings.filter((f) => !f.credentialId).map((f) => ({ scope: f.scope, estate: f.estate, ...brief(f) })),
    errors: scan.errors,
  };
}

function cell(text: string, width: number): string {
  const t = text.length > width ? `${text.slice(0, width - 1)}…` : text;
  return t.padEnd(width);
}

/** A table for people: most urgent first, then scope findings and errors. */
export function toTable(scan: ScanResult, now: number): string {
  const perCredential = findingsByCredential(scan.findings);
  const rows = [...scan.credentials].sort(compareUrgency).map((c) => {
    const v = credentialView(c, [], now);
    const findings = (perCredential.get(c.id) ?? []).map((f) => f.code).join(', ');
    const expires = c.expiresAt === null ? 'never' : new Date(c.expiresAt).toISOString().slice(0, 10);
    return [v.kindLabel, c.name, v.where, c.owner?.name ?? '-', expires, v.daysLeft === null ? '-' : String(v.daysLeft), findings || '-'];
  });
  const header = ['KIND', 'NAME', 'WHERE', 'OWNER', 'EXPIRES', 'DAYS LEFT', 'FINDINGS'];
  const max = [20, 40, 48, 30, 10, 9, 60];
  const widths = header.map((h, i) => Math.min(max[i]!, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (r: string[]) => r.map((x, i) => cell(x, widths[i]!)).join('  ').trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const scopeFindings = scan.findings.filter((f) => !f.credentialId);
  if (scopeFindings.length) out.push('', 'Scope findings:', ...scopeFindings.map((f) => `  [${f.severity}] ${f.code} ${f.scope}: ${f.message}\n      fix: ${f.remedy}`));
  const bySeverity = ['critical', 'high', 'medium', 'low', 'info'].map((s) => `${scan.findings.filter((f) => f.severity === s).length} ${s}`).join(', ');
  out.push('', `${scan.credentials.length} credentials; findings: ${bySeverity}.`);
  if (scan.errors.length) out.push('', 'Could not scan:', ...scan.errors.map((e) => `  ${e.message}`));
  return `${out.join('\n')}\n`;
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
      out.write(redactText(args.json ? `${JSON.stringify(toJsonReport(scan, now), null, 2)}\n` : toTable(scan, now)));
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
