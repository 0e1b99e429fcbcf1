import type { Clock } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { ChatCommand, ChatContext, ConversationTarget, Reply } from '../domain/chat.js';
import { channelBinding, setChannelBinding } from '../alerts/routing.js';
import type { Store } from '../store/store.js';
import type { ApproverCheck } from './scan.js';

/**
 * `/bind` and `/unbind`: an approver makes the channel they type in a support channel (alert cards with Rotate/Revoke
 * buttons land there), or stops it. Audited either way, refusals included. Configured channels (teams.channels) win.
 */

export interface BindCommandDeps {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  isApprover: ApproverCheck;
  /** After a channel became a support channel: route the alerts that were waiting for one. */
  onBound(target: ConversationTarget): void | Promise<void>;
}

/** What an unbound channel is told when Keywarden is installed there (or asked to do channel work). */
export function howToBindText(botName: string): string {
  return `${botName} is installed here, but this channel does not receive credential alerts. An approver can make it a support channel by typing "@${botName} /bind" here (recorded in the audit log).`;
}

function refusal(deps: BindCommandDeps, ctx: ChatContext, verb: 'bind' | 'unbind'): Reply | undefined {
  const { config } = deps;
  if (ctx.conversation.kind !== 'channel') {
    return { kind: 'text', text: `Run /${verb} in the standard channel of a team (mention me there), not in a chat.` };
  }
  if (config.teams.channels.length > 0) {
    const names = config.teams.channels.map((c) => c.name).join(', ');
    return { kind: 'text', text: `Support channels come from the configuration here (teams.channels: ${names}); ask an admin to ${verb === 'bind' ? 'add' : 'remove'} this channel there.` };
  }
  return undefined;
}

async function approverOnly(deps: BindCommandDeps, ctx: ChatContext, verb: 'bind' | 'unbind'): Promise<Reply | undefined> {
  if (ctx.actor.aadObjectId && (await deps.isApprover(ctx.actor))) return undefined;
  deps.store.appendAudit({
    action: `channel.${verb}.refused`, actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name },
    subject: ctx.conversation.conversationId, result: 'refused', details: { reason: 'not-an-approver', teamId: ctx.conversation.teamId },
  });
  return { kind: 'text', text: `Only approvers can ${verb === 'bind' ? 'make this channel a support channel' : 'stop alerts in this channel'}. Ask one of them to type "/${verb}" here.` };
}

export function bindCommand(deps: BindCommandDeps): ChatCommand {
  return {
    name: 'bind',
    usage: '/bind',
    description: 'Makes this channel a support channel: credential alerts and their action cards are posted here (approvers only, audited).',
    example: '/bind',
    async handle(_args, ctx): Promise<Reply> {
      const refused = refusal(deps, ctx, 'bind') ?? await approverOnly(deps, ctx, 'bind');
      if (refused) return refused;
      const by = { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name };
      const changed = setChannelBinding(deps.store, { target: ctx.conversation, status: 'bound', by, via: 'command', now: deps.clock.now() });
      if (!changed) return { kind: 'text', text: 'This channel already is a support channel. /unbind stops alerts here.' };
      await deps.onBound(ctx.conversation);
      return { kind: 'text', text: `This channel is now a support channel: credential alerts and their Rotate/Revoke cards are posted here. Bound by ${ctx.actor.name || 'an approver'} (recorded in the audit log); /unbind stops it.` };
    },
  };
}

export function unbindCommand(deps: BindCommandDeps): ChatCommand {
  return {
    name: 'unbind',
    usage: '/unbind',
    description: 'Stops posting credential alerts in this channel (approvers only, audited).',
    example: '/unbind',
    async handle(_args, ctx): Promise<Reply> {
      const refused = refusal(deps, ctx, 'unbind') ?? await approverOnly(deps, ctx, 'unbind');
      if (refused) return refused;
      if (channelBinding(deps.store, ctx.conversation.conversationId)?.status !== 'bound') {
        return { kind: 'text', text: 'This channel is not a support channel; nothing to stop.' };
      }
      setChannelBinding(deps.store, { target: ctx.conversation, status: 'unbound', by: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name }, via: 'command', now: deps.clock.now() });
      return { kind: 'text', text: `Alerts are no longer posted in this channel (recorded in the audit log). Alerts already here stay; new ones wait for a support channel — an approver can /bind one.` };
    },
  };
}
