import type { Clock } from '../clock.js';
import { renderCard } from '../cards/render.js';
import type { Actor, AdaptiveCard, ChatCommand, Reply } from '../domain/chat.js';
import { SEVERITY_ORDER, type CredentialKind } from '../domain/credential.js';
import { kindLabel } from '../domain/policy.js';
import { changeCountsOf, scanCountsOf, type ScanResult } from '../domain/scan.js';
import type { RunScanOptions, ScanTrigger } from '../scanner/scanner.js';
import { errorLine } from './view.js';

/** `/scan`: run a scan now (approvers only) and report the counts. */

/** Who may run /scan. Swappable: the approvals module can pass a live group-membership check. */
export type ApproverCheck = (actor: Actor) => boolean | Promise<boolean>;

/** Approver by configured Entra object id (config.approvals.users). Group membership is checked by the approvals module. */
export function isApprover(actor: Actor, approvers: { users: readonly string[] }): boolean {
  const id = actor.aadObjectId?.toLowerCase();
  return Boolean(id) && approvers.users.some((u) => u.toLowerCase() === id);
}

export interface ScanCommandDeps {
  scans: { runScan(trigger: ScanTrigger, options?: RunScanOptions): Promise<ScanResult> };
  clock: Clock;
  isApprover: ApproverCheck;
}

const KINDS: CredentialKind[] = ['databricks-pat', 'keyvault-secret', 'entra-password', 'entra-certificate'];

export function buildScanResultCard(scan: ScanResult): AdaptiveCard {
  const seconds = Math.max(0, (scan.finishedAt - scan.startedAt) / 1000);
  const { added, removed, changed } = changeCountsOf(scan);
  // From the counts kept while scanning: the card never reads the estate.
  const counts = scanCountsOf(scan);
  const findingCounts = Object.entries(counts.findings).map(([key, n]) => ({ severity: key.split('|')[1], n }));
  const total = findingCounts.reduce((sum, f) => sum + f.n, 0);
  return renderCard('scan-result', {
    title: scan.errors.length ? `Scan finished with ${scan.errors.length} estate error${scan.errors.length === 1 ? '' : 's'}` : 'Scan finished',
    summary: `${counts.credentials} credentials, ${total} findings · took ${seconds.toFixed(1)} s`,
    kinds: KINDS.map((k) => ({ title: kindLabel(k), value: String(counts.byKind[k] ?? 0) })),
    severities: [...SEVERITY_ORDER].reverse().map((s) => ({ title: s, value: String(findingCounts.filter((f) => f.severity === s).reduce((sum, f) => sum + f.n, 0)) })),
    changesText: `Since the previous scan: ${added} new, ${removed} gone, ${changed} changed.`,
    errorsTitle: 'Could not scan:',
    errors: scan.errors.map((e) => ({ text: errorLine(e) })),
    hint: 'See /expiring for what expires soon and /findings for the rest.',
  });
}

export function scanCommand(deps: ScanCommandDeps): ChatCommand {
  return {
    name: 'scan',
    usage: '/scan',
    description: 'Scans every workspace, vault and tenant now and reports the counts (approvers only).',
    example: '/scan',
    async handle(_args, ctx): Promise<Reply> {
      if (!(await deps.isApprover(ctx.actor))) {
        return { kind: 'text', text: 'Only approvers can start a scan. Ask an approver, or use /expiring and /findings to read the latest scan.' };
      }
      // Listeners (alert cards) carry on in the background; the answer needs only the counts.
      let scan: ScanResult;
      try {
        scan = await deps.scans.runScan('command', { waitForListeners: false });
      } catch (err) {
        // The scan thread says what stopped it and the fix; anything else is an incident like any failed command.
        if ((err as Error)?.name !== 'ScanThreadError') throw err;
        return { kind: 'text', text: `The scan did not finish: ${(err as Error).message}` };
      }
      return { kind: 'card', card: buildScanResultCard(scan) };
    },
  };
}
