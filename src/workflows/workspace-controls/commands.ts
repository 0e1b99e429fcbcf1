/**
 * `/max-lifetime <workspace> [days]` and `/restrict-tokens <workspace>`: post the plan card at once (nothing changes
 * until an approver approves it). `--help` explains the arguments and what the plan shows.
 */
import { createRemedyOffer } from '../../approvals/remedy-offers.js';
import type { ChatCommand, ChatContext, Reply } from '../../domain/chat.js';
import { errorText } from '../engine/errors.js';
import { planForOffer, remedyPlanCard, type RemedyActionsOptions, type WorkspaceRemedy } from './actions.js';
import { allowListOf } from './plan-restrict.js';

export const MAX_LIFETIME_USAGE = '/max-lifetime <workspace> [days]';
export const MAX_LIFETIME_EXAMPLE = '/max-lifetime ws-prod 90';
export const RESTRICT_USAGE = '/restrict-tokens <workspace>';
export const RESTRICT_EXAMPLE = '/restrict-tokens ws-dev';

const wantsHelp = (args: string) => /(^|\s)(--help|-h)(\s|$)/.test(args);

function workspaceProblem(options: RemedyActionsOptions, name: string | undefined): string | undefined {
  const names = options.config.databricks.workspaces.map((w) => w.name);
  if (!name) return `give a workspace${names.length ? ` (one of: ${names.join(', ')})` : ''}`;
  return names.includes(name) ? undefined : `"${name.slice(0, 40)}" is not a configured workspace${names.length ? ` (one of: ${names.join(', ')})` : ''}`;
}

async function planReply(options: RemedyActionsOptions, ctx: ChatContext, remedy: WorkspaceRemedy, workspace: string, parameters: Record<string, number>): Promise<Reply> {
  const offer = createRemedyOffer(options.store, options.clock, {
    remedy, subject: workspace, scope: workspace, parameters,
    offeredBy: { ...(ctx.actor.aadObjectId ? { aadObjectId: ctx.actor.aadObjectId } : {}), name: ctx.actor.name },
  });
  try {
    const built = await planForOffer(options, offer, AbortSignal.timeout(20_000));
    return { kind: 'card', card: remedyPlanCard(options, offer, built) };
  } catch (err) {
    return { kind: 'text', text: `Could not plan this for ${workspace}: ${errorText(err)}.` };
  }
}

export function maxLifetimeCommand(options: RemedyActionsOptions): ChatCommand {
  const defaultDays = options.config.governance.workspaceControls.maxLifetimeDays;
  const details = [
    '<workspace>: a configured Databricks workspace',
    `[days]: the new maxTokenLifetimeDays, 1 to 730 (default ${defaultDays}, governance.workspaceControls.maxLifetimeDays)`,
    'The plan shows the value now and after, and the existing tokens that live longer: the limit applies to new tokens only, so they keep working until they expire.',
    'After an approver approves, Keywarden sets workspace-conf, reads it back, and posts Rotate / Revoke buttons for those tokens and a Rollback button in the thread.',
  ].join(' · ');
  return {
    name: 'max-lifetime',
    usage: MAX_LIFETIME_USAGE,
    description: 'plan (and, once approved, set) the maximum lifetime of new tokens in a Databricks workspace',
    example: MAX_LIFETIME_EXAMPLE,
    details,
    async handle(args, ctx): Promise<Reply> {
      if (wantsHelp(args)) return { kind: 'text', text: `Usage: ${MAX_LIFETIME_USAGE}\n${details.replace(/ · /g, '\n')}\nExample: ${MAX_LIFETIME_EXAMPLE}` };
      const [workspace, daysText, extra] = args.trim().split(/\s+/).filter(Boolean);
      const problem = workspaceProblem(options, workspace)
        ?? (extra !== undefined ? 'too many arguments' : undefined)
        ?? (daysText !== undefined && !(/^\d{1,3}d?$/i.test(daysText) && Number(daysText.replace(/d$/i, '')) >= 1 && Number(daysText.replace(/d$/i, '')) <= 730) ? `days must be a whole number from 1 to 730 (got "${daysText.slice(0, 20)}")` : undefined);
      if (problem) return { kind: 'text', text: `Cannot plan a maximum lifetime: ${problem}.\nUsage: ${MAX_LIFETIME_USAGE}\nExample: ${MAX_LIFETIME_EXAMPLE}` };
      const days = daysText === undefined ? defaultDays : Number(daysText.replace(/d$/i, ''));
      return planReply(options, ctx, 'max-lifetime', workspace!, { days });
    },
  };
}

export function restrictTokensCommand(options: RemedyActionsOptions): ChatCommand {
  const configured = options.config.governance.workspaceControls.tokenAllowList.map((a) => a.workspace);
  const details = [
    `<workspace>: a configured Databricks workspace with an allow-list in governance.workspaceControls.tokenAllowList (${configured.length ? `configured: ${configured.join(', ')}` : 'none configured yet'})`,
    'The plan names everyone who loses CAN_USE on tokens: a direct grant lost deletes their tokens at once (unrecoverable); a loss through a group makes their tokens stop working until access returns — each token, and the Key Vault secrets and Data Factory pipelines that hold it.',
    'Someone other than you approves (approvals.highRisk can ask for more approvers). Keywarden checks the ACL has not changed, PATCHes the grants to add, PUTs the full list only when removing, and reads it back.',
  ].join(' · ');
  return {
    name: 'restrict-tokens',
    usage: RESTRICT_USAGE,
    description: 'plan (and, once approved, apply) the token allow-list of a Databricks workspace: who may create and use tokens',
    example: RESTRICT_EXAMPLE,
    details,
    async handle(args, ctx): Promise<Reply> {
      if (wantsHelp(args)) return { kind: 'text', text: `Usage: ${RESTRICT_USAGE}\n${details.replace(/ · /g, '\n')}\nExample: ${RESTRICT_EXAMPLE}` };
      const [workspace, extra] = args.trim().split(/\s+/).filter(Boolean);
      const problem = workspaceProblem(options, workspace) ?? (extra !== undefined ? 'too many arguments' : undefined)
        ?? (allowListOf(options.config, workspace!) ? undefined : `no token allow-list is configured for ${workspace} — add it to governance.workspaceControls.tokenAllowList`);
      if (problem) return { kind: 'text', text: `Cannot plan a token restriction: ${problem}.\nUsage: ${RESTRICT_USAGE}\nExample: ${RESTRICT_EXAMPLE}` };
      return planReply(options, ctx, 'restrict-tokens', workspace!, {});
    },
  };
}
