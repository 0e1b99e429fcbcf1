import './warnings.js'; // first: silences restify's DEP0111 before any command loads it
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, loadConfig } from '../config/load.js';
import { redactText } from '../logging/redact.js';
import { ensureSandboxTls } from '../sandbox/tls.js';
import { COMMAND_USAGE, wantsHelp } from './help.js';
import { usesSandboxClouds } from './sandbox-mode.js';

/** `keywarden <command> [args]`: a thin dispatcher; each command lives in src/cli/<command>.ts. */

export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

export const COMMANDS = {
  start: 'run the bot (the sandbox with emulated clouds when no config is found)',
  scan: 'scan every configured estate once and print the findings',
  doctor: 'check the configuration, connectivity and permissions',
  audit: 'show or verify the audit log',
  package: 'build the Teams app package (appPackage/ → keywarden-app.zip)',
} as const;
export type CommandName = keyof typeof COMMANDS;

/** Commands that talk HTTPS to the emulators in sandbox mode, so they need the sandbox CA trusted. */
const SANDBOX_NETWORK_COMMANDS: ReadonlySet<string> = new Set(['start', 'scan', 'doctor']);
const RESPAWN_GUARD = 'KEYWARDEN_CLI_RESPAWNED';

export interface MainOptions {
  env?: Record<string, string | undefined>;
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  /** Folder holding the command modules (default: this file's folder; env KEYWARDEN_CLI_COMMANDS_DIR for tests). */
  commandsDir?: string;
  /** Whether main may re-spawn the process to trust the sandbox CA (default true). */
  allowRespawn?: boolean;
}

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'Usage: keywarden <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, what]) => `  ${name.padEnd(width)}  ${what}`),
    '',
    'Options:',
    '  --config <file>  config file (else KEYWARDEN_CONFIG, else ./keywarden.yaml or ./keywarden.json)',
    '  --sandbox        run against the local emulated clouds',
    '  --help           show this help (or: keywarden <command> --help)',
    '',
    'With no config file Keywarden runs the sandbox. Docs: README.md and docs/.',
    '',
  ].join('\n');
}

/** The value of --config <file> / --config=<file>, if given. */
export function configPathFrom(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') return argv[i + 1];
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return undefined;
}

/** Our typed errors (own class name plus a string code) are the user's to fix, so no stack trace; Node's system errors are not. */
function isKnownError(err: unknown): err is Error & { code: string } {
  return err instanceof Error && err.name !== 'Error' && typeof (err as { code?: unknown }).code === 'string';
}

function findCommandModule(dir: string, name: string): string | undefined {
  for (const ext of ['.js', '.ts']) {
    const file = join(dir, `${name}${ext}`);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Where NODE_EXTRA_CA_CERTS must point for this run, or undefined when the sandbox CA isn't needed. */
function sandboxCaFor(command: string, argv: readonly string[], env: Record<string, string | undefined>): string | undefined {
  const forced = argv.includes('--sandbox');
  if (!forced && !SANDBOX_NETWORK_COMMANDS.has(command)) return undefined;
  const configPath = configPathFrom(argv);
  const { config } = loadConfig({ env, ...(configPath ? { path: configPath } : {}) });
  const sandboxClouds = command === 'start' ? config.mode === 'sandbox' : usesSandboxClouds(config, false);
  if (!forced && !sandboxClouds) return undefined;
  return ensureSandboxTls(config.sandbox.dataDir ?? './data/sandbox').caPath;
}

/** Node reads NODE_EXTRA_CA_CERTS only at start-up, so run this same CLI again with it set. */
function respawnWithCa(caPath: string, env: Record<string, string | undefined>): Promise<number> {
  const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  const child = spawn(process.execPath, args, {
    // Own process group: a terminal's Ctrl-C reaches only this process, which passes it on exactly once
    // (a second SIGINT would make the child skip its graceful shutdown). The IPC channel lets the child
    // notice if this process dies without passing anything on.
    detached: true,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...env, NODE_EXTRA_CA_CERTS: caPath, [RESPAWN_GUARD]: '1' },
  });
  const forwarded = new Set<NodeJS.Signals>();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (forwarded.has(signal)) return;
      forwarded.add(signal);
      child.kill(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return new Promise((resolveExit) => {
    const done = (code: number) => {
      for (const [signal, handler] of handlers) process.off(signal, handler);
      resolveExit(code);
    };
    child.on('error', (err) => {
      process.stderr.write(`keywarden: could not restart with the sandbox CA: ${redactText(err.message)}\n`);
      done(1);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
  });
}

/** In the re-spawned child: if the parent CLI dies (even by SIGKILL), shut down as if told to stop. */
function stopWithParent(): void {
  if (!process.channel) return;
  process.channel.unref(); // the channel alone must not keep the process alive
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

/** Runs one CLI invocation and returns its exit code (0 ok, 1 failure, 2 usage or configuration problem). */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  const [command, ...rest] = argv;
  if (env[RESPAWN_GUARD] === '1') stopWithParent();
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    out.write(usage());
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    err.write(`keywarden: unknown command "${redactText(command)}"\n\n${usage()}`);
    return 2;
  }
  // Help never loads the command: no config is read, nothing starts, no file is written.
  if (wantsHelp(rest)) {
    out.write(COMMAND_USAGE[command] ?? usage());
    return 0;
  }
  try {
    if ((options.allowRespawn ?? true) && env[RESPAWN_GUARD] !== '1') {
      const caPath = sandboxCaFor(command, rest, env);
      if (caPath && (!env.NODE_EXTRA_CA_CERTS || resolve(env.NODE_EXTRA_CA_CERTS) !== resolve(caPath))) {
        return await respawnWithCa(caPath, env);
      }
    }
    const dir = options.commandsDir ?? env.KEYWARDEN_CLI_COMMANDS_DIR ?? dirname(fileURLToPath(import.meta.url));
    const file = findCommandModule(dir, command);
    if (!file) {
      err.write(`keywarden ${command}: not available yet — this command has not been built in this version\n`);
      return 1;
    }
    const mod = (await import(pathToFileURL(file).href)) as Partial<CommandModule>;
    if (typeof mod.run !== 'function') {
      err.write(`keywarden ${command}: ${file} exports no run(argv) function — this is a packaging bug; reinstall Keywarden\n`);
      return 1;
    }
    return await mod.run(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      err.write(`keywarden ${command}: configuration problems${e.path ? ` in ${e.path}` : ''}:\n${e.problems.map((p) => `  - ${redactText(p)}\n`).join('')}`);
      return 2;
    }
    if (isKnownError(e)) {
      err.write(`keywarden ${command}: ${redactText(e.message)} [${e.code}]\n`);
      return 2;
    }
    // Not one of ours: show the stack so it can be reported, redacted like every other output.
    const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
    err.write(`keywarden ${command}: unexpected error — please report it with this output:\n${redactText(detail)}\n`);
    return 1;
  }
}

/** Entry for bin/keywarden.mjs and `tsx src/cli/main.ts`: runs main and sets the exit code. */
export async function runCli(argv: string[] = process.argv.slice(2)): Promise<void> {
  const code = await main(argv);
  // `start` keeps serving after run() resolves if it chose to; other commands end here even with idle sockets open.
  if (argv[0] === 'start') process.exitCode = code;
  else process.exit(code);
}

const invokedPath = process.argv[1] ? resolve(process.argv[1]) : '';
if (invokedPath && pathToFileURL(invokedPath).href === import.meta.url) {
  void runCli();
}
