/**
 * The governance report: what the findings say about the estate as a whole, and whether it got better since the last
 * report. Pure: built from a scan and the counts of the previous report; the module posts it and keeps the counts.
 */
import type { Credential, Estate, Finding, FindingCode } from '../domain/credential.js';
import { isExpiryFinding } from '../domain/policy.js';
import type { ScanResult } from '../domain/scan.js';

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

function offenders(findings: readonly Finding[], byId: ReadonlyMap<string, Credential>, top: number): Offender[] {
  const byOwner = new Map<string, { kind: Offender['kind']; codes: Map<string, number>; total: number }>();
  for (const f of findings) {
    const c = f.credentialId ? byId.get(f.credentialId) : undefined;
    if (!c?.owner?.name) continue;
    const entry = byOwner.get(c.owner.name) ?? { kind: ownerKind(c), codes: new Map(), total: 0 };
    entry.codes.set(f.code, (entry.codes.get(f.code) ?? 0) + 1);
    entry.total += 1;
    byOwner.set(c.owner.name, entry);
  }
  return [...byOwner.entries()]
    .sort((a, b) => b[1].total - a[1].total || a[0].localeCompare(b[0]))
    .slice(0, top)
    .map(([owner, e]) => ({
      owner, kind: e.kind, findings: e.total,
      codes: [...e.codes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([code, n]) => (n > 1 ? `${code} ×${n}` : code)).join(', '),
    }));
}

function remedies(findings: readonly Finding[], byId: ReadonlyMap<string, Credential>, workspaces: GovernanceReport['workspaces']): RemedyTarget[] {
  const out: RemedyTarget[] = [];
  for (const ws of workspaces.noMaxLifetime) out.push({ remedy: 'max-lifetime', subject: ws, scope: ws, label: `Enforce a maximum token lifetime in ${ws}` });
  for (const ws of workspaces.openCreation) out.push({ remedy: 'restrict-tokens', subject: ws, scope: ws, label: `Restrict who may create tokens in ${ws}` });
  const retire = new Map<string, Set<string>>();
  for (const f of findings) {
    if (f.estate !== 'databricks' || (f.code !== 'unused' && f.code !== 'not-rotated') || !f.credentialId) continue;
    retire.set(f.scope, (retire.get(f.scope) ?? new Set()).add(f.credentialId));
  }
  for (const [ws, ids] of [...retire.entries()].sort((a, b) => b[1].size - a[1].size || a[0].localeCompare(b[0]))) {
    out.push({ remedy: 'retire-unused', subject: ws, scope: ws, label: `Retire ${ids.size} unused or unrotated token${ids.size === 1 ? '' : 's'} in ${ws}` });
  }
  for (const f of findings) {
    if (f.code !== 'human-owned-pipeline' || !f.credentialId) continue;
    const c = byId.get(f.credentialId);
    if (c?.kind !== 'databricks-pat') continue;
    out.push({ remedy: 'move-to-sp', subject: c.id, scope: c.where.scope, label: `Move ${c.name} (${c.where.scope}) to a service principal` });
  }
  return out;
}

export function buildGovernanceReport(scan: Pick<ScanResult, 'id' | 'finishedAt' | 'credentials' | 'findings' | 'errors'>, previous: PreviousReport | undefined, options: { now: number; topOffenders: number }): GovernanceReport {
  const findings = governanceFindings(scan.findings);
  const byId = new Map(scan.credentials.map((c) => [c.id, c]));
  const counts = countFindings(findings);
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
  const pats = scan.credentials.filter((c) => c.kind === 'databricks-pat');
  const scopesWith = (code: FindingCode) => [...new Set(findings.filter((f) => f.code === code).map((f) => f.scope))].sort();
  const workspaces = { noMaxLifetime: scopesWith('no-max-token-lifetime'), openCreation: scopesWith('pat-creation-open'), tokensDisabled: scopesWith('tokens-disabled') };
  const total = findings.length;
  return {
    at: options.now,
    scanId: scan.id,
    scannedAt: scan.finishedAt,
    counts,
    rows,
    cleared,
    total,
    previousTotal: previous ? Object.values(previous.counts).reduce((a, b) => a + b, 0) : null,
    previousAt: previous?.at ?? null,
    offenders: offenders(findings, byId, options.topOffenders),
    patOwners: {
      people: pats.filter((c) => c.owner?.kind === 'user').length,
      servicePrincipals: pats.filter((c) => c.owner?.kind === 'service-principal').length,
      unknown: pats.filter((c) => c.owner?.kind !== 'user' && c.owner?.kind !== 'service-principal').length,
    },
    workspaces,
    remedies: remedies(findings, byId, workspaces),
    errors: scan.errors.map((e) => `${e.scope} (${e.estate}): ${e.message}`),
  };
}
