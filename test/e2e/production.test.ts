import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Production mode never runs anonymous: `keywarden start` refuses and names every missing Bot Framework key. */
describe('keywarden start in production mode without Bot Framework credentials', () => {
  it('refuses to start, names the missing keys and the env vars that supply them, and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-prod-'));
    try {
      const config = join(dir, 'keywarden.yaml');
      writeFileSync(config, ['mode: production', 'server: { host: 0.0.0.0, port: 3995 }', `store: { path: ${JSON.stringify(join(dir, 'kw.db'))} }`].join('\n'));
      const env = { ...process.env };
      for (const k of ['MicrosoftAppId', 'MicrosoftAppPassword', 'MicrosoftAppTenantId', 'MicrosoftAppType', 'KEYWARDEN_CONFIG']) delete env[k];
      const run = spawnSync(process.execPath, ['bin/keywarden.mjs', 'start', '--config', config], { env, encoding: 'utf8', timeout: 60_000 });
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/bot\.appId: required in production mode — set bot\.appId .*MicrosoftAppId/);
      expect(run.stderr).toMatch(/bot\.appPassword.*MicrosoftAppPassword/);
      expect(run.stderr).toMatch(/bot\.tenantId.*MicrosoftAppTenantId/);
      expect(run.stderr).not.toMatch(/\n\s+at /); // a problem list, not a stack trace
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
