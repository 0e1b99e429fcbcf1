import type { Credential, CredentialKind, Estate, EstateError, Finding } from './credential.js';

/** One completed scan across every configured estate. */
export interface ScanResult {
  id: string;
  trigger: 'schedule' | 'start' | 'command' | 'cli';
  startedAt: number;
  finishedAt: number;
  /**
   * Every credential the scan saw. On a stored scan this reads every row (the whole estate): code that runs per scan
   * or per click uses `scanViewOf(scan)` instead, which pages and queries.
   */
  credentials: Credential[];
  /** Policy findings, expiry ones included (code 'expiring' / 'expired'). Reads every row on a stored scan too. */
  findings: Finding[];
  errors: EstateError[];
  /**
   * Compared with the previous stored snapshot, by credential id: at most CHANGE_LIST_CAP ids per list (a first scan
   * of 360k would keep every id), with the true totals in `counts`. Counts are read through changeCountsOf(scan).
   */
  changes: ScanChanges;
  /** Queries over the stored rows (set by the scanner; absent on results built in memory: use scanViewOf). */
  view?: ScanView;
  /** Counted while scanning, so a summary never reads the estate. */
  counts?: ScanCounts;
}

export interface ChangeCounts {
  added: number;
  removed: number;
  changed: number;
}

export interface ScanChanges {
  added: string[];
  removed: string[];
  changed: string[];
  /** The true totals, set when a list was cut (absent: the lists are whole). */
  counts?: ChangeCounts;
}

/** Ids kept per change list: enough to show, while a first scan of a large estate does not keep every id. */
export const CHANGE_LIST_CAP = 1000;

/** How many credentials were added, removed and changed (the lists themselves may be capped). */
export function changeCountsOf(scan: Pick<ScanResult, 'changes'>): ChangeCounts {
  const { added, removed, changed, counts } = scan.changes;
  return counts ?? { added: added.length, removed: removed.length, changed: changed.length };
}

/** Lists of the given totals, with the totals kept only when a list was cut to CHANGE_LIST_CAP ids. */
export function cappedChanges(lists: Omit<ScanChanges, 'counts'>, counts: ChangeCounts): ScanChanges {
  const cut = counts.added > lists.added.length || counts.removed > lists.removed.length || counts.changed > lists.changed.length;
  return { ...lists, ...(cut ? { counts } : {}) };
}

/** The lists cut to CHANGE_LIST_CAP ids each, with their true totals when one was cut. */
export function capChanges(changes: ScanChanges): ScanChanges {
  const cap = (ids: string[]) => (ids.length > CHANGE_LIST_CAP ? ids.slice(0, CHANGE_LIST_CAP) : ids);
  return cappedChanges({ added: cap(changes.added), removed: cap(changes.removed), changed: cap(changes.changed) }, changeCountsOf({ changes }));
}

export interface ScanCounts {
  credentials: number;
  byKind: Partial<Record<CredentialKind, number>>;
  /** Findings by `${code}|${severity}`. */
  findings: Record<string, number>;
}

/** A credential with its findings, as one scan saw it. */
export interface ScannedCredential {
  credential: Credential;
  findings: Finding[];
}

/** What to look up in the latest known state of the estate. */
export interface ScanQuery {
  kinds?: readonly CredentialKind[];
  kind?: CredentialKind;
  estate?: Estate;
  scope?: string;
  /** Expires (or expired) before this instant; credentials that never expire are left out. */
  expiresBefore?: number;
  withFindings?: boolean;
}

/**
 * The scan's credentials without loading them all: look-ups by id and scope, and pages. Pages are small arrays read
 * on demand, so a consumer that yields between pages keeps the bot's event loop free.
 */
export interface ScanView {
  /** A credential this scan saw, with its findings. */
  get(id: string): ScannedCredential | undefined;
  /**
   * The credentials this scan saw, page by page. `relevantOnly`: those with findings or held in a Key Vault secret (the
   * rest raise nothing on their own). `where`: only those matching the query (still only what this scan saw, unlike
   * `query`). `order` of stored rows: 'id' (default) sees each credential once even while the next scan runs; 'scan'
   * is the providers' order, for a reader no other scan runs under (the CLI's one-off scan). A scan held in memory
   * never changes under its reader and keeps the providers' order.
   */
  pages(options?: { pageSize?: number; relevantOnly?: boolean; where?: ScanQuery; order?: 'id' | 'scan' }): Iterable<ScannedCredential[]>;
  /** The Key Vault secrets this scan saw that hold the credential (their cards fold into its card). */
  holders(id: string): ScannedCredential[];
  /** Credentials of one kind in one scope that this scan saw. */
  inScope(kind: CredentialKind, scope: string): Credential[];
  /** Whether this scan saw any credential in the scope. */
  sawScope(estate: Estate, scope: string): boolean;
  /**
   * The latest known state, page by page by id: what this scan saw plus what a failed scope kept from an earlier scan.
   */
  query(query: ScanQuery, pageSize?: number): Iterable<ScannedCredential[]>;
  /** Findings about scopes themselves (no credential id). */
  scopeFindings: Finding[];
}

