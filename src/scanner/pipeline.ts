import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { KeywardenConfig } from '../config/schema.js';
import { CorrelationBuilder, getOrCreate } from '../domain/correlate.js';
import type { Credential, Estate, EstateError, EstateInventory, Finding, SecretRef } from '../domain/credential.js';
import type { InventoryHeader } from '../providers/pages.js';
import { evaluatePolicy, evaluateScopePolicy, findingsByCredential, type ScopeInput } from '../domain/policy.js';
import { CHANGE_LIST_CAP, cappedChanges, type ScanCounts, type ScanResult } from '../domain/scan.js';
import { markSelfCredentials, type SelfIdentity } from '../domain/self-credential.js';
import type { CredentialRow, ScanRows } from '../store/scan-rows.js';
import { fingerprint, scopeKey } from './snapshot.js';

/**
 * The scan as a stream, for estates too big to hold: each inventory is staged as rows when it arrives (keeping only
 * compact link facts), then a second pass correlates, judges and diffs it page by page against the stored rows.
 * Memory follows one page and the changes, not the estate; every page ends with a yield, so the bot's event loop
 * never waits on more than one page of work. Once every vault and factory has answered, a source that answered is
 * judged at once, except what a link can change, so the second pass overlaps the slowest source's paging.
 */

/** Credentials per staging transaction and per correlate/policy/diff page: a few milliseconds of work each. */
export const STAGE_CHUNK = 500;
export const PAGE_SIZE = 250;
/**
 * Rows per write transaction (several judged pages): each transaction rewrites every index page it touches, and the
 * expiry index is touched at random (a first scan of 30k: 466–473 ms of writes in batches of 1,000, 591–707 ms in 250s).
 */
export const WRITE_BATCH = 1000;

/** Lets timers, I/O and clicks run between two pages. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface StreamScanOptions {
  /** Ordinal of this scan in the rows. */
  ordinal: number;
  rows: ScanRows;
  config: Pick<KeywardenConfig, 'policy' | 'keyVault'>;
  self: SelfIdentity;
  /**
   * Runs every source (per-host limits, timeouts); `onPage` takes each page of credentials as it arrives (a source's
   * pages in order, sources interleaved). Each source ends as its header, or as an estate error (its pages are dropped).
   */
  fetch(
    onPage: (index: number, credentials: Credential[]) => Promise<void>,
    onDone?: (index: number, outcome: InventoryHeader | EstateError) => void,
  ): Promise<Array<InventoryHeader | EstateError>>;
  /** Each source's estate, in the sources' order: with it, sources are judged as soon as no link can change them. */
  estates?: readonly Estate[];
  /** When policy judges: read when a source is judged early, else once every source has answered. */
  now(): number;
}

export interface StreamScanOutcome {
  errors: EstateError[];
  changes: ScanResult['changes'];
  counts: ScanCounts;
  scopeFindings: Finding[];
  /**
   * Where the scan's time went: reading the estates, then everything after (link, policy, diff, rows); and the share of
   * the scan its thread's event loop was busy (near 1: the thread's CPU, not the estates' answers, set the pace).
   */
  phases?: { fetchMs: number; afterFetchMs: number; busy?: number };
}

type ScopeHeader = Pick<EstateInventory, 'estate' | 'scope' | 'host' | 'facts' | 'consumers'>;

/** Hash of a credential's and its findings' JSON: the same text goes into the row. */
function contentHash(texts: { credential: string; findings: string }): string {
  return createHash('sha1').update(texts.credential).update('\n').update(texts.findings).digest('base64');
}

/** Ids sorted as `Array.prototype.sort` does, in steps (a first scan's 360k ids take a few hundred ms in one go). */
export async function sortInSteps(ids: string[], run = 8192): Promise<string[]> {
  if (ids.length <= run) return ids.sort();
  let runs: string[][] = [];
  for (let i = 0; i < ids.length; i += run) {
    runs.push(ids.slice(i, i + run).sort());
    await yieldToLoop();
  }
  while (runs.length > 1) {
    const merged: string[][] = [];
    for (let r = 0; r < runs.length; r += 2) merged.push(runs[r + 1] ? await mergeInSteps(runs[r]!, runs[r + 1]!, run * 4) : runs[r]!);
    runs = merged;
  }
  return runs[0]!;
}

