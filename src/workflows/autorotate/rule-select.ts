/**
 * What a rule's selector picks in a scan, read through only the rows it can pick, page by page with a turn of the
 * event loop between pages: a rule card, /rules or /autorotate never holds the estate in memory or the loop for long.
 */
import { withHolderTags } from '../../approvals/auto-rotation.js';
import { selectorMatches, type StandingSelector } from '../../approvals/standing.js';
import type { KeywardenConfig } from '../../config/schema.js';
import { credentialId, type Credential, type CredentialKind } from '../../domain/credential.js';
import { eachPage, type ScanQuery, type ScanView } from '../../domain/scan.js';
import { addToCoverage, emptyCoverage, type RuleCoverage } from './rule-plan.js';

const EVERY_KIND: readonly CredentialKind[] = ['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate'];
const PAGE_SIZE = 500;

/**
 * The rows a selector can pick. A scope goes with its kind (or every kind), so the store uses its (kind, scope) index;
 * a kind alone its (kind, id) index. A tag alone may be a holder's: every row.
 */
export function selectorWhere(selector: StandingSelector): ScanQuery | undefined {
  if (selector.scope) return { kinds: selector.kind ? [selector.kind] : EVERY_KIND, scope: selector.scope };
  return selector.kind ? { kind: selector.kind } : undefined;
}

/**
 * `credentialsSelected` for one credential with look-ups instead of the whole scan: a secret holding a scanned
 * credential is that credential's, and the tags of the secrets holding a credential select it too.
 */
export function isSelected(view: ScanView, selector: StandingSelector, c: Credential): boolean {
  if (c.kind === 'keyvault-secret' && c.holds && view.get(c.holds)) return false;
  // Only a tag can come from the secrets that hold it: without one the credential alone decides (and no look-up).
  if (!selector.tag) return selectorMatches(selector, c);
  const holders = new Map<string, Credential>();
  for (const h of view.holders(c.id)) holders.set(h.credential.id, h.credential);
  for (const ref of c.heldIn) {
    const s = view.get(credentialId('keyvault-secret', ref.vault, ref.name))?.credential;
    if (s) holders.set(s.id, s);
  }
  return selectorMatches(selector, withHolderTags(c, [...holders.values()]));
}

/** The credentials a selector picks in the scan, page by page in the scan's order: its ids by look-up, else `selectorWhere`. */
export async function* selectedPages(view: ScanView, selector: StandingSelector): AsyncIterable<Credential[]> {
  if (!selector.credentialIds && !selector.kind && !selector.scope && !selector.tag) return;
  const pages = selector.credentialIds
    ? [selector.credentialIds.map((id) => view.get(id)?.credential).filter((c): c is Credential => c !== undefined)]
    : mapPages(view.pages({ where: selectorWhere(selector), pageSize: PAGE_SIZE }), (r) => r.credential);
  for await (const page of eachPage(pages)) {
    const picked = page.filter((c) => isSelected(view, selector, c));
    if (picked.length) yield picked;
  }
}

function* mapPages<T, U>(pages: Iterable<T[]>, map: (item: T) => U): Iterable<U[]> {
  for (const page of pages) yield page.map(map);
}

/** What a selector covers in the scan; `keep`: how many of each list to keep (a card shows a few; counts stay exact). */
export async function coverageIn(view: ScanView | undefined, selector: StandingSelector, config: KeywardenConfig, keep = Infinity): Promise<RuleCoverage> {
  const coverage = emptyCoverage();
  if (!view) return coverage;
  for await (const page of selectedPages(view, selector)) for (const c of page) addToCoverage(coverage, c, config, keep);
  return coverage;
}

/** Whether the scan saw any credential at all (one row read). */
export function sawAnything(view: ScanView | undefined): boolean {
  if (!view) return false;
  for (const page of view.pages({ pageSize: 1 })) return page.length > 0;
  return false;
}