/** Lets clicks and timers run between two pages of a large scan. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The pages one by one, giving the event loop a turn before each next page (a consumer never holds it for the estate). */
export async function* eachPage<T>(pages: Iterable<T[]>): AsyncIterable<T[]> {
  let first = true;
  for (const page of pages) {
    if (!first) await yieldToLoop();
    first = false;
    yield page;
  }
}

export type ScanListener = (result: ScanResult) => void | Promise<void>;

const KINDS_OF: Record<Estate, CredentialKind[]> = {
  databricks: ['databricks-pat'],
  keyvault: ['keyvault-secret'],
  entra: ['entra-password', 'entra-certificate'],
  datafactory: [],
};

function matches(c: Credential, findings: Finding[], q: ScanQuery): boolean {
  if (q.kind && c.kind !== q.kind) return false;
  if (q.kinds && !q.kinds.includes(c.kind)) return false;
  if (q.estate && c.where.estate !== q.estate) return false;
  if (q.scope !== undefined && c.where.scope !== q.scope) return false;
  if (q.expiresBefore !== undefined && (c.expiresAt === null || c.expiresAt >= q.expiresBefore)) return false;
  return !q.withFindings || findings.length > 0;
}

/** A view over a result held in memory (tests, the CLI's one-off scan, stores without rows). */
function memoryView(scan: Pick<ScanResult, 'credentials' | 'findings'>): ScanView {
  const byId = new Map<string, ScannedCredential>();
  for (const c of scan.credentials) byId.set(c.id, { credential: c, findings: [] });
  for (const f of scan.findings) if (f.credentialId) byId.get(f.credentialId)?.findings.push(f);
  const all = [...byId.values()];
  const holders = new Map<string, ScannedCredential[]>();
  for (const r of all) {
    const held = r.credential.kind === 'keyvault-secret' && r.credential.holds;
    if (held && held !== r.credential.id) holders.set(held, [...(holders.get(held) ?? []), r]);
  }
  function* paged(list: ScannedCredential[], size: number): Iterable<ScannedCredential[]> {
    for (let i = 0; i < list.length; i += size) yield list.slice(i, i + size);
  }
  return {
    get: (id) => byId.get(id),
    holders: (id) => holders.get(id) ?? [],
    // relevantOnly is a hint: in memory every credential is as cheap to hand over.
    pages: (options = {}) => paged(options.where ? all.filter((r) => matches(r.credential, r.findings, options.where!)) : all, options.pageSize ?? 500),
    inScope: (kind, scope) => scan.credentials.filter((c) => c.kind === kind && c.where.scope === scope),
    sawScope: (estate, scope) => scan.credentials.some((c) => c.where.estate === estate && c.where.scope === scope),
    query: (q, pageSize = 500) => paged(all.filter((r) => matches(r.credential, r.findings, q)), pageSize),
    scopeFindings: scan.findings.filter((f) => !f.credentialId),
  };
}

const memoryViews = new WeakMap<object, ScanView>();

/** The scan's view: the stored one, or one built (once) over the result's arrays. */
export function scanViewOf(scan: ScanResult): ScanView {
  if (scan.view) return scan.view;
  let view = memoryViews.get(scan);
  if (!view) {
    view = memoryView(scan);
    memoryViews.set(scan, view);
  }
  return view;
}

/** Kinds of credential an estate has (for "did this scan see the scope"). */
export function kindsOf(estate: Estate): readonly CredentialKind[] {
  return KINDS_OF[estate];
}

/** Counts of a result held in memory (the stored scan counts while it runs). */
export function scanCountsOf(scan: ScanResult): ScanCounts {
  if (scan.counts) return scan.counts;
  const counts: ScanCounts = { credentials: scan.credentials.length, byKind: {}, findings: {} };
  for (const c of scan.credentials) counts.byKind[c.kind] = (counts.byKind[c.kind] ?? 0) + 1;
  for (const f of scan.findings) counts.findings[`${f.code}|${f.severity}`] = (counts.findings[`${f.code}|${f.severity}`] ?? 0) + 1;
  return counts;
}
