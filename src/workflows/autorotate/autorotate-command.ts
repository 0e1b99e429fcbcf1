/**
 * `/autorotate <credential|selector> <days-before> [grace-hours]`: proposes a standing rotation rule and answers with
 * its plan card. Nothing runs until approvers approve it on that card. Run again for an existing rule (same selector,
 * or `rule:R1`) to change it: the change needs a new approval, and the rule stays as it is until then.
 */
import { listAutoRotationRules, type AutoRotationRule } from '../../approvals/auto-rotation.js';
import type { StandingSelector } from '../../approvals/standing.js';
import { supportChannels } from '../../alerts/routing.js';
import { renderCard } from '../../cards/render.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import type { ChatCommand, ChatContext, Reply } from '../../domain/chat.js';
import type { Credential } from '../../domain/credential.js';
import { eachPage, type ScanView } from '../../domain/scan.js';
import type { KeywardenConfig } from '../../config/schema.js';
import { proposalCard } from './rule-actions.js';
import { lifetimeFor, type RuleParameters } from './rule-plan.js';
import { coverageIn } from './rule-select.js';
import { findRule, storeProposal } from './rules-store.js';
import { actorOf, conversationOf, latestView, type RulesOptions } from './rules-context.js';

export const AUTOROTATE_USAGE = '/autorotate <credential|selector> <days-before> [grace-hours]';
export const AUTOROTATE_EXAMPLE = '/autorotate kind:databricks-pat scope:ws-prod tag:pipeline=adf 14 24';
const MAX_DAYS = 365;
const MAX_GRACE_HOURS = 720;

const KINDS: Record<string, NonNullable<StandingSelector['kind']>> = {
  'databricks-pat': 'databricks-pat', pat: 'databricks-pat',
  'entra-password': 'entra-password', sp: 'entra-password', entra: 'entra-password',
  'keyvault-secret': 'keyvault-secret', secret: 'keyvault-secret',
};

export interface ParsedAutorotate {
  /** A credential named by id or name (as /expiring shows it), else undefined. */
  credential?: string;
  selector: Omit<StandingSelector, 'credentialIds'>;
  days: number;
  graceHours?: number;
  /** `rule:R1`: the existing rule this changes. */
  rule?: string;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

export function parseAutorotateArgs(args: string): Parsed<ParsedAutorotate> {
  const words = args.trim().split(/\s+/).filter(Boolean);
  const selector: ParsedAutorotate['selector'] = {};
  const numbers: string[] = [];
  const name: string[] = [];
  let rule: string | undefined;
  for (const word of words) {
    const [key, ...restParts] = word.split(':');
    const rest = restParts.join(':');
    if (restParts.length && key === 'kind') {
      const kind = KINDS[rest.toLowerCase()];
      if (!kind) return { ok: false, problem: `"${rest.slice(0, 30)}" is not a kind (databricks-pat, entra-password or keyvault-secret)` };
      selector.kind = kind;
    } else if (restParts.length && key === 'scope') {
      if (!/^[A-Za-z0-9._-]{1,100}$/.test(rest)) return { ok: false, problem: 'scope: takes a workspace, vault or app name, e.g. scope:ws-prod' };
      selector.scope = rest;
    } else if (restParts.length && key === 'tag') {
      const [tagName, ...value] = rest.split('=');
      if (!tagName || !/^[A-Za-z0-9._-]{1,64}$/.test(tagName)) return { ok: false, problem: 'tag: takes a Key Vault tag name and an optional value, e.g. tag:pipeline=adf' };
      selector.tag = value.length ? { name: tagName, value: value.join('=').slice(0, 128) } : { name: tagName };
    } else if (restParts.length && key === 'rule') {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(rest)) return { ok: false, problem: 'rule: takes a rule name, e.g. rule:R1' };
      rule = rest;
    } else if (/^\d+(?:\.\d+)?[dh]?$/i.test(word) && (numbers.length > 0 || name.length > 0 || Object.keys(selector).length > 0)) {
      numbers.push(word);
    } else if (numbers.length > 0) {
      return { ok: false, problem: `"${word.slice(0, 40)}" comes after the numbers; put the credential or selector first` };
    } else {
      name.push(word);
    }
  }
  if (name.length === 0 && Object.keys(selector).length === 0) return { ok: false, problem: 'say which credentials: a credential id or name, or a selector (kind:, scope:, tag:)' };
  if (name.length > 0 && Object.keys(selector).length > 0) return { ok: false, problem: 'give either one credential or a selector, not both' };
  if (numbers.length === 0 || numbers.length > 2) return { ok: false, problem: 'give how many days before expiry it fires, and optionally the grace window in hours' };
  const days = Number(numbers[0]!.replace(/d$/i, ''));
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) return { ok: false, problem: `days before expiry must be a whole number from 1 to ${MAX_DAYS}` };
  const graceText = numbers[1]?.replace(/h$/i, '');
  const graceHours = graceText === undefined ? undefined : Number(graceText);
  if (graceHours !== undefined && !(graceHours >= 0 && graceHours <= MAX_GRACE_HOURS)) return { ok: false, problem: `the grace window must be 0 to ${MAX_GRACE_HOURS} hours` };
  return { ok: true, value: { ...(name.length ? { credential: name.join(' ') } : {}), selector, days, ...(graceHours !== undefined ? { graceHours } : {}), ...(rule ? { rule } : {}) } };
}

