/** One time source for the product and the emulators, so tests and the sandbox move time without sleeping. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that runs with real time plus an offset that tests (or the sandbox control endpoint) can push forward. */
export class AdjustableClock implements Clock {
  private offsetMs: number;
  private frozenAt: number | undefined;

  constructor(options: { offsetMs?: number; frozenAt?: number } = {}) {
    this.offsetMs = options.offsetMs ?? 0;
    this.frozenAt = options.frozenAt;
  }

  now(): number {
    return (this.frozenAt ?? Date.now()) + this.offsetMs;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`clock can only move forward; got ${ms} ms`);
    this.offsetMs += ms;
  }

  /** Jumps to an absolute time (never backwards). */
  set(epochMs: number): void {
    const delta = epochMs - this.now();
    if (delta < 0) throw new RangeError('clock can only move forward');
    this.offsetMs += delta;
  }

  /** Moves forward to `epochMs` if it is still ahead, else stays: real time may pass it between a check and a set. */
  advanceTo(epochMs: number): void {
    const delta = epochMs - this.now();
    if (delta > 0) this.offsetMs += delta;
  }

  get offset(): number {
    return this.offsetMs;
  }
}

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;
