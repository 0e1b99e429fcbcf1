/**
 * `/jit <workspace> <hours> [node type] [max capacity] [-- justification]`: asks for just-in-time Databricks access.
 * Nothing is created here: the reply is an approval card, and another person (an approver) must approve it.
 */
import type { JitRequestRecord } from '../approvals/types.js';
import { MIN_JUSTIFICATION_LENGTH, baseConversationId, cleanText } from '../approvals/rules.js';
import { environmentOf, supportChannels, type SupportChannel } from '../alerts/routing.js';
import type { AdaptiveCard, ChatCommand, ChatGateway, ConversationTarget, PostedMessage, Reply } from '../domain/chat.js';
import type { WorkflowActionsOptions } from '../workflows/actions.js';
import { newId, newNonce } from '../workflows/actions.js';
import { jitRequestCardFor, jitRequestKey } from '../workflows/jit/jit-actions.js';
import { jitApplicationId, jitVault } from '../workflows/jit/jit.js';

export const JIT_USAGE = '/jit <workspace> <hours> [node type] [max capacity] [-- justification]';
export const JIT_EXAMPLE = '/jit ws-prod 4 Standard_DS3_v2 4 -- backfill for INC-1234';

export interface ParsedJit {
  workspace: string;
  hours: number;
  nodeType: string;
  maxCapacity: number;
  justification?: string;
}

export function parseJitArgs(args: string, config: WorkflowActionsOptions['config']): { ok: true; value: ParsedJit } | { ok: false; problem: string } {
  const [head, ...reason] = args.split(/\s+--\s*/);
  const words = (head ?? '').trim().split(/\s+/).filter(Boolean);
  const jit = config.workflows.jit;
  const workspaces = config.databricks.workspaces.map((w) => w.name);
  if (words.length < 2 || words.length > 4) return { ok: false, problem: 'give a workspace and a number of hours' };
  const [workspace, hoursText, nodeType, capacityText] = words as [string, string, string | undefined, string | undefined];
  if (!workspaces.includes(workspace)) {
    return { ok: false, problem: `"${workspace.slice(0, 40)}" is not a configured workspace${workspaces.length ? ` (one of: ${workspaces.join(', ')})` : ''}` };
  }
  // Plain decimals only: Number() would also take "0x10" (16) or "1e1" (10), which nobody means as hours.
  const hoursDigits = hoursText.replace(/h$/i, '');
  const hours = /^\d+(?:\.\d+)?$/.test(hoursDigits) ? Number(hoursDigits) : NaN;
  if (!Number.isFinite(hours) || hours <= 0 || hours > jit.maxHours) return { ok: false, problem: `hours must be a number above 0 and at most ${jit.maxHours} (workflows.jit.maxHours)` };
  if (nodeType !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(nodeType)) return { ok: false, problem: `"${nodeType.slice(0, 40)}" is not a node type (e.g. Standard_DS3_v2)` };
  const maxCapacity = capacityText === undefined ? jit.maxCapacity : Number(capacityText);
  if (!Number.isInteger(maxCapacity) || maxCapacity < 1 || maxCapacity > jit.maxCapacity) {
    return { ok: false, problem: `max capacity must be a whole number from 1 to ${jit.maxCapacity} (workflows.jit.maxCapacity)` };
  }
  const justification = cleanText(reason.join(' -- '));
  if (justification !== undefined && justification.length < MIN_JUSTIFICATION_LENGTH) {
    return { ok: false, problem: `the justification after "--" needs at least ${MIN_JUSTIFICATION_LENGTH} characters` };
  }
  return { ok: true, value: { workspace, hours, nodeType: nodeType ?? jit.defaultNodeType, maxCapacity, ...(justification ? { justification } : {}) } };
}

/** Every /jit argument with its default and limit, from config (shown by /help). */
export function jitDetails(config: WorkflowActionsOptions['config']): string {
  const jit = config.workflows.jit;
  const workspaces = config.databricks.workspaces.map((w) => w.name);
  return [
    `<workspace>: ${workspaces.length ? `one of ${workspaces.join(', ')}` : 'a configured Databricks workspace'}`,
    `<hours>: how long, above 0 and at most ${jit.maxHours} (e.g. 4 or 4h)`,
    `[node type]: instance pool node type (default ${jit.defaultNodeType})`,
    `[max capacity]: pool size, 1 to ${jit.maxCapacity} (default ${jit.maxCapacity})`,
    `[-- justification]: why, at least ${MIN_JUSTIFICATION_LENGTH} characters (else the approver gives one)`,
    'In a personal chat the request card goes to the support channel, where another approver decides.',
  ].join(' · ');
}

