/** `/audit [credential]`: the latest audit entries (for one credential, alert, job or JIT request when named). */
import type { ChatCommand, Reply } from '../domain/chat.js';
import { formatUtc } from '../domain/expiry.js';
import type { AuditRecord, Store } from '../store/store.js';

export const AUDIT_USAGE = '/audit [credential id, name or job id]';
const SHOWN = 15;
const SCANNED = 2000;

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

export function auditCommand(options: { store: Store }): ChatCommand {
  return {
    name: 'audit',
    usage: AUDIT_USAGE,
    description: 'show recent audit entries (decisions, refusals and job steps), optionally for one credential',
    example: '/audit databricks-pat:ws-prod',
    async handle(args): Promise<Reply> {
      const needle = args.trim().toLowerCase().slice(0, 200);
      const exact = needle ? options.store.listAudit({ subject: args.trim() }) : [];
      let records = exact;
      if (records.length === 0) {
        const all = options.store.listAudit();
        const recent = all.slice(-SCANNED);
        records = needle ? recent.filter((r) => mentions(r, needle)) : recent;
      }
      const shown = records.slice(-SHOWN).reverse();
      if (shown.length === 0) return { kind: 'text', text: needle ? `No audit entries mention "${args.trim().slice(0, 80)}".` : 'The audit log is empty.' };
      const verified = options.store.verifyAudit();
      const chain = verified.ok ? `hash chain intact (${verified.count} entries)` : `hash chain BROKEN at #${verified.brokenAt} — run "keywarden audit --verify"`;
      return { kind: 'text', text: [`Latest ${shown.length} audit entr${shown.length === 1 ? 'y' : 'ies'}${needle ? ` for "${args.trim().slice(0, 80)}"` : ''} (${chain}):`, ...shown.map(auditLine)].join('\n\n') };
    },
  };
}
