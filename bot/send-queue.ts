/**
 * One send at a time per conversation: Teams answers concurrent operations on a thread with 412 and counts
 * sends against per-thread limits, and a card must exist before its update or its thread reply.
 */
export class ConversationQueues {
  private readonly tails = new Map<string, Promise<void>>();

  /** @param holdMs pause after each send before the next one in the same conversation (pacing). */
  constructor(private readonly holdMs = 0) {}

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result
      .catch(() => undefined)
      .then(() => (this.holdMs > 0 ? new Promise<void>((r) => setTimeout(r, this.holdMs)) : undefined))
      .then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    this.tails.set(key, tail);
    return result;
  }

  /** Resolves when every queued send has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  get busyConversations(): number {
    return this.tails.size;
  }
}
