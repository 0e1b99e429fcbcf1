import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig, type Env } from '../config/load.js';
import { configSchema, type KeywardenConfig } from '../config/schema.js';
import { formatJson, formatText } from '../doctor/report.js';
import { runDoctor } from '../doctor/run.js';
import { redactText } from '../logging/redact.js';
import { AzureCredentialConfigError } from '../providers/azure-credential.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from '../sandbox/estate.js';
import { ensureSandboxTls, type SandboxTls } from '../sandbox/tls.js';
import { DOCTOR_USAGE } from './help.js';
import { usesSandboxClouds } from './sandbox-mode.js';

/** `keywarden doctor [--config F] [--sandbox] [--json] [--create-probe-token]`: exit 0 ready, 1 a grant missing, 2 bad config. */

export interface DoctorIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Env;
  cwd?: string;
  signal?: AbortSignal;
}

export { DOCTOR_USAGE };

interface DoctorArgs {
  configPath?: string;
  sandbox: boolean;
  json: boolean;
  createProbeToken: boolean;
  help: boolean;
}

function parseArgs(argv: string[]): DoctorArgs | string {
  const args: DoctorArgs = { sandbox: false, json: false, createProbeToken: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') {
      const value = argv[++i];
      if (!value || value.startsWith('--')) return '--config needs a file path';
      args.configPath = value;
    } else if (arg.startsWith('--config=')) args.configPath = arg.slice('--config='.length);
    else if (arg === '--sandbox') args.sandbox = true;
    else if (arg === '--json') args.json = true;
    else if (arg === '--create-probe-token') args.createProbeToken = true;
    else if (arg === '--help' || arg === '-h') args.help = true;
    else return `unknown option "${arg}"`;
  }
  return args;
}

/** The sandbox CA this process already trusts (NODE_EXTRA_CA_CERTS), so the emulators' certificates verify. */
function trustedSandboxTls(env: Env, config: KeywardenConfig): SandboxTls {
  const trusted = env.NODE_EXTRA_CA_CERTS;
  // Only reuse a directory that really is a sandbox CA dir; never mint a CA next to someone's own bundle.
  if (trusted && existsSync(join(dirname(trusted), 'server.key'))) return ensureSandboxTls(dirname(trusted));
  return ensureSandboxTls(config.sandbox.dataDir);
}

/** Runs doctor with explicit IO (tests and the dispatcher); returns the exit code. */
export async function doctorCommand(argv: string[], io: DoctorIo): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    io.stderr.write(`keywarden doctor: ${args}\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(DOCTOR_USAGE);
    return 0;
  }

  let clouds: SandboxClouds | undefined;
  try {
    const loaded = loadConfig({ path: args.configPath, env: io.env, cwd: io.cwd });
    let config = loaded.config;
    let source = loaded.path ?? 'none (sandbox defaults)';
    if (usesSandboxClouds(config, args.sandbox)) {
      clouds = await startSandboxClouds({ tls: trustedSandboxTls(io.env, config) });
      config = configSchema.parse(withSandboxConfig(config as unknown as Record<string, unknown>, clouds.config));
      source = `${loaded.path ?? 'defaults'} + emulated clouds (sandbox)`;
    }
    const report = await runDoctor({ config, configSource: source, env: io.env as NodeJS.ProcessEnv, signal: io.signal, createProbeToken: args.createProbeToken });
    io.stdout.write(args.json ? formatJson(report) : formatText(report));
    return report.exitCode;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`keywarden doctor: configuration problems${err.path ? ` in ${err.path}` : ''}:\n${err.problems.map((p) => `  - ${redactText(p)}\n`).join('')}`);
      return 2;
    }
    if (err instanceof AzureCredentialConfigError) {
      io.stderr.write(`keywarden doctor: ${redactText(err.message)}\n`);
      return 2;
    }
    throw err;
  } finally {
    await clouds?.close();
  }
}

/** Entry for src/cli/main.ts. */
export function run(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  return doctorCommand(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal })
    .finally(() => process.off('SIGINT', stop));
}
