import { expect } from 'vitest';
import type { Collection, Store } from '../../src/store/store.js';
import type { SandboxClouds } from '../../src/sandbox/estate.js';

/** Shared checks for the robustness tests: "a clear answer, nothing changed, no leak, no stack". */

/** The collections a click or command could change (the audit log is meant to grow: refusals are audited). */
const STATE_COLLECTIONS: Collection[] = ['alerts', 'approvals', 'jobs', 'outbox', 'conversations', 'deliveries'];

/** id@version of every record the product acts on, to compare before and after. */
export function storeState(store: Store): Record<string, string[]> {
  return Object.fromEntries(STATE_COLLECTIONS.map((c) => [c, store.list(c).map((r) => `${r.id}@${r.version}`)]));
}

/** Every request that could change something in a cloud (anything but a read), across all emulators. */
export function cloudWrites(clouds: SandboxClouds): string[] {
  const { databricks, keyVault, entra, dataFactory } = clouds.handles;
  const reads = new Set(['GET', 'HEAD']);
  const writes: string[] = [];
  for (const ws of databricks.workspaces) {
    for (const r of ws.requests()) if (!reads.has(r.method)) writes.push(`${ws.name} ${r.method} ${r.path}`);
  }
  for (const op of keyVault.operations()) if (!reads.has(op.method)) writes.push(`${op.vault} ${op.method} ${op.path}`);
  // checkMemberGroups is a read that Graph serves as a POST.
  for (const r of entra.graph.requests) if (!reads.has(r.method) && !r.path.endsWith('/checkMemberGroups')) writes.push(`graph ${r.method} ${r.path}`);
  for (const r of dataFactory.server.requests) if (!reads.has(r.method)) writes.push(`arm ${r.method} ${r.path}`);
  return writes;
}

const STACK = /\n\s+at [^\n]+:\d+:\d+|\b(?:TypeError|ReferenceError|SyntaxError|RangeError)\b|node_modules|\[object Object\]|undefined is not|Cannot read propert/;
const SECRET = /dapi[0-9a-f]{32}|[A-Za-z0-9_-]{3}8Q~[A-Za-z0-9_.~-]{20,}|Bearer\s+ey/;

/** What a user sees is plain: no stack trace, no JS error names, no secret. */
export function expectPlainAnswer(text: string, what: string): void {
  expect(text, `${what}: looks like a stack trace or a JS error`).not.toMatch(STACK);
  expect(text, `${what}: contains something shaped like a secret`).not.toMatch(SECRET);
}

export function expectNoSecretIn(lines: string[], what: string): void {
  const hit = lines.find((l) => SECRET.test(l));
  expect(hit, `${what}: a log line holds something shaped like a secret`).toBeUndefined();
}
