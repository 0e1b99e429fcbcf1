import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Ajv04 from 'ajv-draft-04';
import JSZip from 'jszip';
import { describe, expect, it } from 'vitest';
import { pngSize, run } from '../../src/cli/package.js';

const require = createRequire(import.meta.url);
const schemaPath = join(dirname(require.resolve('@microsoft/app-manifest')), 'json-schemas', 'teams', 'v1.24', 'MicrosoftTeams.schema.json');

describe('keywarden package', () => {
  it('writes a zip whose manifest passes the Teams v1.24 schema and whose icons have the right sizes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-pkg-'));
    const configPath = join(dir, 'keywarden.yaml');
    writeFileSync(configPath, [
      'mode: sandbox',
      'bot:',
      '  appId: 6f1c2f0e-2a4b-4c8e-9d1a-3b5e7f9a1c2d',
      '  name: Keywarden Test',
      '  domain: kw.example.com',
    ].join('\n'));
    const out = join(dir, 'app.zip');
    expect(await run(['--config', configPath, '--out', out])).toBe(0);

    const zip = await JSZip.loadAsync(readFileSync(out));
    expect(Object.keys(zip.files).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const manifest = JSON.parse(await zip.file('manifest.json')!.async('string'));
    const ajv = new (Ajv04 as unknown as typeof Ajv04.default)({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
    expect(validate(manifest), JSON.stringify(validate.errors)).toBe(true);
    expect(manifest.bots[0].botId).toBe('6f1c2f0e-2a4b-4c8e-9d1a-3b5e7f9a1c2d');
    expect(manifest.name.short).toBe('Keywarden Test');
    expect(manifest.bots[0].scopes).toEqual(['team', 'personal']);
    expect(manifest.validDomains).toEqual(['kw.example.com']);
    // Teams shows at most 10 commands per list: one list for the support channel (team), one for personal chat.
    const lists = manifest.bots[0].commandLists as Array<{ scopes: string[]; commands: Array<{ title: string }> }>;
    for (const list of lists) expect(list.commands.length).toBeLessThanOrEqual(10);
    const titles = lists.flatMap((l) => l.commands.map((c) => c.title));
    expect(titles).toEqual(expect.arrayContaining(['help', 'expiring', 'findings', 'scan', 'jit', 'audit', 'governance', 'autorotate', 'rules', 'revoke', 'move-to-sp', 'retire-unused', 'max-lifetime', 'restrict-tokens']));

    expect(pngSize(Buffer.from(await zip.file('color.png')!.async('uint8array')))).toEqual({ width: 192, height: 192 });
    expect(pngSize(Buffer.from(await zip.file('outline.png')!.async('uint8array')))).toEqual({ width: 32, height: 32 });
  });
});
