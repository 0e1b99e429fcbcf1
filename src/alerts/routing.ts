import type { KeywardenConfig } from '../config/schema.js';
import type { Credential } from '../domain/credential.js';
import type { ConversationTarget } from '../domain/chat.js';
import type { Store } from '../store/store.js';
import type { DeliveryHealth } from './types.js';

/**
 * Where alerts go: the support channels from config (routed by scope or environment, one default) or, when none
 * is configured, the channels an approver bound with /bind (audited). Installing the app never makes a channel a
 * support channel by itself (anyone can install an app in their team), except an approver's install in sandbox mode.
 * Only standard channels: Teams does not let bots post into private channels; personal installs get owner notices only.
 */

export interface SupportChannel {
  /** Stable key stored on alerts: `config:<name>` or `install:<conversationId>`. */
  key: string;
  name: string;
  target: ConversationTarget;
  /** Scopes or environments routed here; empty = the default. */
  routes: string[];
  source: 'config' | 'binding';
  isDefault: boolean;
}

/** The record app.ts keeps in `conversations` (read loosely: only the fields routing needs). */
interface ConversationRecord {
  target?: ConversationTarget;
  status?: 'active' | 'removed' | 'dead';
  changedAt?: number;
}

/** A channel an approver made a support channel, in the `channelBindings` collection (keyed like conversations). */
export interface ChannelBinding {
  target: ConversationTarget;
  status: 'bound' | 'unbound';
  by: { aadObjectId?: string; name?: string };
  /** How it was bound: the /bind command, or an approver's install in sandbox mode. */
  via: 'command' | 'sandbox-install';
  changedAt: number;
}

export const BINDINGS = 'channelBindings' as const;

const bindingKey = (conversationId: string): string => conversationId.replace(/;messageid=.*$/, '');

export function channelBinding(store: Store, conversationId: string): ChannelBinding | undefined {
  return store.get<ChannelBinding>(BINDINGS, bindingKey(conversationId))?.value;
}

/** Binds (or unbinds) a channel and audits who did it; returns false when it already was in that state. */
export function setChannelBinding(store: Store, input: { target: ConversationTarget; status: ChannelBinding['status']; by: ChannelBinding['by']; via: ChannelBinding['via']; now: number }): boolean {
  const key = bindingKey(input.target.conversationId);
  if ((channelBinding(store, key)?.status ?? 'unbound') === input.status) return false;
  const target = { ...input.target, conversationId: key };
  store.put<ChannelBinding>(BINDINGS, key, { target, status: input.status, by: input.by, via: input.via, changedAt: input.now });
  store.appendAudit({
    action: input.status === 'bound' ? 'channel.bound' : 'channel.unbound', actor: input.by, subject: key, result: 'ok',
    details: { via: input.via, teamId: target.teamId, teamName: target.teamName, channelName: target.channelName, tenantId: target.tenantId },
  });
  return true;
}

/** Configured channels, else bound channels still installed (newest first, the newest is the default). */
export function supportChannels(config: KeywardenConfig, store: Store): SupportChannel[] {
  const configured = config.teams.channels;
  if (configured.length > 0) {
    const defaultName = config.teams.defaultChannel ?? configured.find((c) => c.routes.length === 0)?.name;
    return configured.map((c) => ({
      key: `config:${c.name}`,
      name: c.name,
      target: {
        conversationId: c.conversationId.replace(/;messageid=.*$/, ''),
        serviceUrl: c.serviceUrl,
        tenantId: c.tenantId,
        kind: 'channel',
        teamId: c.teamId,
        channelId: c.channelId ?? c.conversationId,
      },
      routes: c.routes,
      source: 'config',
      isDefault: c.name === defaultName,
    }));
  }
  const bound = store.list<ChannelBinding>(BINDINGS)
    .map((r) => r.value)
    .filter((b) => b.status === 'bound' && b.target.kind === 'channel')
    .map((b) => {
      // The installation record has the freshest reference (service URL, names); an uninstalled channel gets nothing.
      const installed = store.get<ConversationRecord>('conversations', b.target.conversationId)?.value;
      return { ...b, target: { ...b.target, ...installed?.target }, removed: installed?.status === 'removed' };
    })
    .filter((b) => !b.removed)
    .sort((a, b) => b.changedAt - a.changedAt);
  // The key keeps its historical "install:" prefix: alerts stored before bindings existed still find their channel.
  return bound.map((b, i) => ({
    key: `install:${b.target.conversationId}`,
    name: b.target.channelName ?? b.target.channelId ?? b.target.conversationId,
    target: b.target,
    routes: [],
    source: 'binding',
    isDefault: i === 0,
  }));
}

/** The environment a scope belongs to, from the workspace / vault config ("prod", "dev"…). */
export function environmentOf(config: KeywardenConfig, scope: string): string | undefined {
  return config.databricks.workspaces.find((w) => w.name === scope)?.environment
    ?? config.keyVault.vaults.find((v) => v.name === scope)?.environment;
}

/** The channel a credential's alerts go to: a route naming its scope, then its environment, then the default. */
export function routeFor(credential: Credential, channels: SupportChannel[], config: KeywardenConfig): SupportChannel | undefined {
  const scope = credential.where.scope;
  const byScope = channels.find((c) => c.routes.includes(scope));
  if (byScope) return byScope;
  const env = environmentOf(config, scope);
  const byEnv = env ? channels.find((c) => c.routes.includes(env)) : undefined;
  return byEnv ?? channels.find((c) => c.isDefault);
}

export function channelByKey(key: string | undefined, channels: SupportChannel[]): SupportChannel | undefined {
  return key ? channels.find((c) => c.key === key) : undefined;
}

/** Health record ids in the `deliveries` collection. */
export const channelHealthId = (key: string): string => `channel:${key}`;
export const ownerHealthId = (aadObjectId: string): string => `owner:${aadObjectId}`;

export function channelHealth(store: Store, key: string): DeliveryHealth | undefined {
  return store.get<DeliveryHealth>('deliveries', channelHealthId(key))?.value;
}

export function isChannelDead(store: Store, key: string): boolean {
  return channelHealth(store, key)?.status === 'dead';
}
