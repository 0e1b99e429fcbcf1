import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: REPO });

const offending = [
  "import { TurnContext } from 'botbuilder';",
  "import type { Activity } from 'botbuilder-core';",
  "import { Application } from '@microsoft/teams-ai';",
  "export { CardFactory } from 'botbuilder';",
  'export type Uses = [TurnContext, Activity, typeof Application];',
  '',
].join('\n');

function restrictedImportLines(results: ESLint.LintResult[]): number[] {
  return results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports' && m.severity === 2).map((m) => m.line));
}

describe('only bot/ may import the Bot Framework libraries', () => {
  it('fails lint for a file under src/ that imports botbuilder or teams-ai', async () => {
    const file = join(REPO, 'src', `lint-probe-${process.pid}-${randomBytes(4).toString('hex')}.ts`);
    writeFileSync(file, offending);
    try {
      const results = await eslint.lintFiles([file]);
      expect(results).toHaveLength(1);
      expect(results[0]!.errorCount).toBeGreaterThanOrEqual(4);
      expect(restrictedImportLines(results)).toEqual([1, 2, 3, 4]);
      expect(results[0]!.messages[0]!.message).toMatch(/Only bot\/ may import botbuilder/);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('applies to test/ and scripts/ as well', async () => {
    for (const dir of ['test', 'scripts']) {
      const results = await eslint.lintText(offending, { filePath: join(REPO, dir, 'probe.ts') });
      expect(restrictedImportLines(results)).toEqual([1, 2, 3, 4]);
    }
  });

  it('allows the same imports under bot/', async () => {
    const results = await eslint.lintText(offending, { filePath: join(REPO, 'bot', 'probe.ts') });
    expect(restrictedImportLines(results)).toEqual([]);
    expect(results[0]!.errorCount).toBe(0);
  });
});