/**
 * A credential by id, or by name as /expiring shows it (a Key Vault copy of another credential is that credential).
 * Names have no index: every row is read, page by page, keeping only the matches.
 */
async function findCredential(view: ScanView | undefined, ref: string): Promise<Credential | Credential[] | undefined> {
  if (!view) return undefined;
  const byId = view.get(ref)?.credential;
  if (byId) return byId;
  const wanted = ref.toLowerCase();
  const named: Credential[] = [];
  for await (const page of eachPage(view.pages())) {
    for (const { credential: c } of page) {
      if (c.name.toLowerCase() === wanted && !(c.kind === 'keyvault-secret' && c.holds && view.get(c.holds))) named.push(c);
    }
  }
  return named.length === 1 ? named[0] : named.length > 1 ? named : undefined;
}

export function autorotateDetails(config: KeywardenConfig): string {
  return [
    '<credential>: an id or a name as /expiring shows it · <selector>: any of kind:databricks-pat|entra-password, scope:<workspace|vault|app>, tag:<name>[=<value>] (Key Vault tags of the secret that holds it)',
    `<days-before>: fire this many days before each covered credential expires (1 to ${MAX_DAYS}) · [grace-hours]: how long the old credential keeps working (default ${config.workflows.graceHours} h)`,
    `New credentials live workflows.patLifetimeDays (${config.workflows.patLifetimeDays} d) or entraSecretLifetimeDays (${config.workflows.entraSecretLifetimeDays} d). The rule needs the approvals a rotation of what it covers would need, and lapses ${config.autoRotation.reviewDays} days after approval unless renewed.`,
    'rule:R1 changes an existing rule (so does the same selector again); R1 stays as it is until the change is approved.',
  ].join(' · ');
}

/** The help card of one command, for `--help`. */
export function commandHelp(command: Pick<ChatCommand, 'name' | 'usage' | 'description' | 'details' | 'example'>, botName: string): Reply {
  return { kind: 'card', card: renderCard('help', {
    title: `/${command.name}`, hint: `In a channel, mention me first, e.g. @${botName} /${command.name}`,
    commands: [{ usage: command.usage, description: command.description, details: command.details ?? '', example: command.example ?? '' }],
  }) };
}

const LIVE = ['active', 'paused', 'expired'];

