import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { doctorCommand } from '../../src/cli/doctor.js';
import type { DoctorReport } from '../../src/doctor/types.js';
import { startSandboxClouds, type SandboxClouds } from '../../src/sandbox/estate.js';

/** The seeded sandbox clouds plus a config file pointing at them, and a way to run `keywarden doctor` on it. */

export interface DoctorFixture {
  clouds: SandboxClouds;
  dir: string;
  configPath: string;
  /** Keywarden's own Entra application (client) id in the sandbox. */
  appId: string;
  /** Runs the CLI command in-process; `extra` is merged into the config file first. */
  doctor(args?: string[], extra?: Record<string, unknown>): Promise<{ code: number; stdout: string; stderr: string; report?: DoctorReport }>;
  close(): Promise<void>;
}

const SECRET_ENV = 'KW_DOCTOR_TEST_CLIENT_SECRET';

export async function startDoctorFixture(): Promise<DoctorFixture> {
  const clouds = await startSandboxClouds();
  const dir = mkdtempSync(join(tmpdir(), 'kw-doctor-'));
  const configPath = join(dir, 'keywarden.yaml');
  const { clientSecret, ...credential } = clouds.config.azure.credential;
  // The secret stays out of the file, as in production: an env: reference the loader resolves.
  const base = {
    mode: 'sandbox',
    store: { path: join(dir, 'keywarden.db') },
    ...clouds.config,
    azure: { ...clouds.config.azure, credential: { ...credential, clientSecret: `env:${SECRET_ENV}` } },
  };
  const env = { [SECRET_ENV]: clientSecret, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS };

  return {
    clouds, dir, configPath, appId: credential.clientId,
    async doctor(args = [], extra = {}) {
      writeFileSync(configPath, stringify({ ...base, ...extra }));
      let stdout = '';
      let stderr = '';
      const code = await doctorCommand(['--config', configPath, ...args], {
        env, stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) },
      });
      const report = args.includes('--json') && stdout ? (JSON.parse(stdout) as DoctorReport) : undefined;
      return { code, stdout, stderr, report };
    },
    async close() {
      await clouds.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const failures = (report: DoctorReport) => report.checks.filter((c) => c.status === 'fail');
