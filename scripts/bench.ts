import { fork } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildMessage } from './bench/child.js';
import { renderReport, type MachineInfo } from './bench/report.js';
import { SCENARIO_IDS, type ScenarioId, type ScenarioResult } from './bench/types.js';
import { renderScaleReport } from './bench/scale-report.js';
import type { BenchStore, ScaleResult } from './bench/scenarios/scale.js';
import { DEFAULT_SIZE, parseSize } from './bench/shape.js';
import { transpileCopy } from './transpile.js';

/**
 * `npm run bench [-- --size N] [-- --only=scan,bot] [-- --json | --json=<file>]`: the scale table (scan of N thousand
 * credentials against rate-limited emulators with 50 ms per call; docs/performance.md) and the hot-path scenarios.
 * `--json` prints only JSON on stdout (use `npm run -s bench -- --json`, so npm's banner stays out of it);
 * `--json=<file>` prints the table and writes the JSON to the file.
 * Each scenario runs in its own child process (with --expose-gc) so memory figures do not mix; this process only
 * orchestrates and prints. Exits 0 when every scenario ran, 1 otherwise.
 */

const fromSources = import.meta.url.endsWith('.ts');
// The measured processes run compiled JavaScript, as production does (dist/); from the sources, a transpiled copy is
// made first (tsx's loader hooks add CPU and memory no deployment has). `--tsx` runs them through tsx instead.
let CHILD = fileURLToPath(new URL(`./bench/child.${fromSources ? 'ts' : 'js'}`, import.meta.url));
let childExecArgv = process.execArgv;
let copy: string | undefined;
const SCENARIO_TIMEOUT_MS = 240_000;

function parseArgs(argv: string[]): { json: boolean; jsonFile?: string; only: ScenarioId[]; sizes: number[]; warmUp: boolean; inline: boolean; tsx: boolean; threadMb?: number; store: BenchStore } {
  let warmUp = true;
  let store: BenchStore = 'sqlite';
  let threadMb: number | undefined;
  let tsx = false;
  let inline = false;
  let json = false;
  let jsonFile: string | undefined;
  let only: ScenarioId[] = [];
  let sizes: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--size' || arg.startsWith('--size=')) {
      const value = arg === '--size' ? argv[++i] : arg.slice('--size='.length);
      if (!value) throw new Error('--size needs a value, e.g. --size 7 (thousands of credentials) or --size 7,115,360');
      sizes = value.split(',').map(parseSize);
    } else if (arg === '--no-warm-up') warmUp = false;
    else if (arg === '--inline') inline = true;
    else if (arg === '--tsx') tsx = true;
    else if (arg === '--store' || arg.startsWith('--store=')) {
      const value = arg === '--store' ? argv[++i] : arg.slice('--store='.length);
      if (value !== 'sqlite' && value !== 'tables') throw new Error(`--store needs sqlite (one instance, the default) or tables (Azure Table Storage in azurite, as two replicas run), not "${value ?? ''}"`);
      store = value;
    }
    else if (arg.startsWith('--thread-memory=')) {
      threadMb = Number(arg.slice('--thread-memory='.length));
      if (!Number.isInteger(threadMb) || threadMb < 64) throw new Error('--thread-memory needs a whole number of MB, at least 64 (scanner.threadMemoryMb)');
    }
    else if (arg === '--json') json = true;
    else if (arg.startsWith('--json=')) jsonFile = arg.slice('--json='.length);
    else if (arg.startsWith('--only=')) {
      const raw = arg.slice('--only='.length).split(',').map((s) => s.trim()).filter(Boolean);
      const wanted = raw.includes('all') ? [...SCENARIO_IDS] : raw;
      const unknown = wanted.filter((w) => !SCENARIO_IDS.includes(w as ScenarioId));
      if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')} — use --only=${SCENARIO_IDS.join(',')}`);
      only = wanted as ScenarioId[];
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`usage: npm run -s bench -- [--size N[,M…]] [--json | --json=<file>] [--only=all|${SCENARIO_IDS.join(',')}]\n`
        + `  --size N   the scale table at N thousand credentials (1 = CI, 7 = default, 115, 360 = the full target; or ci/default/large/full)\n`
        + `  --no-warm-up  skip the unmeasured warm-up scan before each size (faster; CPU/cred then includes JIT warm-up)\n`
        + `  --inline   scan on the bot's thread (scanner.thread: false) instead of the scan thread\n`
        + `  --store tables  Keywarden on Azure Table Storage (azurite, in memory) instead of its SQLite file, as replicas run\n`
        + `  --tsx      run the measured processes through tsx (TypeScript sources) instead of a transpiled copy\n`
        + `  --thread-memory=MB  the scan thread's heap limit (scanner.threadMemoryMb; default 512)\n`
        + `  --only=…   the hot-path scenarios (the earlier bench); without --size and --only: --size ${DEFAULT_SIZE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${arg} — use --size N, --json, --json=<file> and/or --only=<ids>`);
  }
  if (sizes.length === 0 && only.length === 0) sizes = [DEFAULT_SIZE];
  return { json, jsonFile, only, sizes, warmUp, inline, tsx, threadMb, store };
}

