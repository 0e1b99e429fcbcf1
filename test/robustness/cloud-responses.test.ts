import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/types.js';
import type { EstateError } from '../../src/domain/credential.js';
import type { ScanResult } from '../../src/domain/scan.js';
import type { Fault } from '../../src/sandbox/emulator.js';
import { ALEX, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { expectNoSecretIn, expectPlainAnswer } from './helpers.js';

/**
 * Must show: when a cloud answers nonsense — a Databricks workspace serving its login page, truncated JSON, a 200
 * of the wrong shape, Graph answering 200 with garbage, Key Vault failing with 500s — the scan reports an estate
 * error that names the workspace/vault and what to check, every other estate still scans, alerts of the broken
 * estate are not resolved as if their credentials were gone, and the bot keeps serving.
 */

let h: WorkflowHarness;
let baseline: ScanResult;

beforeAll(async () => {
  h = await startWorkflowHarness({ config: { alerts: { cardAtDays: 31 } } });
  await h.scanAndDeliver();
  baseline = h.scanner.lastScan()!;
  expect(baseline.errors).toEqual([]);
}, 60_000);
afterAll(async () => h?.close());
afterEach(() => {
  for (const ws of h.clouds.handles.databricks.workspaces) ws.clearFaults();
  h.clouds.handles.keyVault.clearFaults();
  h.clouds.handles.entra.graph.clearFaults();
  h.clouds.handles.dataFactory.server.clearFaults();
});

const LOGIN_PAGE = '<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><form action="https://login.microsoftonline.com/">…</form></body></html>';
const always = (fault: Omit<Fault, 'times'>): Fault => ({ times: Infinity, ...fault });
const json = { 'content-type': 'application/json; charset=utf-8' };
const html = { 'content-type': 'text/html; charset=utf-8' };

function credentialsIn(scan: ScanResult, estate: string, scope?: string): number {
  return scan.credentials.filter((c) => c.where.estate === estate && (scope === undefined || c.where.scope === scope)).length;
}

function errorFor(scan: ScanResult, estate: string, scope?: string): EstateError {
  const e = scan.errors.find((x) => x.estate === estate && (scope === undefined || x.scope === scope));
  expect(e, `an estate error for ${estate} ${scope ?? ''}; got ${JSON.stringify(scan.errors)}`).toBeDefined();
  return e!;
}

/** The estate error a person reads: where, what, and a fix — never a JS error or a stack. */
function expectClearEstateError(e: EstateError, names: string[], mustSay: RegExp): void {
  for (const n of names) expect(e.message).toContain(n);
  expect(e.message).toMatch(mustSay);
  expect(e.message).toMatch(/\b(check|use|try|grant|configure)\b/i);
  expectPlainAnswer(e.message, `estate error ${e.scope}`);
}

/** Every other estate scanned as before. */
function expectOthersScanned(scan: ScanResult, broken: { estate: string; scope?: string }): void {
  for (const estate of ['databricks', 'keyvault', 'entra']) {
    const scopes = [...new Set(baseline.credentials.filter((c) => c.where.estate === estate).map((c) => c.where.scope))];
    for (const scope of scopes) {
      if (estate === broken.estate && (broken.scope === undefined || broken.scope === scope)) continue;
      expect(credentialsIn(scan, estate, scope), `${estate} ${scope} still scanned`).toBe(credentialsIn(baseline, estate, scope));
    }
  }
}

async function scan(): Promise<ScanResult> {
  return h.scanner.runScan('command');
}

describe('a Databricks workspace answering nonsense', () => {
  const tokens = '/api/2.0/token-management/tokens';

  it('its login page (HTML with 200): a clear error names the workspace and the host to check; others scan; its alerts stay open', async () => {
    const ws = h.clouds.handles.databricks.workspace('ws-prod');
    ws.injectFault(always({ path: tokens, status: 200, headers: html, body: LOGIN_PAGE }));
    const result = await scan();
    expectClearEstateError(errorFor(result, 'databricks', 'ws-prod'), ['ws-prod', ws.url], /not JSON/);
    expectOthersScanned(result, { estate: 'databricks', scope: 'ws-prod' });
    expect(result.changes.removed.filter((id) => id.includes(':ws-prod:'))).toEqual([]);
    const prodAlerts = h.store.list<AlertRecord>('alerts').map((r) => r.value).filter((a) => a.credentialId.includes(':ws-prod:'));
    expect(prodAlerts.length).toBeGreaterThan(0);
    expect(prodAlerts.filter((a) => a.state === 'resolved')).toEqual([]);

    // What the channel sees: /expiring names the broken workspace.
    const said = await h.command('/expiring 30d', ALEX);
    const card = JSON.stringify(said.replies[0]!.attachments);
    expect(card).toContain('ws-prod');
    expectPlainAnswer(card, '/expiring card');
  }, 60_000);

  it('truncated JSON, a 200 of the wrong shape, or JSON null: a clear "unexpected response" per workspace', async () => {
    const { databricks } = h.clouds.handles;
    databricks.workspace('ws-prod').injectFault(always({ path: tokens, status: 200, headers: json, body: '{"token_infos":[{"token_id":"5551234","comm' }));
    databricks.workspace('ws-dev').injectFault(always({ path: tokens, status: 200, headers: json, body: '{"token_infos":"none today"}' }));
    databricks.workspace('ws-analytics').injectFault(always({ path: tokens, status: 200, headers: json, body: '{"token_infos":[{"token_id":5551234,"comment":"x"}]}' }));
    const result = await scan();
    expectClearEstateError(errorFor(result, 'databricks', 'ws-prod'), ['ws-prod'], /malformed JSON/);
    expectClearEstateError(errorFor(result, 'databricks', 'ws-dev'), ['ws-dev'], /token_infos/);
    expectClearEstateError(errorFor(result, 'databricks', 'ws-analytics'), ['ws-analytics'], /token_id/);
    expectOthersScanned(result, { estate: 'databricks' });

    for (const ws of databricks.workspaces) ws.clearFaults();
    databricks.workspace('ws-prod').injectFault(always({ path: tokens, status: 200, headers: json, body: 'null' }));
    databricks.workspace('ws-dev').injectFault(always({ path: '/api/2.0/preview/scim/v2/Users', status: 200, headers: json, body: '[1,2,3]' }));
    const second = await scan();
    expectClearEstateError(errorFor(second, 'databricks', 'ws-prod'), ['ws-prod'], /not a JSON object|unexpected|documented API/i);
    expectClearEstateError(errorFor(second, 'databricks', 'ws-dev'), ['ws-dev'], /not a JSON object|unexpected|documented API/i);
  }, 60_000);
});

describe('Graph and ARM answering 200 with garbage', () => {
  it('Graph HTML or a collection of the wrong shape is an Entra estate error, not "no credentials"', async () => {
    const graph = h.clouds.handles.entra.graph;
    graph.injectFault(always({ path: '/v1.0/applications', status: 200, headers: html, body: LOGIN_PAGE }));
    const result = await scan();
    expectClearEstateError(errorFor(result, 'entra'), ['Graph', 'applications'], /not a JSON collection/);
    expect(credentialsIn(result, 'entra')).toBe(0);
    expect(result.changes.removed.filter((id) => id.startsWith('entra-'))).toEqual([]);
    expectOthersScanned(result, { estate: 'entra' });
    const entraAlerts = h.store.list<AlertRecord>('alerts').map((r) => r.value).filter((a) => a.credentialId.startsWith('entra-'));
    expect(entraAlerts.filter((a) => a.state === 'resolved' && a.resolution?.text?.match(/gone|removed|deleted/i))).toEqual([]);

    graph.clearFaults();
    graph.injectFault(always({ path: '/v1.0/servicePrincipals', status: 200, headers: json, body: '{"value":"nothing"}' }));
    expectClearEstateError(errorFor(await scan(), 'entra'), ['Graph', 'servicePrincipals'], /not a JSON collection/);

    graph.clearFaults();
    const weird = { value: [null, 7, 'x', { id: 'app-1', appId: 'app-1', displayName: 'odd', passwordCredentials: 'none', keyCredentials: [null, { keyId: 5 }] }] };
    graph.injectFault(always({ path: '/v1.0/applications', status: 200, headers: json, body: JSON.stringify(weird) }));
    const odd = await scan();
    // Odd items are skipped; the rest of the tenant (service principals) still scans, and nothing throws.
    expect(odd.errors.filter((e) => e.estate === 'entra')).toEqual([]);
    expect(credentialsIn(odd, 'entra')).toBeGreaterThan(0);
  }, 60_000);

  it('ARM garbage is a Data Factory estate error naming the factory path', async () => {
    const arm = h.clouds.handles.dataFactory.server;
    arm.injectFault(always({ path: '/linkedservices', status: 200, headers: html, body: LOGIN_PAGE }));
    const result = await scan();
    const e = result.errors.find((x) => x.estate === 'datafactory');
    expect(e, JSON.stringify(result.errors)).toBeDefined();
    expectClearEstateError(e!, ['linkedservices'], /not a JSON collection/);
    expectOthersScanned(result, { estate: 'datafactory' });
  }, 60_000);
});

describe('Key Vault failing', () => {
  it('500s on one vault: a clear error naming the vault and what to do; the other vault and estates scan', async () => {
    h.clouds.handles.keyVault.injectFault(always({ status: 500, body: { error: { code: 'InternalServerError', message: 'Something went wrong.' } } }), 'kv-prod');
    const result = await scan();
    expectClearEstateError(errorFor(result, 'keyvault', 'kv-prod'), ['kv-prod', '500'], /try again later|Azure status/);
    expectOthersScanned(result, { estate: 'keyvault', scope: 'kv-prod' });
    expect(result.changes.removed.filter((id) => id.includes(':kv-prod:'))).toEqual([]);
  }, 60_000);

  it('HTML from a vault (a proxy error page) is an estate error too', async () => {
    h.clouds.handles.keyVault.injectFault(always({ status: 200, headers: html, body: LOGIN_PAGE }), 'kv-dev');
    const result = await scan();
    const e = errorFor(result, 'keyvault', 'kv-dev');
    expect(e.message).toContain('kv-dev');
    expectPlainAnswer(e.message, 'kv-dev HTML');
    expectOthersScanned(result, { estate: 'keyvault', scope: 'kv-dev' });
  }, 60_000);
});

describe('after all of it', () => {
  it('the bot still serves, a clean scan has no errors, and no secret reached the log', async () => {
    const result = await scan();
    expect(result.errors).toEqual([]);
    expect(result.credentials.length).toBe(baseline.credentials.length);
    expect((await fetch(`${h.botUrl}/readyz`)).status).toBe(200);
    expectNoSecretIn(h.logLines, 'log');
  }, 60_000);
});
