import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildMessage } from './bench/child.js';
import { renderReport, type MachineInfo } from './bench/report.js';
import { SCENARIO_IDS, type ScenarioId, type ScenarioResult } from './bench/types.js';

/**
 * `npm run bench [-- --only=scan,bot] [-- --json | --json=<file>]`: speed and memory figures for Keywarden's hot paths.
 * `--json` prints only JSON on stdout (use `npm run -s bench -- --json`, so npm's banner stays out of it);
 * `--json=<file>` prints the table and writes the JSON to the file.
 * Each scenario runs in its own child process (with --expose-gc) so memory figures do not mix; this process only
 * orchestrates and prints. Exits 0 when every scenario ran, 1 otherwise.
 */

const CHILD = fileURLToPath(new URL('./bench/child.ts', import.meta.url));
const SCENARIO_TIMEOUT_MS = 240_000;

function parseArgs(argv: string[]): { json: boolean; jsonFile?: string; only: ScenarioId[] } {
  let json = false;
  let jsonFile: string | undefined;
  let only: ScenarioId[] = [...SCENARIO_IDS];
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg.startsWith('--json=')) jsonFile = arg.slice('--json='.length);
    else if (arg.startsWith('--only=')) {
      const wanted = arg.slice('--only='.length).split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = wanted.filter((w) => !SCENARIO_IDS.includes(w as ScenarioId));
      if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')} — use --only=${SCENARIO_IDS.join(',')}`);
      only = wanted as ScenarioId[];
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`usage: npm run -s bench -- [--json | --json=<file>] [--only=${SCENARIO_IDS.join(',')}]\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${arg} — use --json, --json=<file> and/or --only=<ids>`);
  }
  return { json, jsonFile, only };
}

let interrupted = false;
let current: ReturnType<typeof fork> | undefined;
// Ctrl-C: stop the running scenario (its child closes its servers and its estate process) and run no more.
process.once('SIGINT', () => {
  interrupted = true;
  current?.kill('SIGTERM');
});

function runChild(id: ScenarioId): Promise<ChildMessage> {
  return new Promise((resolve) => {
    const child = fork(CHILD, [id], { execArgv: [...process.execArgv, '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    current = child;
    let message: ChildMessage | undefined;
    const timer = setTimeout(() => {
      message ??= { type: 'error', message: `did not finish within ${SCENARIO_TIMEOUT_MS / 1000} s (killed)` };
      child.kill('SIGKILL');
    }, SCENARIO_TIMEOUT_MS);
    child.on('message', (m) => { message ??= m as ChildMessage; });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolve(message ?? { type: 'error', message: `exited with ${signal ?? `code ${code}`} before reporting` });
    });
  });
}

let args: ReturnType<typeof parseArgs>;
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(2);
}
const { json, jsonFile, only } = args;
const cpus = os.cpus();
const machine: MachineInfo = {
  cpus: cpus.length, cpuModel: cpus[0]?.model.trim() ?? 'unknown', node: process.version,
  platform: `${process.platform} ${process.arch}`, totalMemoryBytes: os.totalmem(), startedAt: new Date().toISOString(),
};
const log = (text: string) => process.stderr.write(`${text}\n`);
if (!json) log(`Keywarden bench: ${machine.cpus} CPU (${machine.cpuModel}), Node ${machine.node}; scenarios: ${only.join(', ')}`);

const t0 = performance.now();
const results: ScenarioResult[] = [];
const failures: Array<{ id: string; message: string }> = [];
const leftovers: Record<string, string[]> = {};
for (const id of only) {
  if (interrupted) {
    failures.push({ id, message: 'not run: interrupted' });
    continue;
  }
  const started = performance.now();
  log(`… ${id}`);
  const message = await runChild(id);
  if (message.type === 'result') {
    results.push(message.result);
    if (message.leftover.length) leftovers[id] = message.leftover;
    log(`  ${id} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } else {
    failures.push({ id, message: message.message });
    log(`  ${id} FAILED: ${message.message.split('\n')[0]}`);
  }
}
const totalMs = performance.now() - t0;

const report = `${JSON.stringify({ machine, totalMs, results, failures, leftovers }, null, 2)}\n`;
if (jsonFile) writeFileSync(jsonFile, report);
if (json) {
  process.stdout.write(report);
} else {
  process.stdout.write(`${renderReport(machine, results, failures, totalMs)}\n`);
  for (const [id, res] of Object.entries(leftovers)) process.stdout.write(`note: ${id} left handles open at exit: ${res.join(', ')}\n`);
}
process.exitCode = failures.length ? 1 : 0;