export interface JitCommandOptions {
  /** The Teams gateway once attached: a request from a personal chat is posted to the support channel. */
  chat?: () => ChatGateway | undefined;
}

export function jitCommand(options: WorkflowActionsOptions, more: JitCommandOptions = {}): ChatCommand {
  return {
    name: 'jit',
    usage: JIT_USAGE,
    description: 'ask for a just-in-time Databricks token + instance pool, stored in Key Vault and removed at the end',
    example: JIT_EXAMPLE,
    details: jitDetails(options.config),
    async handle(args, ctx): Promise<Reply> {
      const { config, store, clock } = options;
      const parsed = parseJitArgs(args, config);
      if (!parsed.ok) return { kind: 'text', text: `Cannot request JIT access: ${parsed.problem}.\nUsage: ${JIT_USAGE}\nExample: ${JIT_EXAMPLE}` };
      if (!ctx.actor.aadObjectId) return { kind: 'text', text: 'Cannot request JIT access: your Entra identity was not in the message; use Teams signed in with your work account.' };
      if (!jitVault(config) || !jitApplicationId(config)) {
        return { kind: 'text', text: 'JIT access is not set up: configure keyVault.vaults (or workflows.jit.vault) and workflows.jit.applicationId (or azure.credential.clientId).' };
      }
      const now = clock.now();
      const requestId = newId('r').slice(2);
      // From a personal chat the approvers cannot see the card: it goes to the workspace's support channel.
      const channel = ctx.conversation.kind === 'personal' ? supportChannelFor(config, store, parsed.value.workspace) : undefined;
      const where = channel?.target ?? ctx.conversation;
      const record: JitRequestRecord = {
        id: jitRequestKey(requestId), requestId, ...parsed.value,
        requestedBy: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name, tenantId: ctx.actor.tenantId },
        conversation: { conversationId: baseConversationId(where.conversationId), serviceUrl: where.serviceUrl, tenantId: where.tenantId },
        nonce: newNonce(), nonceIssuedAt: now, state: 'requested', extensions: [], createdAt: now,
      };
      store.insert('approvals', record.id, record);
      store.appendAudit({
        action: 'jit.requested', actor: { aadObjectId: ctx.actor.aadObjectId, name: ctx.actor.name }, subject: `jit:${requestId}`, result: 'info',
        details: { workspace: record.workspace, hours: record.hours, nodeType: record.nodeType, maxCapacity: record.maxCapacity, justification: record.justification, channel: channel?.name },
      });
      const answer = jitRequestCardFor(options, record);
      if (channel && 'card' in answer) {
        const posted = await postToChannel(more.chat?.(), channel.target, answer.card);
        if ('message' in posted) {
          const current = store.get<JitRequestRecord>('approvals', record.id);
          if (current) store.compareAndSet('approvals', record.id, current.version, { ...current.value, message: posted.message });
          return { kind: 'text', text: `Your JIT request ${requestId} (${record.workspace}, ${record.hours} h) is in the support channel "${channel.name}": another approver decides there, and the result is posted in its thread.` };
        }
        return { kind: 'text', text: `Your JIT request ${requestId} was recorded, but I could not post it to the support channel "${channel.name}" (${posted.problem}). Ask an approver to run the same /jit in that channel.` };
      }
      return 'card' in answer ? { kind: 'card', card: answer.card } : { kind: 'text', text: answer.text };
    },
  };
}

/** The support channel a workspace's requests go to: one routed to the workspace, then its environment, then the default. */
function supportChannelFor(config: WorkflowActionsOptions['config'], store: WorkflowActionsOptions['store'], workspace: string): SupportChannel | undefined {
  const channels = supportChannels(config, store);
  const env = environmentOf(config, workspace);
  return channels.find((c) => c.routes.includes(workspace)) ?? (env ? channels.find((c) => c.routes.includes(env)) : undefined) ?? channels.find((c) => c.isDefault);
}

async function postToChannel(chat: ChatGateway | undefined, target: ConversationTarget, card: AdaptiveCard): Promise<{ message: PostedMessage } | { problem: string }> {
  if (!chat) return { problem: 'the Teams connection is not up yet' };
  try {
    return { message: await chat.post(target, { card }, { signal: AbortSignal.timeout(10_000) }) };
  } catch (err) {
    return { problem: (err as Error).message.slice(0, 200) };
  }
}
