/**
 * One abort signal per request attempt: it aborts when the attempt outlives its timeout or when the caller's signal
 * aborts. Cheaper than `AbortSignal.any([caller, AbortSignal.timeout(ms)])` per request (two tracked signals, a weak
 * registry each), and a caller signal shared by every request of a scan carries one listener, not one per request.
 */

export interface Attempt {
  readonly signal: AbortSignal;
  /** Whether the attempt's own timeout fired (the caller did not cancel). */
  readonly timedOut: boolean;
  /** Stops the timer and detaches from the caller's signal; call once the answer has been read or the attempt failed. */
  done(): void;
}

interface Followers {
  controllers: Set<AbortController>;
  onAbort(): void;
}

export class AttemptSignals {
  private readonly followers = new Map<AbortSignal, Followers>();

  open(caller: AbortSignal | undefined, timeoutMs: number): Attempt {
    const controller = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    if (caller?.aborted) controller.abort(caller.reason);
    else {
      if (caller) this.follow(caller, controller);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
      }, timeoutMs);
    }
    return {
      signal: controller.signal,
      get timedOut() { return timedOut; },
      done: () => {
        if (timer) clearTimeout(timer);
        if (caller) this.unfollow(caller, controller);
      },
    };
  }

  private follow(caller: AbortSignal, controller: AbortController): void {
    let entry = this.followers.get(caller);
    if (!entry) {
      const controllers = new Set<AbortController>();
      entry = {
        controllers,
        onAbort: () => {
          this.followers.delete(caller);
          for (const c of controllers) c.abort(caller.reason);
        },
      };
      this.followers.set(caller, entry);
      caller.addEventListener('abort', entry.onAbort, { once: true });
    }
    entry.controllers.add(controller);
  }

  /** The last attempt on a caller's signal lets go of it (a long-lived signal must not pin this map). */
  private unfollow(caller: AbortSignal, controller: AbortController): void {
    const entry = this.followers.get(caller);
    if (!entry || !entry.controllers.delete(controller) || entry.controllers.size > 0) return;
    this.followers.delete(caller);
    caller.removeEventListener('abort', entry.onAbort);
  }
}
