/**
 * `/retire-unused <workspace|all> [days]` and `/revoke <credential>`: each answers with a plan card bound to a fresh
 * remedy offer; nothing happens until an approver clicks it.
 */
import type { ChatCommand, ChatContext, Reply } from '../../domain/chat.js';
import type { Credential } from '../../domain/credential.js';
import { eachPage, scanViewOf, type ScanResult } from '../../domain/scan.js';
import { kindLabel } from '../../domain/policy.js';
import { planHash } from '../../domain/plan.js';
import { revokeBlocker } from '../revoke/revoke.js';
import { offerRetire, offerRevoke, retireOptionsFor, retirePlanCard, revokeForm, type RemedyActionsOptions } from './actions.js';
import { planRetire, retireBatchOf } from './planner.js';

export const RETIRE_USAGE = '/retire-unused <workspace|all> [days]';
export const RETIRE_EXAMPLE = '/retire-unused ws-analytics 90';
export const REVOKE_USAGE = '/revoke <credential id or name>';
export const REVOKE_EXAMPLE = '/revoke bi-export';

const wantsHelp = (args: string) => /(^|\s)(--help|-h)(\s|$)/.test(args);
const helpText = (c: Pick<ChatCommand, 'usage' | 'description' | 'details' | 'example'>) => `${c.usage}\n\n${c.description}\n\n${c.details ?? ''}\n\nExample: ${c.example}`;
const actorOf = (ctx: ChatContext) => ({ aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name });

export function retireUnusedCommand(options: RemedyActionsOptions): ChatCommand {
  const command: ChatCommand = {
    name: 'retire-unused',
    usage: RETIRE_USAGE,
    description: 'Plans revoking the Databricks PATs of a workspace (or all) that are unused for N days or not rotated within policy: owners are @mentioned first, and a token used during the wait is kept.',
    example: RETIRE_EXAMPLE,
    details: `workspace: a configured Databricks workspace, or "all". days: unused for at least this many days (default governance.retire.unusedDays = ${options.config.governance.retire.unusedDays}; 1–3650). The batch waits governance.retire.waitDays (${options.config.governance.retire.waitDays}) after approval; whoever asks cannot approve.`,
    async handle(args, ctx): Promise<Reply> {
      if (wantsHelp(args)) return { kind: 'text', text: helpText(command) };
      const words = args.trim().split(/\s+/).filter(Boolean);
      const workspaces = options.config.databricks.workspaces.map((w) => w.name);
      const usage = (problem: string): Reply => ({ kind: 'text', text: `${problem}. Usage: ${RETIRE_USAGE} — e.g. ${RETIRE_EXAMPLE}` });
      if (words.length < 1 || words.length > 2) return usage('give a workspace (or "all") and optionally a number of days');
      const [scope, daysText] = words as [string, string | undefined];
      if (scope !== 'all' && !workspaces.includes(scope)) return usage(`"${scope.slice(0, 40)}" is not a configured workspace${workspaces.length ? ` (one of: ${workspaces.join(', ')}, or all)` : ''}`);
      const digits = daysText?.replace(/d$/i, '');
      const days = digits === undefined ? undefined : /^\d{1,4}$/.test(digits) ? Number(digits) : NaN;
      if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 3650)) return usage('days must be a whole number from 1 to 3650');
      const scan = await options.scans.latestOrScan('command');
      const ro = retireOptionsFor(options, scope, days);
      const plan = planRetire(await retireBatchOf(scan, options.config, ro), ro);
      const hash = planHash(plan);
      const offer = offerRetire(options, { scope, unusedDays: ro.unusedDays, offeredBy: actorOf(ctx), ctx, planHash: hash });
      return { kind: 'card', card: retirePlanCard(options, offer, plan, hash) };
    },
  };
  return command;
}

/**
 * The credentials `query` names: its id, its native id (token id, keyId), or its name as /expiring shows it. An exact id
 * is one look-up; anything else reads the scan page by page, keeping only matches.
 */
export async function findInScan(scan: ScanResult, query: string): Promise<Credential[]> {
  const view = scanViewOf(scan);
  const exact = view.get(query.trim());
  if (exact) return [exact.credential];
  const q = query.trim().toLowerCase();
  const byId: Credential[] = [];
  const byName: Credential[] = [];
  for await (const page of eachPage(view.pages())) {
    for (const { credential: c } of page) {
      if (c.id.toLowerCase() === q || c.nativeId.toLowerCase() === q) byId.push(c);
      else if (c.name.toLowerCase() === q) byName.push(c);
    }
  }
  return byId.length > 0 ? byId : byName;
}

export function revokeCommand(options: RemedyActionsOptions): ChatCommand {
  const command: ChatCommand = {
    name: 'revoke',
    usage: REVOKE_USAGE,
    description: 'Plans revoking one Databricks PAT or Entra client secret from the latest scan, with or without an alert (e.g. a leaked but healthy token). Same rules as the card\'s Revoke: a justification, and a second approver or an override reason when it was used recently.',
    example: REVOKE_EXAMPLE,
    details: 'credential: its id (databricks-pat:<workspace>:<token id>, entra-password:<app id>:<key id>), its token id / key id, or its name as /expiring shows it. A name used twice lists the ids to choose from.',
    async handle(args, ctx): Promise<Reply> {
      if (wantsHelp(args)) return { kind: 'text', text: helpText(command) };
      const query = args.trim();
      if (!query) return { kind: 'text', text: `Name the credential to revoke. Usage: ${REVOKE_USAGE} — e.g. ${REVOKE_EXAMPLE}` };
      const scan = await options.scans.latestOrScan('command');
      const found = await findInScan(scan, query);
      if (found.length === 0) return { kind: 'text', text: `No credential in the latest scan is called "${query.slice(0, 80)}". Use the id or name /expiring shows (e.g. ${REVOKE_EXAMPLE}).` };
      if (found.length > 1) {
        return { kind: 'text', text: `"${query.slice(0, 80)}" names ${found.length} credentials; give the id of one:\n${found.slice(0, 10).map((c) => `- ${c.id} (${kindLabel(c.kind)} in ${c.where.label})`).join('\n')}` };
      }
      const c = found[0]!;
      const blocker = revokeBlocker(c);
      if (blocker) return { kind: 'text', text: `Keywarden will not revoke ${c.name}: ${blocker}.` };
      const offer = offerRevoke(options, c, ctx, actorOf(ctx));
      return { kind: 'card', card: revokeForm(options, offer, c) };
    },
  };
  return command;
}
