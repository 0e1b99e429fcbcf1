import { yieldToLoop } from '../domain/scan.js';

/** Longest synchronous stretch of alert work on the bot's event loop before clicks and timers get a turn. */
const SLICE_MS = 10;

/** Awaited after each unit of work: yields once the current slice has run for `budgetMs`. */
export function timeSlices(budgetMs = SLICE_MS): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await yieldToLoop();
    since = performance.now();
  };
}
