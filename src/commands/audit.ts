/** `/audit [credential]`: the latest audit entries (for one credential, alert, job or JIT request when named). */
import type { ChatCommand, Reply } from '../domain/chat.js';
import { formatUtc } from '../domain/expiry.js';
import type { AuditRecord, Store, VerifiedAuditHead } from '../store/store.js';

export const AUDIT_USAGE = '/audit [credential id, name or job id]';
const SHOWN = 15;
const SCANNED = 2000;
/** One credential's whole story fits one message (~150 characters a line, well under Teams' 28 KB). */
const SHOWN_FOR_SUBJECT = 120;
const SCANNED_FOR_SUBJECT = 20_000;

function mentions(record: AuditRecord, needle: string): boolean {
  const hay = `${record.subject ?? ''} ${JSON.stringify(record.details ?? {})}`.toLowerCase();
  return hay.includes(needle);
}

export function auditLine(r: AuditRecord): string {
  const who = r.actor?.name ?? 'Keywarden';
  const d = r.details ?? {};
  const extra = [d.reason, d.error, d.summary, d.verb && `verb ${String(d.verb)}`, d.jobId && `job ${String(d.jobId)}`, d.planHash && `plan ${String(d.planHash).slice(0, 12)}`]
    .filter((x) => typeof x === 'string' && x.length > 0).slice(0, 3).join(' · ');
  return `#${r.seq} ${formatUtc(r.at)} · ${r.action} · ${r.result} · ${who}${r.subject ? ` · ${r.subject}` : ''}${extra ? ` — ${extra}` : ''}`;
}

/**
 * Everything about one credential: entries about it (approvals, refusals, every job step), entries naming it in their
 * details (alert events are about the alert id), and entries about those alerts and jobs. Oldest first.
 */
export function entriesFor(store: Store, subject: string): AuditRecord[] {
  const own = store.listAudit({ subject });
  const all = latestAudit(store, SCANNED_FOR_SUBJECT);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const subjects = new Set<string>([subject]);
  const jobs = new Set<string>();
  for (const r of [...own, ...all]) {
    const d = r.details ?? {};
    if (r.subject === subject || str(d.credentialId) === subject) {
      if (r.subject) subjects.add(r.subject);
      const job = str(d.jobId);
      if (job) jobs.add(job);
    }
  }
  const bySeq = new Map<number, AuditRecord>();
  for (const r of [...own, ...all]) {
    const d = r.details ?? {};
    const job = str(d.jobId);
    if ((r.subject && subjects.has(r.subject)) || str(d.credentialId) === subject || (job && jobs.has(job))) bySeq.set(r.seq, r);
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The newest `n` records, read from the end (the log only grows: reading all of it would block the bot). */
function latestAudit(store: Store, n: number): AuditRecord[] {
  const head = store.auditHead();
  return head ? store.listAudit({ afterSeq: Math.max(0, head.seq - n) }) : [];
}

/**
 * The chain as far as this process has checked it: the first /audit walks the whole log, later ones only the records
 * written since (and that the last checked one is unchanged). `keywarden audit --verify` is the full check.
 */
function chainChecker(store: Store): () => string {
  let checked: VerifiedAuditHead | undefined;
  return () => {
    // The walk starts again at the last checked record, so an edit to it is caught too.
    const last = checked && store.listAudit({ afterSeq: checked.seq - 1, limit: 1 })[0];
    const from = checked && last?.hash === checked.hash ? { ...checked, seq: checked.seq - 1, hash: last.prevHash } : undefined;
    const verdict = store.verifyAudit(from);
    if (!verdict.ok) {
      checked = undefined;
      return `hash chain BROKEN at #${verdict.brokenAt} — run "keywarden audit --verify"`;
    }
    checked = verdict.head;
    return `hash chain intact (${verdict.count} entries)`;
  };
}

export function auditCommand(options: { store: Store }): ChatCommand {
  const chainStatus = chainChecker(options.store);
  return {
    name: 'audit',
    usage: AUDIT_USAGE,
    description: 'show audit entries (alert events, decisions, refusals and every job step) for one credential, or the latest ones',
    example: '/audit databricks-pat:ws-prod',
    async handle(args): Promise<Reply> {
      const named = args.trim().slice(0, 200);
      const needle = named.toLowerCase();
      const chain = chainStatus();
      const exact = named ? entriesFor(options.store, named) : [];
      if (exact.length > 0) {
        // The whole story of one credential, oldest first; only a very long one is cut (message size), from the oldest.
        const shown = exact.slice(-SHOWN_FOR_SUBJECT);
        const cut = exact.length - shown.length;
        return { kind: 'text', text: [
          `All ${exact.length} audit entr${exact.length === 1 ? 'y' : 'ies'} for "${named}", oldest first (${chain}):`,
          ...(cut > 0 ? [`(${cut} older entries not shown — run "keywarden audit --export" for the whole log)`] : []),
          ...shown.map(auditLine),
        ].join('\n\n') };
      }
      const recent = latestAudit(options.store, SCANNED);
      const records = needle ? recent.filter((r) => mentions(r, needle)) : recent;
      const shown = records.slice(-SHOWN).reverse();
      if (shown.length === 0) return { kind: 'text', text: needle ? `No audit entries mention "${named.slice(0, 80)}".` : 'The audit log is empty.' };
      return { kind: 'text', text: [`Latest ${shown.length} audit entr${shown.length === 1 ? 'y' : 'ies'}${needle ? ` for "${named.slice(0, 80)}"` : ''} (${chain}):`, ...shown.map(auditLine)].join('\n\n') };
    },
  };
}
