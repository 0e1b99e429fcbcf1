import type { KeywardenConfig } from '../config/schema.js';
import type { Credential } from '../domain/credential.js';
import type { ConversationTarget } from '../domain/chat.js';
import type { Store } from '../store/store.js';
import type { DeliveryHealth } from './types.js';

/**
 * Where alerts go: the support channels from config (routed by scope or environment, one default) or, when none
 * is configured, the channel of the team the bot was last installed into. Only standard channels: Teams does not
 * let bots post into private channels, and personal installs are for owner notices only.
 */

export interface SupportChannel {
  /** Stable key stored on alerts: `config:<name>` or `install:<conversationId>`. */
  key: string;
  name: string;
  target: ConversationTarget;
  /** Scopes or environments routed here; empty = the default. */
  routes: string[];
  source: 'config' | 'installation';
  isDefault: boolean;
}

/** The record app.ts keeps in `conversations` (read loosely: only the fields routing needs). */
interface ConversationRecord {
  target?: ConversationTarget;
  status?: 'active' | 'removed' | 'dead';
  changedAt?: number;
}

/** Configured channels, else installation channels (newest first, the newest is the default). */
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
  const installed = store.list<ConversationRecord>('conversations')
    .map((r) => r.value)
    .filter((c): c is ConversationRecord & { target: ConversationTarget } =>
      Boolean(c.target) && c.target!.kind === 'channel' && c.status !== 'removed')
    .sort((a, b) => (b.changedAt ?? 0) - (a.changedAt ?? 0));
  return installed.map((c, i) => ({
    key: `install:${c.target.conversationId}`,
    name: c.target.channelId ?? c.target.conversationId,
    target: c.target,
    routes: [],
    source: 'installation',
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
