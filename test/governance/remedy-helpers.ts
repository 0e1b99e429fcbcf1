import type { ConnectorActivity } from '../../src/sandbox/connector/state.js';

/** The Action.Execute with this verb anywhere in a card (body ActionSets included), or undefined. */
export function findAction(card: unknown, verb: string, where: (data: Record<string, unknown>) => boolean = () => true): { data: Record<string, unknown>; title: string } | undefined {
  let found: { data: Record<string, unknown>; title: string } | undefined;
  const walk = (node: unknown): void => {
    if (found || node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    const n = node as Record<string, unknown>;
    if (n.type === 'Action.Execute' && n.verb === verb && where((n.data ?? {}) as Record<string, unknown>)) {
      found = { data: n.data as Record<string, unknown>, title: String(n.title) };
      return;
    }
    Object.values(n).forEach(walk);
  };
  walk(card);
  return found;
}

export const cardOf = (a: ConnectorActivity): unknown => a.attachments[0]?.content;