export function autorotateCommand(options: RulesOptions): ChatCommand {
  const command: ChatCommand = {
    name: 'autorotate',
    usage: AUTOROTATE_USAGE,
    description: 'proposes a standing rule that rotates credentials automatically N days before they expire; approvers approve it on its card',
    example: AUTOROTATE_EXAMPLE,
    details: autorotateDetails(options.config),
    async handle(args, ctx): Promise<Reply> {
      if (/(^|\s)(--help|-h)(\s|$)/.test(args)) return commandHelp(command, options.config.bot.name);
      const { store, config, clock } = options;
      const usage = `\nUsage: ${AUTOROTATE_USAGE}\nExample: ${AUTOROTATE_EXAMPLE}`;
      const parsed = parseAutorotateArgs(args);
      if (!parsed.ok) return { kind: 'text', text: `Cannot propose a rule: ${parsed.problem}.${usage}` };
      if (!ctx.actor.aadObjectId) return { kind: 'text', text: 'Cannot propose a rule: your Entra identity was not in the message; use Teams signed in with your work account.' };
      const p = parsed.value;
      const view = latestView(options);
      let selector: StandingSelector = p.selector;
      if (p.credential) {
        const found = await findCredential(view, p.credential);
        if (!found) return { kind: 'text', text: `Cannot propose a rule: no credential "${p.credential.slice(0, 60)}" in the latest scan (/expiring shows names; /scan runs a scan).` };
        if (Array.isArray(found)) return { kind: 'text', text: `Cannot propose a rule: ${found.length} credentials are named "${p.credential.slice(0, 60)}"; use the id of one: ${found.slice(0, 5).map((c) => c.id).join(', ')}.` };
        selector = { credentialIds: [found.id] };
      }
      const parameters: RuleParameters = { selector, days: p.days, graceHours: p.graceHours ?? config.workflows.graceHours };
      const coverage = await coverageIn(view, selector, config);
      const lifetime = lifetimeFor(selector, coverage, config);
      if (parameters.days >= lifetime) return { kind: 'text', text: `Cannot propose a rule: ${p.days} days before expiry is not shorter than the new credential's lifetime (${lifetime} d), so it would rotate again at once.${usage}` };
      const changes = changedRule(options, p.rule, selector);
      if (typeof changes === 'string') return { kind: 'text', text: `Cannot propose a rule: ${changes}.` };
      const conversation = targetConversation(options, ctx, selector);
      if (typeof conversation === 'string') return { kind: 'text', text: `Cannot propose a rule: ${conversation}.` };
      const proposal = storeProposal({ store, config, parameters, coverage, requestedBy: actorOf(ctx), conversation: conversation.conversation, changes, now: clock.now() });
      const answer = await proposalCard(options, proposal);
      if (!('card' in answer)) return { kind: 'text', text: answer.text };
      if (!conversation.elsewhere) return { kind: 'card', card: answer.card };
      try {
        await options.chat()?.post({ ...conversation.conversation, kind: 'channel' }, { card: answer.card }, { signal: AbortSignal.timeout(10_000) });
        return { kind: 'text', text: `The rule's plan card is in the support channel "${conversation.elsewhere}", where approvers decide.` };
      } catch (err) {
        return { kind: 'text', text: `The rule is stored, but its card could not be posted to "${conversation.elsewhere}" (${(err as Error).message.slice(0, 120)}); run the same /autorotate there.` };
      }
    },
  };
  return command;
}

/** The rule this proposal changes: the one named with rule:, else a live rule with the very same selector. */
function changedRule(options: RulesOptions, name: string | undefined, selector: StandingSelector): AutoRotationRule | undefined | string {
  if (name) {
    const rule = findRule(options.store, name);
    if (!rule || !LIVE.includes(rule.state)) return `there is no rule ${name.slice(0, 40)} in force to change (/rules lists them)`;
    return rule;
  }
  const same = canonicalJson(selector);
  return listAutoRotationRules(options.store).find((r) => LIVE.includes(r.state) && canonicalJson(r.selector) === same);
}

/** Rules are approved in a support channel: from a personal chat the card goes to the one routed for the scope. */
function targetConversation(options: RulesOptions, ctx: ChatContext, selector: StandingSelector) {
  if (ctx.conversation.kind !== 'personal') return { conversation: conversationOf(ctx), elsewhere: undefined };
  const channels = supportChannels(options.config, options.store);
  const channel = channels.find((c) => selector.scope && c.routes.includes(selector.scope)) ?? channels.find((c) => c.isDefault) ?? channels[0];
  if (!channel) return 'no support channel is configured or bound; run it in the support channel';
  const t = channel.target;
  return { conversation: { conversationId: t.conversationId, serviceUrl: t.serviceUrl, tenantId: t.tenantId }, elsewhere: channel.name };
}