async function mergeInSteps(a: string[], b: string[], step: number): Promise<string[]> {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  for (let k = 0; k < out.length; k++) {
    // Stable, and `<` compares UTF-16 code units like the default sort.
    out[k] = j >= b.length || (i < a.length && !(b[j]! < a[i]!)) ? a[i++]! : b[j++]!;
    if (k % step === step - 1) await yieldToLoop();
  }
  return out;
}

/**
 * Room for each source's staged positions in `seq`, so rows keep the sources' order whatever order they are judged in
 * (Tables pads seq to 10 digits: up to 999 sources; past that, one running count).
 */
const SEQ_SPAN = 10_000_000;
const MAX_SPANNED_SOURCES = 999;

export async function streamScan(options: StreamScanOptions): Promise<StreamScanOutcome> {
  const { rows, config, ordinal } = options;
  const builder = new CorrelationBuilder({ mappings: config.keyVault.mappings, vaults: config.keyVault.vaults });
  const headers: Array<ScopeHeader | undefined> = [];
  rows.clearStaging();
  const startedAt = performance.now();
  const loopAtStart = performance.eventLoopUtilization();

  // The first CHANGE_LIST_CAP ids of each list and the true totals: a first scan never holds every id.
  const changes = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
  const changeCounts = { added: 0, removed: 0, changed: 0 };
  const note = (list: 'added' | 'removed' | 'changed', id: string) => {
    changeCounts[list] += 1;
    if (changes[list].length < CHANGE_LIST_CAP) changes[list].push(id);
  };
  const counts: ScanCounts = { credentials: 0, byKind: {}, findings: {} };
  const seenScopes = new Set<string>();
  // A tokens-disabled workspace's finding names its stored tokens: that workspace's PATs (one workspace) are kept for it.
  const disabledTokens = new Map<number, Credential[]>();
  const spanned = (options.estates?.length ?? Infinity) <= MAX_SPANNED_SOURCES;
  let running = 0;
  const seqOf = (index: number, stagedSeq: number): number => (spanned ? index * SEQ_SPAN + stagedSeq : ++running);

  type Staged = { seq: number; credential: Credential; text?: string };
  // Judged rows wait here for one write of WRITE_BATCH or the source's end; an id already waiting is written before it
  // is read again.
  let pending: { upsert: CredentialRow[]; touch: Array<{ id: string; scan: number; seq: number }> } = { upsert: [], touch: [] };
  const pendingIds = new Set<string>();
  const flush = () => {
    if (pendingIds.size === 0) return;
    const batch = pending;
    pending = { upsert: [], touch: [] };
    pendingIds.clear();
    rows.write(batch);
  };
  /**
   * Policy, fingerprint and diff for one page of a source's staged credentials (links already applied), into the batch.
   * `text`: the staged JSON of a credential no link or mark changed, reused for its hash and its row.
   */
  const judge = (index: number, header: ScopeHeader, page: Staged[], held: (id: string) => Credential | undefined, now: number): void => {
    const scope: ScopeInput = { estate: header.estate, scope: header.scope, facts: header.facts };
    const credentials = markSelfCredentials(page.map((s) => s.credential), options.self);
    const findings = findingsByCredential(evaluatePolicy({ credentials, scopes: [scope], policy: config.policy, now, held: { get: held }, credentialsOnly: true }));
    if (credentials.some((c) => pendingIds.has(c.id))) flush();
    const stamps = rows.stamps(credentials.map((c) => c.id));
    const { upsert, touch } = pending;
    const tokensOff = header.estate === 'databricks' && header.facts.tokensEnabled === false;
    credentials.forEach((credential, i) => {
      const seq = seqOf(index, page[i]!.seq);
      const own = findings.get(credential.id) ?? [];
      const print = fingerprint(credential);
      const staged = page[i]!;
      const texts = { credential: (credential === staged.credential && staged.text) || JSON.stringify(credential), findings: own.length === 0 ? '[]' : JSON.stringify(own) };
      const hash = contentHash(texts);
      const old = stamps.get(credential.id);
      if (!old) note('added', credential.id);
      else if (old.fingerprint !== print) note('changed', credential.id);
      if (old && old.contentHash === hash) touch.push({ id: credential.id, scan: ordinal, seq });
      else {
        upsert.push({
          id: credential.id, estate: credential.where.estate, scope: credential.where.scope, kind: credential.kind, scan: ordinal, seq,
          expiresAt: credential.expiresAt, fingerprint: print, contentHash: hash,
          relevant: own.length > 0 || credential.heldIn.length > 0, credential, findings: own, texts,
        });
      }
      counts.credentials += 1;
      counts.byKind[credential.kind] = (counts.byKind[credential.kind] ?? 0) + 1;
      for (const f of own) counts.findings[`${f.code}|${f.severity}`] = (counts.findings[`${f.code}|${f.severity}`] ?? 0) + 1;
      seenScopes.add(scopeKey(credential.where.estate, credential.where.scope));
      if (tokensOff && credential.kind === 'databricks-pat') getOrCreate(disabledTokens, index, () => []).push(credential);
      pendingIds.add(credential.id);
    });
    if (pendingIds.size >= WRITE_BATCH) flush();
  };

  /**
   * Reads a source's staged credentials page by page (from `after` up to `until`), those `pick` takes, through `apply`
   * into `judge`; returns the staged positions it left.
   */
  const judgeSource = async (index: number, header: ScopeHeader, pick: (s: Staged) => boolean, apply: (c: Credential) => Credential,
    held: (id: string) => Credential | undefined, now: number, range: { after: number; until: number } = { after: 0, until: Infinity }): Promise<number[]> => {
    const left: number[] = [];
    for (let after = range.after; after < range.until;) {
      const staged = rows.staged(index, after, PAGE_SIZE);
      if (staged.length === 0) break;
      after = staged[staged.length - 1]!.seq;
      const page: Staged[] = [];
      for (const s of staged) {
        if (s.seq > range.until) break;
        if (!pick(s)) {
          left.push(s.seq);
          continue;
        }
        const credential = apply(s.credential);
        // The staged text still says exactly this credential only if the link left the object as it was.
        page.push(credential === s.credential && s.text !== undefined ? { seq: s.seq, credential, text: s.text } : { seq: s.seq, credential });
      }
      if (page.length > 0) judge(index, header, page, held, now);
      await yieldToLoop();
    }
    // A source judged is stored (a paged read during the scan sees it; a source is at most a few batches).
    flush();
    return left;
  };

  // Early judging: once every vault and factory has answered, nothing can link a credential the secrets and factories
  // do not name, so a source that answered is judged and written while slower ones (Graph) still page. What a link can
  // touch waits for the plan, after every source.
  const estates = options.estates;
  const linkSources = new Set(estates ? estates.flatMap((e, i) => (e === 'keyvault' || e === 'datafactory' ? [i] : [])) : []);
  const answered = new Map<number, ScopeHeader>();
  const factoryRefs: Array<{ secret: SecretRef }> = [];
  let linkFree: ((c: Credential) => boolean) | undefined;
  /** Sources judged early → the staged positions of what they left for the plan (often none). */
  const early = new Map<number, number[]>();
  let earlyWork: Promise<void> = Promise.resolve();
  let earlyFailure: { error: unknown } | undefined;
  const startEarly = (index: number, header: ScopeHeader) => {
    if (early.has(index) || earlyFailure) return;
    early.set(index, []);
    const free = linkFree!;
    earlyWork = earlyWork
      .then(async () => { early.set(index, await judgeSource(index, header, (s) => free(s.credential), (c) => c, () => undefined, options.now())); })
      .catch((error: unknown) => { earlyFailure ??= { error }; });
  };
  const onDone = estates ? (index: number, outcome: InventoryHeader | EstateError) => {
    if ('facts' in outcome) {
      answered.set(index, headerOf(outcome));
      if (outcome.estate === 'datafactory') factoryRefs.push(...(outcome.consumers ?? []));
    }
    linkSources.delete(index);
    if (linkSources.size > 0) return;
    linkFree ??= builder.linkFree(factoryRefs);
    for (const [i, header] of answered) startEarly(i, header);
  } : undefined;

  try {
    // Pass 1: stage each page as it arrives; only compact link facts stay in memory.
    const outcomes = await options.fetch(async (index, credentials) => {
      for (let i = 0; i < credentials.length; i += STAGE_CHUNK) {
        const chunk = credentials.slice(i, i + STAGE_CHUNK);
        builder.add(chunk, index, true);
        rows.stage(index, chunk);
        await yieldToLoop();
      }
    }, onDone);
    const fetchedAt = performance.now();
    await earlyWork;
    if (earlyFailure) throw earlyFailure.error;
    const errors: EstateError[] = [];
    outcomes.forEach((outcome, index) => {
      if (!('facts' in outcome)) {
        // Failed, perhaps after some pages: unknown, so its staged pages are left out and it links nothing.
        builder.drop(index);
        errors.push(outcome);
        return;
      }
      headers[index] = headerOf(outcome);
      builder.addScope(outcome);
    });
    // Linking keeps only the PATs and Entra credentials some secret names: a second read of the scopes they are in.
    const wanted = builder.wanted();
    for (let index = 0; index < headers.length; index++) {
      const header = headers[index];
      if (!header || !wanted.reads(header.estate, header.scope)) continue;
      for (let after = 0; ;) {
        const staged = rows.staged(index, after, STAGE_CHUNK);
        if (staged.length === 0) break;
        after = staged[staged.length - 1]!.seq;
        wanted.offer(staged.map((s) => s.credential), index);
        await yieldToLoop();
      }
    }
    const plan = builder.finish();
    const now = options.now();

    // Pass 2: per inventory in the sources' order, page by page: links, policy, fingerprint, one write per page (only
    // what a link can touch, for a source judged early).
    const scopeFindings: Finding[] = [];
    for (let index = 0; index < headers.length; index++) {
      const header = headers[index];
      if (!header) continue;
      const left = early.get(index);
      if (!left) await judgeSource(index, header, () => true, (c) => plan.apply(c), plan.held, now);
      else if (left.length > 0) {
        const wait = new Set(left);
        await judgeSource(index, header, (s) => wait.has(s.seq), (c) => plan.apply(c), plan.held, now, { after: left[0]! - 1, until: left[left.length - 1]! });
      }
      // Read through: its staged rows can go now, one source at a time (one delete of the whole staging blocks).
      rows.unstage?.(index);
      await yieldToLoop();
      const scope: ScopeInput = { estate: header.estate, scope: header.scope, facts: header.facts };
      const disabled = header.estate === 'databricks' && header.facts.tokensEnabled === false ? disabledTokens.get(index) ?? [] : [];
      for (const f of evaluateScopePolicy(scope, config.policy, disabled)) {
        scopeFindings.push(f);
        counts.findings[`${f.code}|${f.severity}`] = (counts.findings[`${f.code}|${f.severity}`] ?? 0) + 1;
      }
    }

    flush();
    // Rows no source saw: removed, unless their scope failed (unknown, not empty: they stay as they were).
    const failed = new Set(errors.map((e) => scopeKey(e.estate, e.scope)));
    const failedEstates = new Set(errors.map((e) => e.estate));
    for (let afterId = ''; ;) {
      const unseen = rows.unseen(ordinal, afterId, 1000);
      if (unseen.length === 0) break;
      afterId = unseen[unseen.length - 1]!.id;
      const gone = unseen.filter((r) => {
        const key = scopeKey(r.estate, r.scope);
        // An error can name another scope than the credential's (Entra: the tenant, not the app).
        return !failed.has(key) && !(failedEstates.has(r.estate) && !seenScopes.has(key));
      }).map((r) => r.id);
      rows.delete(gone);
      for (const id of gone) note('removed', id);
      await yieldToLoop();
    }
    changes.added = await sortInSteps(changes.added);
    changes.changed = await sortInSteps(changes.changed);
    changes.removed = await sortInSteps(changes.removed);
    const busy = Math.round(performance.eventLoopUtilization(loopAtStart).utilization * 100) / 100;
    const phases = { fetchMs: Math.round(fetchedAt - startedAt), afterFetchMs: Math.round(performance.now() - fetchedAt), busy };
    return { errors, changes: cappedChanges(changes, changeCounts), counts, scopeFindings, phases };
  } finally {
    // A scan that failed while early judging ran lets that finish before the staging goes.
    await earlyWork;
    rows.clearStaging();
  }
}

function headerOf(outcome: InventoryHeader): ScopeHeader {
  return { estate: outcome.estate, scope: outcome.scope, host: outcome.host, facts: outcome.facts ?? {}, consumers: outcome.consumers };
}
