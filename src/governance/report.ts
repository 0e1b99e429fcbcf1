/**
 * The governance report: what the findings say about the estate as a whole, and whether it got better since the last
 * report. Built from a scan (read page by page) and the counts of the previous report; the module posts it and keeps the counts.
 */
import type { Credential, Estate, Finding, FindingCode } from '../domain/credential.js';
import { isExpiryFinding } from '../domain/policy.js';
import { eachPage, scanViewOf, type ScanResult } from '../domain/scan.js';

/** Finding counts keyed `<estate>:<code>`: all a later report needs to show the trend. */
export type FindingCounts = Record<string, number>;

export interface PreviousReport {
  at: number;
  scanId: string;
  counts: FindingCounts;
}

export interface Offender {
  owner: string;
  kind: 'person' | 'service principal' | 'application' | 'unknown';
  findings: number;
  /** "unused ×2, no-expiry". */
  codes: string;
}

export interface RemedyTarget {
  remedy: 'max-lifetime' | 'restrict-tokens' | 'retire-unused' | 'move-to-sp';
  /** Workspace name, or the credential id (move-to-sp). */
  subject: string;
  scope: string;
  /** Button text. */
  label: string;
}

export interface GovernanceReport {
  at: number;
  scanId: string;
  scannedAt: number;
  counts: FindingCounts;
  /** Per estate, per code: now, and the change since the previous report (null = no previous report). */
  rows: Array<{ estate: Estate; code: FindingCode; count: number; change: number | null }>;
  /** Codes that disappeared since the previous report (count 0 now). */
  cleared: Array<{ estate: Estate; code: FindingCode; was: number }>;
  total: number;
  previousTotal: number | null;
  previousAt: number | null;
  offenders: Offender[];
  /** Databricks PATs by who owns them. */
  patOwners: { people: number; servicePrincipals: number; unknown: number };
  workspaces: { noMaxLifetime: string[]; openCreation: string[]; tokensDisabled: string[] };
  remedies: RemedyTarget[];
  /** Estates that could not be scanned: their findings are unknown. */
  errors: string[];
}

export const countKey = (estate: string, code: string): string => `${estate}:${code}`;

/** Expiry is what /expiring and the cards are for; governance is about the other findings (hygiene, ownership, controls). */
export function governanceFindings(findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => !isExpiryFinding(f));
}

export function countFindings(findings: readonly Finding[]): FindingCounts {
  const counts: FindingCounts = {};
  for (const f of governanceFindings(findings)) counts[countKey(f.estate, f.code)] = (counts[countKey(f.estate, f.code)] ?? 0) + 1;
  return counts;
}

function ownerKind(c: Credential | undefined): Offender['kind'] {
  switch (c?.owner?.kind) {
    case 'user': return 'person';
    case 'service-principal': return 'service principal';
    case 'application': return 'application';
    default: return 'unknown';
  }
}

/** What the report keeps while it reads the estate page by page: counts and small per-owner / per-workspace tallies. */
interface Tally {
  counts: FindingCounts;
  total: number;
  owners: Map<string, { kind: Offender['kind']; codes: Map<string, number>; total: number }>;
  patOwners: GovernanceReport['patOwners'];
  scopesWith: Map<FindingCode, Set<string>>;
  /** Per workspace: PATs with an unused or not-rotated finding. */
  retire: Map<string, number>;
  moveToSp: RemedyTarget[];
}

function newTally(): Tally {
  return { counts: {}, total: 0, owners: new Map(), patOwners: { people: 0, servicePrincipals: 0, unknown: 0 }, scopesWith: new Map(), retire: new Map(), moveToSp: [] };
}

/** One credential (or none, for scope findings) and its findings. */
function addToTally(t: Tally, c: Credential | undefined, all: readonly Finding[]): void {
  if (c?.kind === 'databricks-pat') {
    if (c.owner?.kind === 'user') t.patOwners.people += 1;
    else if (c.owner?.kind === 'service-principal') t.patOwners.servicePrincipals += 1;
    else t.patOwners.unknown += 1;
  }
  const findings = governanceFindings(all);
  let retireScope: string | undefined;
  for (const f of findings) {
    const key = countKey(f.estate, f.code);
    t.counts[key] = (t.counts[key] ?? 0) + 1;
    t.total += 1;
    t.scopesWith.set(f.code, (t.scopesWith.get(f.code) ?? new Set()).add(f.scope));
    if (c?.owner?.name) {
      const entry = t.owners.get(c.owner.name) ?? { kind: ownerKind(c), codes: new Map(), total: 0 };
      entry.codes.set(f.code, (entry.codes.get(f.code) ?? 0) + 1);
      entry.total += 1;
      t.owners.set(c.owner.name, entry);
    }
    if (f.estate === 'databricks' && (f.code === 'unused' || f.code === 'not-rotated') && f.credentialId) retireScope ??= f.scope;
    if (f.code === 'human-owned-pipeline' && c?.kind === 'databricks-pat') {
      t.moveToSp.push({ remedy: 'move-to-sp', subject: c.id, scope: c.where.scope, label: `Move ${c.name} (${c.where.scope}) to a service principal` });
    }
  }
  if (retireScope !== undefined) t.retire.set(retireScope, (t.retire.get(retireScope) ?? 0) + 1);
}

