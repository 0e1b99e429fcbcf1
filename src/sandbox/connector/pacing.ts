/**
 * Teams' per-bot, per-thread send limits (learn "Optimize your bot with rate limiting in Teams"), checked
 * against the emulator's clock so tests can assert the product paces its posts.
 */

export interface RateLimit {
  windowMs: number;
  max: number;
  label: string;
}

/** Send to conversation, per bot per thread: 7/1 s, 8/2 s, 60/30 s, 1800/h. */
export const TEAMS_SEND_LIMITS: readonly RateLimit[] = [
  { windowMs: 1_000, max: 7, label: '7 per 1 s' },
  { windowMs: 2_000, max: 8, label: '8 per 2 s' },
  { windowMs: 30_000, max: 60, label: '60 per 30 s' },
  { windowMs: 3_600_000, max: 1800, label: '1800 per hour' },
];

export interface LimitViolation {
  conversationId: string;
  limit: string;
  /** Sends inside the window ending at `at` (more than the limit allows). */
  count: number;
  at: number;
}

/** Remembers send times per conversation and says which Teams limits they broke. */
export class SendPacing {
  private readonly sends = new Map<string, number[]>();

  constructor(private readonly limits: readonly RateLimit[] = TEAMS_SEND_LIMITS) {}

  record(conversationId: string, at: number): void {
    const list = this.sends.get(conversationId) ?? [];
    list.push(at);
    this.sends.set(conversationId, list);
  }

  /** The limit a send at `at` would break, if any (for the optional enforcing mode). */
  wouldExceed(conversationId: string, at: number): RateLimit | undefined {
    const list = this.sends.get(conversationId) ?? [];
    return this.limits.find((l) => list.filter((t) => t > at - l.windowMs && t <= at).length + 1 > l.max);
  }

  /** Every (conversation, limit) pair that was exceeded, with the worst count seen. */
  violations(): LimitViolation[] {
    const out: LimitViolation[] = [];
    for (const [conversationId, times] of this.sends) {
      const sorted = [...times].sort((a, b) => a - b);
      for (const limit of this.limits) {
        let worst: LimitViolation | undefined;
        let start = 0;
        for (let end = 0; end < sorted.length; end++) {
          while (sorted[end]! - sorted[start]! >= limit.windowMs) start++;
          const count = end - start + 1;
          if (count > limit.max && (!worst || count > worst.count)) {
            worst = { conversationId, limit: limit.label, count, at: sorted[end]! };
          }
        }
        if (worst) out.push(worst);
      }
    }
    return out;
  }

  reset(): void {
    this.sends.clear();
  }
}
