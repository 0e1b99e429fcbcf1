import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    // Files in one worker share loaded modules: importing the bot, SDKs and emulators once per worker instead of once
    // per file saves about a third of the suite's CPU. Tests keep their state in what they start, not in modules.
    isolate: false,
    // Most files wait on emulators and child processes, not the CPU: 3 workers on 2 cores halve the wall time.
    maxWorkers: Math.max(3, availableParallelism()),
    testTimeout: 30_000,
    hookTimeout: 30_000,
    globalSetup: ['test/global-setup.ts'],
  },
});
