import { renameSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALEX, startWorkflowHarness, type WorkflowHarness } from '../workflows/harness.js';
import { allText } from '../workflows/harness.js';

/**
 * Scans run on a scan thread (issue 14: the bot never waits on a scan). What an operator sees of it: the thread's log
 * lines in the bot's log (redacted), its calls in /metrics, a clear answer when the thread cannot run, and a clean stop.
 */

let h: WorkflowHarness;
beforeAll(async () => {
  h = await startWorkflowHarness({ config: { scanner: { thread: true } } });
}, 120_000);
afterAll(async () => {
  await h?.close();
});

/** What /scan answers (after its typing indicator). */
async function scanCommandAnswer(): Promise<string> {
  const before = h.connector.lastSeq;
  await h.command('/scan', ALEX);
  return allText(await h.connector.waitFor((a) => a.seq > before && a.type === 'message' && Boolean(a.replyToId), 30_000));
}

const lines = (from: number) => h.logLines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the scan thread', () => {
  it("scans, and its log lines (a vault that failed) reach the bot's log marked as the scan thread's, with no secret", async () => {
    const from = h.logLines.length;
    h.clouds.handles.keyVault.injectFault({ status: 500, times: Infinity }, 'kv-dev');
    try {
      const result = await h.scanner.runScan('command');
      expect(result.errors.map((e) => e.scope)).toContain('kv-dev');
      expect(result.counts?.credentials).toBeGreaterThan(10);
    } finally {
      h.clouds.handles.keyVault.clearFaults();
    }
    const logged = lines(from);
    expect(logged.find((l) => l.msg === 'scan started')).toMatchObject({ thread: 'scan' });
    // How busy the scan thread was: near 1, its CPU and not the estates' answers set the scan's pace.
    const finished = logged.find((l) => l.msg === 'scan finished');
    expect(finished).toMatchObject({ busy: expect.any(Number) });
    expect(finished!.busy).toBeGreaterThan(0);
    expect(finished!.busy).toBeLessThanOrEqual(1);
    const failed = logged.find((l) => typeof l.msg === 'string' && l.msg.startsWith('could not scan keyvault kv-dev'));
    expect(failed).toMatchObject({ thread: 'scan', component: 'scanner', scope: 'kv-dev' });
    const secret = h.config.azure.credential.clientSecret;
    if (secret) expect(h.logLines.slice(from).join('\n')).not.toContain(secret);
  }, 60_000);

  it("counts the thread's calls to each estate in /metrics", async () => {
    const read = async () => {
      const text = await (await fetch(`${h.botUrl}/metrics`)).text();
      // Every series of Key Vault calls (each operation and outcome has its own).
      const lines = text.split('\n').filter((l) => l.startsWith('keywarden_cloud_call_duration_seconds_count{estate="keyvault"'));
      return lines.reduce((n, l) => n + Number(l.split(' ').pop() ?? 0), 0);
    };
    const before = await read();
    await h.scanner.runScan('command');
    // The thread reports its calls with the scan's end, before the scan's answer.
    expect(await read()).toBeGreaterThan(before);
  }, 60_000);

  it('answers /scan with what went wrong when the thread cannot open the store, and the next scan starts a new thread', async () => {
    const path = h.config.store.path;
    // A restarted bot starts its scan thread with the first scan; the store file moved away in between: the bot keeps
    // its open connection, the new thread cannot open the file.
    await h.restart();
    renameSync(path, `${path}.moved`);
    let text: string;
    try {
      text = await scanCommandAnswer();
    } finally {
      renameSync(`${path}.moved`, path);
    }
    expect(text).toContain('scan thread stopped');
    expect(text).toContain('no store at');
    expect(text).toContain('store.path');
    const again = await scanCommandAnswer();
    expect(again).not.toContain('scan thread stopped');
    expect(again).toContain('Scan finished');
  }, 60_000);
});

/** keywarden_scan_thread_running in /metrics, polled until it reads `want` (or the last value after 10 s). */
async function scanThreadGauge(url: string, want: number): Promise<number | undefined> {
  let value: number | undefined;
  for (let i = 0; i < 200; i++) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('keywarden_scan_thread_running '));
    value = line ? Number(line.split(' ').pop()) : undefined;
    if (value === want) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  return value;
}

describe('between scans', () => {
  it('the scan thread stays scanner.threadIdleSeconds after a scan (5 minutes by default) for the next one', async () => {
    await h.scanner.runScan('command');
    await new Promise((r) => setTimeout(r, 300));
    expect(await scanThreadGauge(h.botUrl, 1)).toBe(1);
  }, 60_000);

  it('then ends (its memory goes back), and the next scan starts a new one', async () => {
    const own = await startWorkflowHarness({ config: { scanner: { thread: true, threadIdleSeconds: 0 } } });
    try {
      const from = own.logLines.length;
      await own.scanner.runScan('command');
      expect(await scanThreadGauge(own.botUrl, 0)).toBe(0);
      const again = await own.scanner.runScan('command');
      expect(again.errors).toEqual([]);
      expect(await scanThreadGauge(own.botUrl, 0)).toBe(0);
      // Ended on purpose: never reported as a thread that stopped.
      expect(own.logLines.slice(from).join('\n')).not.toContain('the scan thread stopped');
    } finally {
      await own.close();
    }
  }, 60_000);
});

describe('stopping Keywarden during a scan', () => {
  it('stops the scan thread\'s calls: the scan ends with the slow vaults as "shutting down" and the thread closes cleanly', async () => {
    const own = await startWorkflowHarness({ config: { scanner: { thread: true } } });
    let closed = false;
    try {
      for (const vault of own.clouds.handles.keyVault.vaults.values()) vault.server.setLatency(20_000);
      const scan = own.scanner.runScan('command');
      // The thread is running the scan once it logged its start and the vaults' first calls are waiting.
      for (let i = 0; i < 200 && !own.logLines.some((l) => l.includes('"scan started"')); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      await own.close();
      closed = true;
      const result = await scan;
      const vaults = result.errors.filter((e) => e.estate === 'keyvault');
      expect(vaults.length).toBeGreaterThan(0);
      for (const e of vaults) expect(e.message).toContain('shutting down');
      expect(own.logLines.join('\n')).not.toContain('the scan thread stopped');
    } finally {
      if (!closed) await own.close();
    }
  }, 60_000);
});
