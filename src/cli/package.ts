import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import JSZip from 'jszip';
import { loadConfig } from '../config/load.js';
import type { KeywardenConfig } from '../config/schema.js';

/** `keywarden package`: writes the Teams app zip (manifest + icons) with the app id and names from config. */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []));
const appPackageDir = join(root, 'appPackage');
const SANDBOX_APP_ID = '00000000-0000-4000-8000-00000000b07d';

export interface AppPackage {
  manifest: Record<string, unknown>;
  zip: Buffer;
}

/** PNG width and height from the IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || png.toString('ascii', 1, 4) !== 'PNG') throw new Error('not a PNG file');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

export function renderManifest(config: KeywardenConfig, version: string): Record<string, unknown> {
  const appId = config.bot.appId ?? SANDBOX_APP_ID;
  const values: Record<string, string> = {
    APP_VERSION: version,
    TEAMS_APP_ID: config.bot.teamsAppId ?? appId,
    BOT_ID: appId,
    APP_NAME: config.bot.name,
    DEVELOPER_NAME: config.bot.developer.name,
    DEVELOPER_URL: config.bot.developer.websiteUrl.replace(/\/$/, ''),
    BOT_DOMAIN: config.bot.domain,
  };
  const template = readFileSync(join(appPackageDir, 'manifest.json'), 'utf8');
  const text = template.replace(/\$\{\{([A-Z_]+)\}\}/g, (_m, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`appPackage/manifest.json uses \${{${key}}}, which Keywarden does not know`);
    return JSON.stringify(value).slice(1, -1);
  });
  return JSON.parse(text) as Record<string, unknown>;
}

/** Validates against the v1.24 schema shipped in @microsoft/app-manifest (no network). */
export async function validateManifest(manifest: Record<string, unknown>): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const { ManifestUtil } = await import('@microsoft/app-manifest');
  const schemaPath = join(dirname(require.resolve('@microsoft/app-manifest')), 'json-schemas', 'teams', 'v1.24', 'MicrosoftTeams.schema.json');
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
  return ManifestUtil.validateManifestAgainstSchema(manifest as never, schema);
}

export async function buildAppPackage(config: KeywardenConfig): Promise<AppPackage> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const manifest = renderManifest(config, pkg.version);
  const problems = await validateManifest(manifest);
  if (problems.length) throw new Error(`the app manifest does not pass the Teams schema:\n${problems.join('\n')}`);
  const color = readFileSync(join(appPackageDir, 'color.png'));
  const outline = readFileSync(join(appPackageDir, 'outline.png'));
  const c = pngSize(color), o = pngSize(outline);
  if (c.width !== 192 || c.height !== 192) throw new Error(`appPackage/color.png must be 192×192, it is ${c.width}×${c.height}`);
  if (o.width !== 32 || o.height !== 32) throw new Error(`appPackage/outline.png must be 32×32, it is ${o.width}×${o.height}`);
  const zip = new JSZip();
  zip.file('manifest.json', JSON.stringify(manifest, null, 2));
  zip.file('color.png', color);
  zip.file('outline.png', outline);
  return { manifest, zip: await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' }) };
}

export async function run(argv: string[]): Promise<number> {
  const outIndex = argv.indexOf('--out');
  const configIndex = argv.indexOf('--config');
  const out = outIndex >= 0 ? argv[outIndex + 1] : 'keywarden-app.zip';
  if (!out) {
    console.error('keywarden package: --out needs a file name, e.g. --out keywarden-app.zip');
    return 2;
  }
  const { config } = loadConfig({ path: configIndex >= 0 ? argv[configIndex + 1] : undefined });
  if (!config.bot.appId) console.warn('bot.appId is not set: the package uses a placeholder bot id (fine for a look, not for upload).');
  const { zip } = await buildAppPackage(config);
  writeFileSync(out, zip);
  console.log(`wrote ${out} (${zip.length} bytes): manifest v1.24 for "${config.bot.name}", icons 192×192 and 32×32`);
  return 0;
}
