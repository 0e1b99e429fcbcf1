import { RssSampler } from './measure.js';
import type { ScenarioId, ScenarioResult } from './types.js';
import type { ScaleResult } from './scenarios/scale.js';

/** One scenario in its own process (started by scripts/bench.ts with --expose-gc), so memory figures do not mix. */

export type ChildMessage =
  | { type: 'result'; result: ScenarioResult; leftover: string[] }
  | { type: 'scale'; result: ScaleResult }
  | { type: 'error'; message: string };

type Runner = (sampler: RssSampler) => Promise<ScenarioResult>;

// Loaded on demand, so a scenario's baseline memory holds only the modules it uses.
const SCENARIOS: Record<ScenarioId, () => Promise<Runner>> = {
  scan: async () => (await import('./scenarios/scan.js')).runScanScenario,
  policy: async () => (await import('./scenarios/policy.js')).runPolicyScenario,
  store: async () => (await import('./scenarios/store.js')).runStoreScenario,
  cards: async () => (await import('./scenarios/cards.js')).runCardsScenario,
  alerts: async () => (await import('./scenarios/alerts.js')).runAlertsScenario,
  bot: async () => (await import('./scenarios/bot.js')).runBotScenario,
  pipeline: async () => (await import('./scenarios/pipeline.js')).runPipelineScenario,
};

const id = process.argv[2] as ScenarioId | 'scale';
const sampler = new RssSampler();
let message: ChildMessage;
if (id === 'scale') {
  // `--size N`: one size per child, so each size's peak RSS is its own.
  try {
    const { runScaleScenario } = await import('./scenarios/scale.js');
    message = { type: 'scale', result: await runScaleScenario(sampler, Number(process.argv[3]), { warmUp: process.argv[4] !== 'no-warm-up', thread: process.argv[5] !== 'inline', store: process.argv[6] === 'tables' ? 'tables' : 'sqlite', threadMemoryMb: process.argv[7] ? Number(process.argv[7]) : undefined }) };
  } catch (err) {
    message = { type: 'error', message: (err as Error)?.stack ?? String(err) };
  }
  await sampler.stop();
  process.send!(message, () => process.exit(message.type === 'error' ? 1 : 0));
} else try {
  const load = SCENARIOS[id];
  if (!load) throw new Error(`unknown scenario "${id}"; use one of ${Object.keys(SCENARIOS).join(', ')}`);
  const run = await load();
  const result = await run(sampler);
  // Closed servers release their handles on the next turn of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Anything still open after the scenario's own cleanup (servers must not be among it).
  const leftover = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap' && r !== 'Timeout' && r !== 'Immediate' && r !== 'MessagePort' && r !== 'Worker');
  message = { type: 'result', result, leftover };
} catch (err) {
  message = { type: 'error', message: (err as Error)?.stack ?? String(err) };
}
if (id !== 'scale') {
  await sampler.stop();
  process.send!(message!, () => process.exit(message.type === 'result' ? 0 : 1));
}
