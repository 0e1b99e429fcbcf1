/**
 * Proof suite "leak canaries" — the paths the whole-product canary run (test/invariants/no-secret-anywhere) does
 * not force: SDK and client errors raised while a secret value is on the wire. Each case makes a cloud answer a call
 * that carries a secret with a broken body (cut in the middle of the secret, or a 4xx/5xx after the change happened)
 * and runs the rotation to its end with debug-level logging. Then every secret value the clouds hold or minted (read
 * from the emulators, whole, first and last 12 characters) is searched for in the logs, the job records (errors,
 * notes), the approvals and the audit log. The crash-every-step suite runs the same search over every child's output.
 * Prints: `leak-canaries: <paths> paths, <canaries> canary secrets, <bytes> bytes searched, <leaks> leaks`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Fault } from '../../src/sandbox/emulator.js';
import { approveJob, credentialOf, leaksIn, openLab, planOf, runToEnd, type Lab } from './fixtures/crash-lab.js';
import { collectCanaries } from '../invariants/canaries.js';
import { report } from './fixtures/report.js';

interface LeakPath {
  name: string;
  rotate: 'pat' | 'entra';
  fault(lab: Lab): void;
}

const cut = (extra: Partial<Fault> = {}): Omit<Fault, 'path'> => ({ status: 200, network: 'truncate', afterHandling: true, ...extra });
const PATHS: LeakPath[] = [
  { name: 'Databricks token create answer cut inside token_value', rotate: 'pat', fault: (l) => l.clouds.handles.databricks.workspace('ws-prod').injectFault({ ...cut(), method: 'POST', path: '/on-behalf-of/tokens' }) },
  { name: 'Databricks token create answered 500 after the token was made', rotate: 'pat', fault: (l) => l.clouds.handles.databricks.workspace('ws-prod').injectFault({ status: 500, afterHandling: true, method: 'POST', path: '/on-behalf-of/tokens' }) },
  { name: 'Key Vault set-secret answer (echoes the value) cut in the middle', rotate: 'pat', fault: (l) => l.clouds.handles.keyVault.vault('kv-prod').server.injectFault({ ...cut(), method: 'PUT', path: '/secrets/adb-prod-etl-token' }) },
  { name: 'Key Vault get-secret answer (the value) cut in the middle, during verification', rotate: 'pat', fault: (l) => l.clouds.handles.keyVault.vault('kv-prod').server.injectFault({ ...cut(), method: 'GET', path: /^\/secrets\/adb-prod-etl-token\/[0-9a-f]+/ }) },
  { name: 'Key Vault set-secret refused with 400 after the request carried the value', rotate: 'pat', fault: (l) => l.clouds.handles.keyVault.vault('kv-prod').server.injectFault({ status: 400, method: 'PUT', path: '/secrets/adb-prod-etl-token', body: { error: { code: 'BadParameter', message: 'The request is invalid.' } } }) },
  { name: 'Graph addPassword answer cut inside secretText', rotate: 'entra', fault: (l) => l.clouds.handles.entra.graph.injectFault({ ...cut(), method: 'POST', path: '/addPassword' }) },
  { name: 'Graph addPassword answered 503 after the secret was added', rotate: 'entra', fault: (l) => l.clouds.handles.entra.graph.injectFault({ status: 503, afterHandling: true, method: 'POST', path: '/addPassword' }) },
  { name: 'Key Vault set of the Entra secret cut in the middle', rotate: 'entra', fault: (l) => l.clouds.handles.keyVault.vault('kv-prod').server.injectFault({ ...cut(), method: 'PUT', path: '/secrets/etl-ingest-client-secret' }) },
];

const figures = { paths: 0, canaries: 0, bytes: 0, leaks: 0 };
afterAll(() => {
  report('leak-canaries', `${figures.paths} paths, ${figures.canaries} canary secrets, ${figures.bytes} bytes searched, ${figures.leaks} leaks`);
});

describe('no secret in SDK errors and debug logs', () => {
  for (const path of PATHS) {
    it(path.name, async () => {
      const lab = await openLab(path.rotate === 'pat' ? ['ws-prod', 'kv-prod'] : ['kv-prod', 'entra']);
      try {
        const cred = path.rotate === 'pat'
          ? credentialOf(lab, (c) => c.kind === 'databricks-pat' && c.heldIn.some((h) => h.name === 'adb-prod-etl-token'), 'etl PAT')
          : credentialOf(lab, (c) => c.kind === 'entra-password' && c.nativeId === lab.clouds.seeds.entra.etlSecret.keyId, 'etl-ingest secret');
        const job = approveJob(lab, { kind: path.rotate === 'pat' ? 'rotate-pat' : 'rotate-entra', plan: planOf(lab, 'rotate', cred), jobId: 'rot-leak' });
        path.fault(lab);
        const logs: string[] = [];
        const done = await runToEnd(lab, job.id, logs);
        expect(['done', 'compensated']).toContain(done.state);
        const haystacks = {
          'debug logs': logs.join(''),
          'job records': JSON.stringify(lab.store.list('jobs')),
          approvals: JSON.stringify(lab.store.list('approvals')),
          'audit log': JSON.stringify(lab.store.listAudit()),
        };
        const leaks = leaksIn(lab, haystacks);
        figures.paths += 1;
        figures.canaries = Math.max(figures.canaries, collectCanaries(lab.clouds, lab.minted).length);
        figures.bytes += Object.values(haystacks).reduce((s, h) => s + h.length, 0);
        figures.leaks += leaks.length;
        expect(leaks).toEqual([]);
      } finally {
        await lab.close();
      }
    }, 90_000);
  }
});
