/**
 * `/move-to-sp <credential>`: the plan for moving a pipeline off a person's PAT onto the workspace's service
 * principal, as a card with Approve (an offer: the button carries only { offerId, nonce }). The credential is named
 * as /expiring shows it: its id, its token id or its name. Nothing runs until an approver (not the requester) approves.
 */
import { createRemedyOffer } from '../../approvals/remedy-offers.js';
import type { ChatCommand, Reply } from '../../domain/chat.js';
import type { Credential } from '../../domain/credential.js';
import { eachPage, type ScanView } from '../../domain/scan.js';
import { checkMove, movePlanCard, type MoveToSpOptions } from './actions.js';
import { SP_CONFIG_KEY } from './plan.js';

export const MOVE_USAGE = '/move-to-sp <credential>';
export const MOVE_EXAMPLE = '/move-to-sp bob-jdbc';

export interface MoveCommandOptions extends MoveToSpOptions {
  /** The latest scan (one is run if there is none yet), read page by page. */
  latestScan(): Promise<ScanView>;
}

function details(options: MoveToSpOptions): string {
  const sps = options.config.governance.moveToServicePrincipal.servicePrincipals;
  return [
    '<credential>: a Databricks PAT as /expiring shows it — its name (token comment), its token id, or its full id (databricks-pat:<workspace>:<token id>)',
    `Service principals: ${sps.length ? sps.map((s) => `${s.workspace} → ${s.name}`).join(', ') : `none configured (${SP_CONFIG_KEY})`}`,
    'The reply is a plan card; an approver other than you approves it (approvals.highRisk action move-to-sp may ask for more).',
  ].join(' · ');
}

/**
 * The PATs a name picks: exact id or token id first, else every PAT with that name. Names have no index: the PATs are
 * read page by page (a turn of the event loop between pages), keeping only the matches.
 */
export async function pickPat(view: ScanView, wanted: string): Promise<Credential[]> {
  const exact: Credential[] = [];
  const named: Credential[] = [];
  const lower = wanted.toLowerCase();
  for await (const page of eachPage(view.pages({ where: { kind: 'databricks-pat' } }))) {
    for (const { credential: c } of page) {
      if (c.kind !== 'databricks-pat') continue;
      if (c.id === wanted || c.nativeId === wanted) exact.push(c);
      else if (exact.length === 0 && c.name.toLowerCase() === lower) named.push(c);
    }
  }
  return exact.length ? exact : named;
}

export function moveToSpCommand(options: MoveCommandOptions): ChatCommand {
  const help = () => `Usage: ${MOVE_USAGE}\nMoves a pipeline off a person's Databricks PAT: an on-behalf-of token for the workspace's service principal goes into the same Key Vault secret, is verified, and the person's token is revoked after the grace window.\n${details(options)}\nExample: ${MOVE_EXAMPLE}`;
  return {
    name: 'move-to-sp',
    usage: MOVE_USAGE,
    description: "plan moving a pipeline off a person's Databricks PAT onto the workspace's service principal (approval needed)",
    example: MOVE_EXAMPLE,
    details: details(options),
    async handle(args, ctx): Promise<Reply> {
      const wanted = args.trim();
      if (!wanted || /^(--help|-h)$/.test(wanted)) return { kind: 'text', text: help() };
      if (wanted.length > 200 || /\s/.test(wanted)) return { kind: 'text', text: `Give one credential name or id.\n${help()}` };
      const found = await pickPat(await options.latestScan(), wanted);
      if (found.length === 0) return { kind: 'text', text: `No Databricks PAT named "${wanted.slice(0, 60)}" in the last scan. /expiring 90d pat lists them with their names.` };
      if (found.length > 1) {
        return { kind: 'text', text: `"${wanted.slice(0, 60)}" names ${found.length} PATs; give the id of one:\n${found.map((c) => `- ${c.id} (${c.where.label}, owner ${c.owner?.name ?? 'unknown'})`).join('\n')}` };
      }
      const credential = found[0]!;
      const checked = await checkMove(options, credential);
      if (!checked.ok) return { kind: 'text', text: `Cannot move ${credential.name} (${credential.where.label}) to a service principal: ${checked.reason}.` };
      const offer = createRemedyOffer(options.store, options.clock, {
        remedy: 'move-to-sp', subject: credential.id, scope: credential.where.scope, parameters: {},
        offeredBy: { ...(ctx.actor.aadObjectId ? { aadObjectId: ctx.actor.aadObjectId } : {}), name: ctx.actor.name || 'someone' },
      });
      const card = movePlanCard({
        options, credential, plan: checked.plan, hash: checked.hash, requestedBy: offer.offeredBy?.name,
        confirmData: { offerId: offer.id, nonce: offer.nonce, confirmed: true },
      });
      return { kind: 'card', card };
    },
  };
}
