import { JIT_FACTORY_PRINCIPAL_ID, KEYWARDEN_API_URI } from '../../src/sandbox/datafactory/jit-pipeline.js';
import type { TokenIssuer } from '../../src/sandbox/entra/tokens.js';
import type { WorkflowHarness } from '../workflows/harness.js';

/** Calls the pipeline JIT API over HTTP the way a Data Factory Web activity does, with tokens from the Entra emulator. */

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

export async function callApi(h: WorkflowHarness, method: 'GET' | 'POST', path: string, token: string | undefined, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(`${h.botUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) as Record<string, unknown> : {}, text };
}

/** The adf-analytics factory's managed-identity token for Keywarden's API. */
export const factoryToken = (h: WorkflowHarness, resource = KEYWARDEN_API_URI) => h.clouds.handles.entra.issueManagedIdentityToken(JIT_FACTORY_PRINCIPAL_ID, resource);

export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Signs claims with the tenant's real key (Entra's keys are shared by every tenant). */
export const signWithTenantKey = (h: WorkflowHarness, claims: Record<string, unknown>) => (h.clouds.handles.entra.validator as TokenIssuer).signClaims(claims);

export function jitBody(runId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    workspace: 'ws-prod', vault: 'kv-prod', tokenSecretName: `adf-jit-${runId}-token`, poolSecretName: `adf-jit-${runId}-pool`,
    pool: { nodeType: 'Standard_DS3_v2', maxCapacity: 2, minIdleInstances: 0, idleAutoTerminationMinutes: 10 },
    durationMinutes: 60, pipelineRunId: runId, justification: 'nightly backfill', ...overrides,
  };
}

export async function waitForStatus(h: WorkflowHarness, id: string, wanted: string, token: () => string, timeoutMs = 20_000): Promise<ApiAnswer> {
  const start = Date.now();
  for (;;) {
    const got = await callApi(h, 'GET', `/api/jit/${id}`, token());
    if (got.body.status === wanted) return got;
    if (Date.now() - start > timeoutMs) throw new Error(`grant ${id} stayed ${String(got.body.status)} (wanted ${wanted}): ${got.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
