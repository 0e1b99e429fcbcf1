import { afterEach, describe, expect, it } from 'vitest';
import { installSignalHandlers } from '../../bot/server.js';
import { createLogger } from '../../src/logging/logger.js';
import { startBotHarness, type BotHarness } from '../helpers/bot.js';

describe('graceful shutdown', () => {
  let h: BotHarness | undefined;
  afterEach(async () => { await h?.close(); h = undefined; });

  it('finishes the turn in flight (its reply is delivered), refuses new work, then closes the store', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const inHandler = new Promise<void>((r) => { started = r; });
    h = await startBotHarness({
      modules: [{ name: 'slow', commands: [{ name: 'slow', usage: '/slow', description: 'waits', handle: async () => { started(); await gate; return { kind: 'text', text: 'done slowly' }; } }] }],
    });
    const pending = h.send(h.message('/slow'));
    await inHandler;
    expect(h.server.inFlight).toBe(1);

    const closing = h.server.close();
    const ready = await fetch(`${h.url}/readyz`).then((r) => r.status, () => 'refused');
    expect([503, 'refused']).toContain(ready);
    expect(h.store.isOpen).toBe(true);

    release();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.sent.map((a) => a.text)).toEqual(['done slowly']);
    await closing;
    expect(h.store.isOpen).toBe(false);
    await expect(fetch(`${h.url}/healthz`)).rejects.toThrow();
  });

  it('gives up on a stuck turn at the deadline and still closes the store', async () => {
    h = await startBotHarness({
      shutdownTimeoutMs: 1_000,
      modules: [{ name: 'stuck', commands: [{ name: 'stuck', usage: '/stuck', description: 'never returns', handle: () => new Promise(() => undefined) }] }],
    });
    void h.send(h.message('/stuck')).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    // A stuck turn must not hold shutdown past its budget (1 s here; generous bound below).
    const started = performance.now();
    await h.server.close();
    expect(performance.now() - started).toBeLessThan(8_000);
    expect(h.store.isOpen).toBe(false);
  });

  it('SIGTERM closes the server and exits 0', async () => {
    h = await startBotHarness();
    const lines: string[] = [];
    const codes: number[] = [];
    const others = { term: process.listeners('SIGTERM') };
    // Only our handler may run: park any listeners the test runner installed.
    for (const l of others.term) process.off('SIGTERM', l);
    const uninstall = installSignalHandlers(h.server, createLogger({ destination: { write: (l: string) => lines.push(l) } }), { exit: (c) => codes.push(c) });
    try {
      process.emit('SIGTERM');
      await new Promise<void>((resolve) => { const t = setInterval(() => { if (codes.length) { clearInterval(t); resolve(); } }, 20); });
    } finally {
      uninstall();
      for (const l of others.term) process.on('SIGTERM', l);
    }
    expect(codes).toEqual([0]);
    expect(h.store.isOpen).toBe(false);
    expect(lines.some((l) => l.includes('shutting down gracefully'))).toBe(true);
  });
});
