import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { nodeEntry } from '../helpers/test-build.js';

/** `npm run bench -- --size 1` (the CI size) prints the scale table; the JSON carries the same figures. */

const run = promisify(execFile);

describe('npm run bench -- --size 1', () => {
  it('prints one row with credentials, requests, bound, ratio, RSS, clicks and Teams messages', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keywarden-bench-test-'));
    try {
      const jsonFile = join(dir, 'bench.json');
      const { stdout } = await run(process.execPath, [...nodeEntry('scripts/bench.ts'), '--size', '1', `--json=${jsonFile}`], { env: process.env, maxBuffer: 8 * 1024 * 1024 });
      expect(stdout).toMatch(/\| size \| credentials \| requests \|\s+wall \| bound \(slowest host\) \|/);
      expect(stdout).toMatch(/^\| 1k /m);
      const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as { scale: Array<{ credentials: number; full: { requests: number; boundMs: number; ratio: number }; rescan: { messages: number }; clicks: { n: number } }>; scaleFailures: unknown[] };
      expect(report.scaleFailures).toEqual([]);
      const [row] = report.scale;
      expect(row!.credentials).toBeGreaterThan(900);
      expect(row!.full.requests).toBeGreaterThan(0);
      expect(row!.full.boundMs).toBeGreaterThan(0);
      expect(row!.clicks.n).toBeGreaterThan(0);
      // Nothing changed between the two scans: nothing new for Teams.
      expect(row!.rescan.messages).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