function offenders(t: Tally, top: number): Offender[] {
  return [...t.owners.entries()]
    .sort((a, b) => b[1].total - a[1].total || a[0].localeCompare(b[0]))
    .slice(0, top)
    .map(([owner, e]) => ({
      owner, kind: e.kind, findings: e.total,
      codes: [...e.codes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([code, n]) => (n > 1 ? `${code} ×${n}` : code)).join(', '),
    }));
}

function remedies(t: Tally, workspaces: GovernanceReport['workspaces']): RemedyTarget[] {
  const out: RemedyTarget[] = [];
  for (const ws of workspaces.noMaxLifetime) out.push({ remedy: 'max-lifetime', subject: ws, scope: ws, label: `Enforce a maximum token lifetime in ${ws}` });
  for (const ws of workspaces.openCreation) out.push({ remedy: 'restrict-tokens', subject: ws, scope: ws, label: `Restrict who may create tokens in ${ws}` });
  for (const [ws, n] of [...t.retire.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
    out.push({ remedy: 'retire-unused', subject: ws, scope: ws, label: `Retire ${n} unused or unrotated token${n === 1 ? '' : 's'} in ${ws}` });
  }
  out.push(...t.moveToSp);
  return out;
}

/**
 * Reads the scan page by page (then the scope findings), yielding between pages: a report over a large estate holds
 * neither the estate in memory nor the bot's event loop. One pass over every row: every PAT is needed (the report
 * splits them by owner), and the other kinds count too.
 */
async function tallyScan(scan: ScanResult): Promise<Tally> {
  const view = scanViewOf(scan);
  const t = newTally();
  for await (const page of eachPage(view.pages({ pageSize: 500 }))) {
    for (const r of page) if (r.findings.length > 0 || r.credential.kind === 'databricks-pat') addToTally(t, r.credential, r.findings);
  }
  for (const f of view.scopeFindings) addToTally(t, undefined, [f]);
  return t;
}

export async function buildGovernanceReport(scan: ScanResult, previous: PreviousReport | undefined, options: { now: number; topOffenders: number }): Promise<GovernanceReport> {
  const t = await tallyScan(scan);
  const counts = t.counts;
  const rows = Object.entries(counts)
    .map(([key, count]) => {
      const [estate, code] = key.split(':') as [Estate, FindingCode];
      return { estate, code, count, change: previous ? count - (previous.counts[key] ?? 0) : null };
    })
    .sort((a, b) => a.estate.localeCompare(b.estate) || b.count - a.count || a.code.localeCompare(b.code));
  const cleared = previous
    ? Object.entries(previous.counts).filter(([key, was]) => was > 0 && !counts[key]).map(([key, was]) => {
      const [estate, code] = key.split(':') as [Estate, FindingCode];
      return { estate, code, was };
    })
    : [];
  const scopesWith = (code: FindingCode) => [...(t.scopesWith.get(code) ?? [])].sort();
  const workspaces = { noMaxLifetime: scopesWith('no-max-token-lifetime'), openCreation: scopesWith('pat-creation-open'), tokensDisabled: scopesWith('tokens-disabled') };
  return {
    at: options.now,
    scanId: scan.id,
    scannedAt: scan.finishedAt,
    counts,
    rows,
    cleared,
    total: t.total,
    previousTotal: previous ? Object.values(previous.counts).reduce((a, b) => a + b, 0) : null,
    previousAt: previous?.at ?? null,
    offenders: offenders(t, options.topOffenders),
    patOwners: t.patOwners,
    workspaces,
    remedies: remedies(t, workspaces),
    errors: scan.errors.map((e) => `${e.scope} (${e.estate}): ${e.message}`),
  };
}
