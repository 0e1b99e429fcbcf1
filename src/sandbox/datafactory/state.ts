import { createHash } from 'node:crypto';
import type { Clock } from '../../clock.js';

/** In-memory ARM resources of Azure Data Factory: factories and their linked services, datasets, pipelines, triggers. */

export const FACTORY_CHILDREN = ['linkedservices', 'datasets', 'pipelines', 'triggers'] as const;
export type FactoryChild = (typeof FACTORY_CHILDREN)[number];

export interface FactoryRecord {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  createdAt: number;
  principalId: string;
  children: Record<FactoryChild, Map<string, Record<string, unknown>>>;
}

/** ARM etags look like "\"0a00b1c2-0000-0100-0000-65f1e8f20000\"": derived from content so they change on update. */
export function etagFor(value: unknown): string {
  const h = createHash('sha1').update(JSON.stringify(value)).digest('hex');
  return `"${h.slice(0, 8)}-0000-0100-0000-${h.slice(8, 20)}"`;
}

/** The managed identity of a factory seeded without one (adf-prod): its pipelines read Key Vault as it. */
export const DEFAULT_FACTORY_PRINCIPAL_ID = 'f0f0f0f0-0000-4000-8000-00000000adf0';

export class DataFactoryState {
  readonly factories: FactoryRecord[] = [];
  /** Callers (Entra appId) whose Reader role was withdrawn: they get 403 AuthorizationFailed. */
  readonly deniedCallers = new Set<string>();
  /** Subscriptions and resource groups that exist (lower case), even without factories. */
  readonly resourceGroups = new Set<string>();

  constructor(private readonly clock: Clock) {}

  addFactory(input: { subscriptionId: string; resourceGroup: string; name: string; location?: string; principalId?: string }): FactoryRecord {
    const existing = this.factory(input.subscriptionId, input.resourceGroup, input.name);
    if (existing) return existing;
    const record: FactoryRecord = {
      subscriptionId: input.subscriptionId, resourceGroup: input.resourceGroup, name: input.name, location: input.location ?? 'westeurope',
      createdAt: this.clock.now(), principalId: input.principalId ?? DEFAULT_FACTORY_PRINCIPAL_ID,
      children: { linkedservices: new Map(), datasets: new Map(), pipelines: new Map(), triggers: new Map() },
    };
    this.factories.push(record);
    this.addResourceGroup(input.subscriptionId, input.resourceGroup);
    return record;
  }

  addResourceGroup(subscriptionId: string, resourceGroup: string): void {
    this.resourceGroups.add(`${subscriptionId}/${resourceGroup}`.toLowerCase());
  }

  hasSubscription(subscriptionId: string): boolean {
    return [...this.resourceGroups].some((k) => k.startsWith(`${subscriptionId.toLowerCase()}/`));
  }

  hasResourceGroup(subscriptionId: string, resourceGroup: string): boolean {
    return this.resourceGroups.has(`${subscriptionId}/${resourceGroup}`.toLowerCase());
  }

  factory(subscriptionId: string, resourceGroup: string, name: string): FactoryRecord | undefined {
    return this.factories.find((f) => f.subscriptionId.toLowerCase() === subscriptionId.toLowerCase()
      && f.resourceGroup.toLowerCase() === resourceGroup.toLowerCase() && f.name.toLowerCase() === name.toLowerCase());
  }

  /** Creates or replaces a child resource's `properties` (the JSON that ADF Studio's "code" view shows). */
  put(factory: FactoryRecord, child: FactoryChild, name: string, properties: Record<string, unknown>): void {
    factory.children[child].set(name, structuredClone(properties));
  }

  remove(factory: FactoryRecord, child: FactoryChild, name: string): boolean {
    return factory.children[child].delete(name);
  }

  withdrawAccess(appId: string): void {
    this.deniedCallers.add(appId);
  }

  restoreAccess(appId: string): void {
    this.deniedCallers.delete(appId);
  }
}
