import cron, { type ScheduledTask } from 'node-cron';

/** The scan schedule: a node-cron task, with the cron expression checked up front so a typo fails loudly at start. */

export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
  readonly code = 'SCAN_SCHEDULE_INVALID';
  readonly statusCode = undefined;
}

/** Throws ScheduleError naming the setting and an example when the cron expression or time zone is wrong. */
export function validateSchedule(expression: string, timezone?: string): void {
  const check = cron.validateDetailed(expression);
  if (!check.valid) {
    const why = check.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    throw new ScheduleError(`scanner.schedule "${expression}" is not a valid cron expression (${why || 'wrong number of fields'}) — use five fields, e.g. "0 */6 * * *" for every 6 hours`);
  }
  if (timezone) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      throw new ScheduleError(`scanner.timezone "${timezone}" is not a known time zone — use an IANA name such as "Europe/Berlin" or leave it out for the server's zone`);
    }
  }
}

export interface ScanSchedule {
  stop(): Promise<void>;
  /** When the next scheduled scan runs (real wall-clock time), or null. */
  nextRun(): Date | null;
  /** Milliseconds between the next two runs: how old a scan may get before it is stale. */
  interval(): number | null;
}

/** Starts the cron task; `run` is called on every tick (the scanner coalesces overlapping runs). */
export function startSchedule(options: { expression: string; timezone?: string; run: () => void | Promise<void> }): ScanSchedule {
  validateSchedule(options.expression, options.timezone);
  const task: ScheduledTask = cron.createTask(options.expression, async () => {
    await options.run();
  }, { name: 'keywarden-scan', timezone: options.timezone, noOverlap: true });
  void task.start();
  return {
    async stop() {
      await task.stop();
      await task.destroy();
    },
    nextRun: () => task.getNextRun(),
    interval() {
      const [a, b] = task.getNextRuns(2);
      return a && b ? b.getTime() - a.getTime() : null;
    },
  };
}