let interrupted = false;
let current: ReturnType<typeof fork> | undefined;
// Ctrl-C: stop the running scenario (its child closes its servers and its estate process) and run no more.
process.once('SIGINT', () => {
  interrupted = true;
  current?.kill('SIGTERM');
});

function runChild(id: ScenarioId | 'scale', size?: number, warmUp = true, inline = false, threadMb?: number, store: BenchStore = 'sqlite'): Promise<ChildMessage> {
  return new Promise((resolve) => {
    // A large estate scanned on the bot's thread (--inline) may need more heap than Node's default. The scan thread has
    // its own limit (scanner.threadMemoryMb), and the bot's process runs with Node's defaults, as `keywarden start` does.
    const heap = size !== undefined && size > 20 && inline ? ['--max-old-space-size=16384'] : [];
    const timeoutMs = size !== undefined ? 900_000 + size * 60_000 : SCENARIO_TIMEOUT_MS;
    const child = fork(CHILD, size !== undefined ? [id, String(size), warmUp ? 'warm-up' : 'no-warm-up', inline ? 'inline' : 'thread', store, ...(threadMb ? [String(threadMb)] : [])] : [id], { execArgv: [...childExecArgv, '--expose-gc', ...heap], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    current = child;
    let message: ChildMessage | undefined;
    const timer = setTimeout(() => {
      message ??= { type: 'error', message: `did not finish within ${timeoutMs / 1000} s (killed)` };
      child.kill('SIGKILL');
    }, timeoutMs);
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
const { json, jsonFile, only, sizes, warmUp, inline, tsx, threadMb, store } = args;
if (fromSources && !tsx) {
  copy = await transpileCopy();
  CHILD = join(copy, 'scripts', 'bench', 'child.js');
  // Without tsx's loader hooks: plain JavaScript, like `node dist/src/cli/main.js`.
  childExecArgv = process.execArgv.filter((a, i, all) => !/tsx/.test(a) && !/tsx/.test(all[i + 1] ?? ''));
  process.once('exit', () => rmSync(copy!, { recursive: true, force: true }));
}
const cpus = os.cpus();
const machine: MachineInfo = {
  cpus: cpus.length, cpuModel: cpus[0]?.model.trim() ?? 'unknown', node: process.version,
  platform: `${process.platform} ${process.arch}`, totalMemoryBytes: os.totalmem(), startedAt: new Date().toISOString(),
};
const log = (text: string) => process.stderr.write(`${text}\n`);
if (!json) log(`Keywarden bench: ${machine.cpus} CPU (${machine.cpuModel}), Node ${machine.node}; ${sizes.length ? `sizes: ${sizes.map((n) => `${n}k`).join(', ')}` : ''}${sizes.length && only.length ? '; ' : ''}${only.length ? `scenarios: ${only.join(', ')}` : ''}`);

const t0 = performance.now();
const scale: ScaleResult[] = [];
const scaleFailures: Array<{ id: string; message: string }> = [];
for (const size of sizes) {
  if (interrupted) break;
  const started = performance.now();
  log(`… size ${size}k`);
  const message = await runChild('scale', size, warmUp, inline, threadMb, store);
  if (message.type === 'scale') {
    scale.push(message.result);
    log(`  size ${size}k done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } else {
    const text = message.type === 'error' ? message.message : 'unexpected reply';
    scaleFailures.push({ id: `size ${size}k`, message: text });
    log(`  size ${size}k FAILED: ${text.split('\n')[0]}`);
  }
}
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
    const text = message.type === 'error' ? message.message : 'unexpected reply';
    failures.push({ id, message: text });
    log(`  ${id} FAILED: ${text.split('\n')[0]}`);
  }
}
const totalMs = performance.now() - t0;

const report = `${JSON.stringify({ machine, totalMs, scale, scaleFailures, results, failures, leftovers }, null, 2)}\n`;
if (jsonFile) writeFileSync(jsonFile, report);
if (json) {
  process.stdout.write(report);
} else {
  if (sizes.length) process.stdout.write(`${renderScaleReport(machine, scale, scaleFailures)}\n`);
  if (only.length) process.stdout.write(`${renderReport(machine, results, failures, totalMs)}\n`);
  for (const [id, res] of Object.entries(leftovers)) process.stdout.write(`note: ${id} left handles open at exit: ${res.join(', ')}\n`);
}
process.exitCode = failures.length || scaleFailures.length ? 1 : 0;
