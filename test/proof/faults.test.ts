/**
 * Proof suite "faults". Every cloud emulator in turn answers a storm of trouble — 429 with and without Retry-After,
 * 500, 503, a stalled connection, a reset connection, a truncated JSON body, an HTML page — on every request to it:
 * the product's scan ends (bounded retries: the emulator counts the attempts), reports an estate error that names
 * the place and what to check, scans every other estate as before, and prints no secret. Then the calls that create
 * a credential (Databricks OBO token, Graph addPassword, Key Vault set) succeed but their answer is lost (reset,
 * 5xx, 429, truncated, stalled after the change happened): the rotation still ends with exactly one live new
 * credential, the published one (a credential whose value was lost with the answer is revoked; at most one more is made).
 * Prints: `faults: <cases> cases, <failures> failures, <attempts> attempts at most per faulted call site`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { ScanResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/logging/logger.js';
import type { EmulatorServer, Fault } from '../../src/sandbox/emulator.js';
import { createScanner } from '../../src/scanner/scanner.js';
import { createInventorySources } from '../../src/scanner/sources.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { patMarker } from '../../src/workflows/rotate/rotate-pat.js';
import { collectCanaries, findLeaks } from '../invariants/canaries.js';
import { expectPlainAnswer } from '../robustness/helpers.js';
import { approveJob, credentialOf, leaksIn, openLab, passwordsOf, planOf, runToEnd, type Lab } from './fixtures/crash-lab.js';
import { report } from './fixtures/report.js';

const LOGIN_PAGE = '<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>Sign in</body></html>';
const FAULTS: Record<string, Omit<Fault, 'path' | 'method'>> = {
  '429 storm with Retry-After': { status: 429, retryAfter: 1 },
  '429 storm without Retry-After': { status: 429 },
  '500': { status: 500 },
  '503': { status: 503 },
  'stalled connection': { status: 0, network: 'stall' },
  'connection reset': { status: 0, network: 'reset' },
  'truncated JSON body': { status: 200, network: 'truncate', headers: { 'content-type': 'application/json; charset=utf-8' }, body: { value: [{ id: 'x', name: 'cut here' }], nextLink: null } },
  'HTML body': { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: LOGIN_PAGE },
};

interface Target { name: string; estate: string; scope: string; server(lab: Lab): EmulatorServer; path: string | RegExp; mustName: (lab: Lab) => string }
const TARGETS: Target[] = [
  { name: 'Databricks ws-prod', estate: 'databricks', scope: 'ws-prod', server: (l) => l.clouds.handles.databricks.workspace('ws-prod').server, path: '/api/2.0/', mustName: () => 'ws-prod' },
  { name: 'Key Vault kv-prod', estate: 'keyvault', scope: 'kv-prod', server: (l) => l.clouds.handles.keyVault.vault('kv-prod').server, path: '/secrets', mustName: () => 'kv-prod' },
  { name: 'Microsoft Graph', estate: 'entra', scope: '', server: (l) => l.clouds.handles.entra.graph, path: /^\/v1\.0\/(applications|servicePrincipals)/, mustName: (l) => l.clouds.tenantId },
  { name: 'Data Factory (ARM)', estate: 'datafactory', scope: 'adf-prod', server: (l) => l.clouds.handles.dataFactory.server, path: '/providers/Microsoft.DataFactory/', mustName: () => 'adf-prod' },
];
const MAX_ATTEMPTS_PER_CALL = 10;

let lab: Lab;
let baseline: ScanResult;
const logLines: string[] = [];
const figures = { cases: 0, failures: 0, maxAttempts: 0, recreated: 0 };

async function scan(): Promise<ScanResult> {
  const logger = createLogger({ level: 'debug', name: 'faults', destination: { write: (l: string) => logLines.push(l) } });
  // The scanner as productModules builds it, with the short retry budget the test harnesses use.
  const { sources } = createInventorySources(lab.config, { clock: systemClock, retry: { maxRetries: 2, baseDelayMs: 20 }, timeoutMs: 4000 });
  return createScanner({ sources, config: lab.config, store: openSqliteStore({ path: ':memory:' }), clock: systemClock, logger, sourceTimeoutMs: 30_000 }).runScan('command');
}

const count = (s: ScanResult, estate: string, scope: string) => s.credentials.filter((c) => c.where.estate === estate && c.where.scope === scope).length;

beforeAll(async () => {
  lab = await openLab(['ws-prod']);
  baseline = await scan();
  expect(baseline.errors).toEqual([]);
}, 60_000);
afterAll(async () => {
  report('faults', `${figures.cases} cases, ${figures.failures} failures, at most ${figures.maxAttempts} attempts per faulted call site (limit ${MAX_ATTEMPTS_PER_CALL}), ${figures.recreated} lost-answer tokens revoked and re-created once, 0 left live`);
  await lab?.close();
});

describe('a cloud in trouble during a scan', () => {
  for (const target of TARGETS) {
    for (const [faultName, fault] of Object.entries(FAULTS)) {
      it(`${target.name}: ${faultName} → bounded retries, a clear estate error, the rest scanned`, async () => {
        figures.cases += 1;
        const server = target.server(lab);
        server.clearRequests();
        server.injectFault({ ...fault, path: target.path, times: Infinity });
        let result: ScanResult;
        try {
          result = await scan();
        } finally {
          server.clearFaults();
        }
        try {
          const errors = result.errors.filter((e) => e.estate === target.estate);
          expect(errors.length, `an estate error for ${target.name}; got ${JSON.stringify(result.errors)}`).toBeGreaterThan(0);
          for (const e of errors) {
            expect(e.message).toContain(target.mustName(lab));
            expectPlainAnswer(e.message, `estate error for ${target.name}`);
          }
          // Bounded: no call site was tried more than a few times.
          const attempts = new Map<string, number>();
          for (const r of server.requests.filter((x) => x.injected)) attempts.set(`${r.method} ${r.path}`, (attempts.get(`${r.method} ${r.path}`) ?? 0) + 1);
          const most = Math.max(0, ...attempts.values());
          figures.maxAttempts = Math.max(figures.maxAttempts, most);
          expect(most).toBeLessThanOrEqual(MAX_ATTEMPTS_PER_CALL);
          // Every other estate scanned as before.
          for (const c of baseline.credentials) {
            if (c.where.estate === target.estate || (target.estate === 'keyvault' && c.where.scope === target.scope)) continue;
            if (target.estate === 'entra' && c.where.estate === 'entra') continue;
            // Workspaces authenticated by a PAT read from Key Vault depend on Key Vault.
            if (target.estate === 'keyvault' && c.where.estate === 'databricks') continue;
            expect(count(result, c.where.estate, c.where.scope), `${c.where.estate} ${c.where.scope} still scanned; errors: ${JSON.stringify(result.errors)}`).toBe(count(baseline, c.where.estate, c.where.scope));
          }
          expect(findLeaks(collectCanaries(lab.clouds), { errors: JSON.stringify(result.errors), logs: logLines.join('') })).toEqual([]);
        } catch (err) {
          figures.failures += 1;
          throw err;
        }
      }, 60_000);
    }
  }
});

const LOST: Record<string, Omit<Fault, 'path' | 'method'>> = {
  'connection reset': { status: 0, network: 'reset', afterHandling: true },
  '500': { status: 500, afterHandling: true },
  '429': { status: 429, afterHandling: true },
  'truncated body': { status: 200, network: 'truncate', afterHandling: true },
  'stalled answer': { status: 0, network: 'stall', afterHandling: true },
};

describe('the answer to a create call is lost after the cloud made the change', () => {
  for (const [name, fault] of Object.entries(LOST)) {
    it(`Databricks OBO token create, ${name}: one new token, published; no duplicate`, async () => {
      figures.cases += 1;
      const l = await openLab(['ws-prod', 'kv-prod'], { databricks: { timeoutSeconds: 2 } });
      try {
        const cred = credentialOf(l, (c) => c.kind === 'databricks-pat' && c.heldIn.some((h) => h.name === 'adb-prod-etl-token'), 'etl PAT');
        const job = approveJob(l, { kind: 'rotate-pat', plan: planOf(l, 'rotate', cred), jobId: 'rot-fault' });
        l.clouds.handles.databricks.workspace('ws-prod').injectFault({ ...fault, method: 'POST', path: '/token-management/on-behalf-of/tokens', times: 1 });
        const done = await runToEnd(l, job.id, logLines);
        expect(leaksIn(l, { logs: logLines.join(''), jobs: JSON.stringify(l.store.list('jobs')), audit: JSON.stringify(l.store.listAudit()) })).toEqual([]);
        const mine = l.clouds.handles.databricks.workspace('ws-prod').tokens({ includeRevoked: true }).filter((t) => t.comment.includes(patMarker(job.id)));
        const live = mine.filter((t) => !t.revoked);
        const published = l.clouds.handles.keyVault.vault('kv-prod').versions('adb-prod-etl-token').at(-1)!.tags?.['credential-id'];
        expect(['done', 'compensated']).toContain(done.state);
        expect(live.map((t) => t.tokenId)).toEqual(done.state === 'done' ? [published] : []);
        // Databricks shows a token's value only in the create answer: when that answer is lost, Keywarden finds the
        // token by its marker, revokes it (its value exists nowhere) and creates exactly one more — never a blind second.
        expect(mine.length, 'tokens this rotation created').toBeLessThanOrEqual(2);
        figures.recreated += mine.length - 1;
      } catch (err) {
        figures.failures += 1;
        throw err;
      } finally {
        await l.close();
      }
    }, 120_000);

    // Graph's client waits 30 s for an answer (not configurable); a stalled addPassword is covered by the timeout path above.
    if (fault.network === 'stall') continue;
    it(`Graph addPassword, ${name}: one new secret, published; no duplicate`, async () => {
      figures.cases += 1;
      const l = await openLab(['kv-prod', 'entra']);
      try {
        const etl = l.clouds.seeds.entra.etlSecret;
        const cred = credentialOf(l, (c) => c.kind === 'entra-password' && c.nativeId === etl.keyId, 'etl-ingest secret');
        const job = approveJob(l, { kind: 'rotate-entra', plan: planOf(l, 'rotate', cred), jobId: 'rot-fault' });
        l.clouds.handles.entra.graph.injectFault({ ...fault, method: 'POST', path: '/addPassword', times: 1 });
        const done = await runToEnd(l, job.id, logLines);
        expect(leaksIn(l, { logs: logLines.join(''), jobs: JSON.stringify(l.store.list('jobs')), audit: JSON.stringify(l.store.listAudit()) })).toEqual([]);
        const mine = passwordsOf(l, 'etl-ingest').filter((p) => p.displayName === `keywarden rotation ${job.id}`);
        const published = l.clouds.handles.keyVault.vault('kv-prod').versions('etl-ingest-client-secret').at(-1)!.tags?.['credential-id'];
        // Only the published secret is left on the app (one whose answer was lost was removed: its value is gone);
        // a rotation that gave up instead (compensated) left none.
        expect(['done', 'compensated']).toContain(done.state);
        expect(mine.map((p) => p.keyId)).toEqual(done.state === 'done' ? [published] : []);
        expect(l.clouds.handles.entra.graph.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/addPassword')).length).toBeLessThanOrEqual(2);
      } catch (err) {
        figures.failures += 1;
        throw err;
      } finally {
        await l.close();
      }
    }, 120_000);
  }
});
