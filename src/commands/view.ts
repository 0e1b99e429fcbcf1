import { DAY_MS, HOUR_MS, MINUTE_MS } from '../clock.js';
import type { Credential, CredentialKind, EstateError, Finding } from '../domain/credential.js';
import { daysLeft, formatExpiry, formatUtc } from '../domain/expiry.js';
import { findingsByCredential, heldCredentialOf, isExpiryFinding, kindLabel, mirrorsHeldCredential } from '../domain/policy.js';

export { findingsByCredential };

export { heldCredentialOf, mirrorsHeldCredential };
import { eachPage, type ScannedCredential, type ScanResult, type ScanView } from '../domain/scan.js';

/** How a credential reads in a card row or a CLI table: the same words in both. */

export interface CredentialView {
  id: string;
  kind: Credential['kind'];
  kindLabel: string;
  name: string;
  where: string;
  owner: string;
  expires: string;
  expiresAt: number | null;
  daysLeft: number | null;
  /** Non-expiry finding codes (the expiry is in `expires`). */
  findings: string[];
  consumers: string;
  /** Known consumers (Data Factory linked services): shown on every /expiring row. */
  consumerCount: number;
}

export function ownerText(c: Credential): string {
  if (!c.owner) return 'unknown';
  const kind = c.owner.kind === 'service-principal' ? 'service principal' : c.owner.kind === 'unknown' ? '' : c.owner.kind;
  return `${c.owner.name}${kind ? ` (${kind}${c.owner.active === false ? ', deactivated' : ''})` : c.owner.active === false ? ' (deactivated)' : ''}`;
}

export function whereText(c: Credential): string {
  const held = c.heldIn.map((r) => `${r.vault}/${r.name}`);
  return held.length ? `${c.where.label} · held in ${held.join(', ')}` : c.where.label;
}

export function consumersText(c: Credential): string {
  if (c.consumers.length === 0) return '';
  return c.consumers.map((x) => {
    const pipes = x.pipelines?.length ? ` (pipelines: ${x.pipelines.join(', ')})` : '';
    const flags = [x.pinnedVersion ? 'pinned version' : '', x.dynamic ? 'possible (dynamic)' : ''].filter(Boolean).join(', ');
    return `ADF ${x.factory}/${x.name}${pipes}${flags ? ` [${flags}]` : ''}`;
  }).join('; ');
}


export function credentialView(c: Credential, findings: readonly Finding[], now: number, extraFindings: readonly Finding[] = []): CredentialView {
  const codes = [...new Set([...findings, ...extraFindings].filter((f) => !isExpiryFinding(f)).map((f) => f.code))];
  return {
    id: c.id, kind: c.kind, kindLabel: kindLabel(c.kind), name: c.name, where: whereText(c), owner: ownerText(c),
    expires: formatExpiry(c.expiresAt, now), expiresAt: c.expiresAt, daysLeft: daysLeft(c, now), findings: codes,
    consumers: consumersText(c), consumerCount: c.consumers.length,
  };
}

/** Findings of secrets folded into the (scanned) credential they hold, keyed by the held credential's id: one row per chain. */
export function foldedFindings(scan: Pick<ScanResult, 'credentials' | 'findings'>): Map<string, Finding[]> {
  const byId = new Map(scan.credentials.map((c) => [c.id, c]));
  const perCredential = findingsByCredential(scan.findings);
  const folded = new Map<string, Finding[]>();
  for (const c of scan.credentials) {
    const held = heldCredentialOf(c, byId);
    if (!held) continue;
    const list = folded.get(held.id) ?? [];
    list.push(...(perCredential.get(c.id) ?? []));
    folded.set(held.id, list);
  }
  return folded;
}

export function errorLine(e: EstateError): string {
  return e.message;
}

/** "5 minutes ago", "2 hours ago", "3 days ago". */
export function ago(then: number, now: number): string {
  const ms = Math.max(0, now - then);
  if (ms < MINUTE_MS) return 'just now';
  if (ms < HOUR_MS) return `${Math.floor(ms / MINUTE_MS)} min ago`;
  if (ms < DAY_MS) return `${Math.floor(ms / HOUR_MS)} h ago`;
  return `${Math.floor(ms / DAY_MS)} days ago`;
}

export function scannedText(scan: Pick<ScanResult, 'finishedAt'>, now: number): string {
  return `scanned ${ago(scan.finishedAt, now)} (${formatUtc(scan.finishedAt)})`;
}

/** Collects a window page by page: the rows of the wanted kinds this scan saw, their holders and what they hold. */
function windowOf(view: ScanView, kinds: readonly CredentialKind[]) {
  const picked = new Map<string, ScannedCredential>();
  const add = (r: ScannedCredential | undefined) => {
    if (r && !picked.has(r.credential.id)) picked.set(r.credential.id, r);
  };
  const want = new Set<CredentialKind>([...kinds, 'keyvault-secret']);
  return {
    add(page: readonly ScannedCredential[]): void {
      for (const r of page) {
        // Kinds are checked here: a filter by kind would make the store sort every page.
        if (!want.has(r.credential.kind) || !view.get(r.credential.id)) continue;
        add(r);
        for (const h of view.holders(r.credential.id)) add(h);
        if (r.credential.holds) add(view.get(r.credential.holds));
      }
    },
    result(): Pick<ScanResult, 'credentials' | 'findings'> {
      const rows = [...picked.values()];
      return { credentials: rows.map((r) => r.credential), findings: rows.flatMap((r) => r.findings) };
    },
  };
}

/**
 * The part of a scan a window query needs: credentials of these kinds expiring before `until`, the secrets holding
 * them and the credentials those expiring secrets hold (one row per chain), with their findings. On a stored scan
 * this reads only those rows, not the estate.
 */
export function scanWindow(scan: ScanResult, kinds: readonly CredentialKind[], until: number): Pick<ScanResult, 'credentials' | 'findings'> {
  if (!scan.view) return scan;
  const window = windowOf(scan.view, kinds);
  for (const page of scan.view.query({ expiresBefore: until }, 1000)) window.add(page);
  return window.result();
}

/** The same, yielding to the event loop between pages (a long window on a large estate). */
export async function readScanWindow(scan: ScanResult, kinds: readonly CredentialKind[], until: number): Promise<Pick<ScanResult, 'credentials' | 'findings'>> {
  if (!scan.view) return scan;
  const window = windowOf(scan.view, kinds);
  for await (const page of eachPage(scan.view.query({ expiresBefore: until }, 500))) window.add(page);
  return window.result();
}

