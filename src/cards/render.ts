import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Templating from 'adaptivecards-templating';
import type { AdaptiveCard } from '../domain/chat.js';

export type { AdaptiveCard } from '../domain/chat.js';

export interface RenderCardOptions {
  /** Folder of <name>.json templates (default: cards/ at the package root). Tests point this at fixtures. */
  templatesDir?: string;
}

export type CardErrorCode = 'CARD_TEMPLATE_MISSING' | 'CARD_TEMPLATE_INVALID' | 'CARD_UNBOUND';

/** A card could not be built; the message names the template and the fix, never data values. */
export class CardError extends Error {
  override readonly name = 'CardError';
  readonly statusCode = 500;
  constructor(message: string, readonly code: CardErrorCode) {
    super(message);
  }
}

/** Teams refuses messages over ~28 KB; we budget 25 KB per message. */
export const CARD_SIZE_BUDGET_BYTES = 25 * 1024;

const templates = new Map<string, Templating.Template>();
let templating: typeof Templating | undefined;
/** Loaded on the first card: its expression parser takes ~0.4 s to load, which a process that renders none skips. */
const ACData = (): typeof Templating => (templating ??= createRequire(import.meta.url)('adaptivecards-templating') as typeof Templating);
let packageRoot: string | undefined;

/** Walks up to the nearest package.json, so it works from src/cards (tsx) and dist/src/cards (built). */
export function findPackageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new CardError(`cannot find the Keywarden package root above ${from} — run Keywarden from its package folder`, 'CARD_TEMPLATE_MISSING');
    dir = parent;
  }
}

export function defaultCardsDir(): string {
  packageRoot ??= findPackageRoot();
  return join(packageRoot, 'cards');
}

function loadTemplate(name: string, dir: string): Templating.Template {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes('..')) {
    throw new CardError(`card name "${name}" is not valid — use the template's file name without .json, e.g. "help"`, 'CARD_TEMPLATE_MISSING');
  }
  const file = resolve(dir, `${name}.json`);
  const cached = templates.get(file);
  if (cached) return cached;
  if (!existsSync(file)) {
    throw new CardError(`card template "${name}" not found at ${file} — add cards/${name}.json or fix the name`, 'CARD_TEMPLATE_MISSING');
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CardError(`card template ${file} is not valid JSON (${(err as Error).message}) — fix the template`, 'CARD_TEMPLATE_INVALID');
  }
  if (json === null || typeof json !== 'object' || (json as { type?: unknown }).type !== 'AdaptiveCard') {
    throw new CardError(`card template ${file} must be an object with "type": "AdaptiveCard" — fix the template`, 'CARD_TEMPLATE_INVALID');
  }
  const template = new (ACData().Template)(json);
  templates.set(file, template);
  return template;
}

/** Expands one template with `$root = data`; the same data always gives the same card. */
function expand(template: Templating.Template, data: object): { card: unknown; unbound: string[] } {
  const unbound: string[] = [];
  const { GlobalSettings } = ACData();
  const previous = GlobalSettings.getUndefinedFieldValueSubstitutionString;
  // The engine leaves `${field}` text for missing data; record which so the caller gets a clear error.
  GlobalSettings.getUndefinedFieldValueSubstitutionString = (path: string) => {
    unbound.push(path);
    return undefined;
  };
  try {
    return { card: template.expand({ $root: data }), unbound };
  } finally {
    GlobalSettings.getUndefinedFieldValueSubstitutionString = previous;
  }
}

/** Renders cards/<name>.json with `data`. Throws CardError when the template is missing or a binding is left unfilled. */
export function renderCard(name: string, data: object, options: RenderCardOptions = {}): AdaptiveCard {
  const template = loadTemplate(name, options.templatesDir ?? defaultCardsDir());
  const { card, unbound } = expand(template, data);
  const missing = [...new Set(unbound)];
  if (missing.length > 0) {
    throw new CardError(`card "${name}" has no data for ${missing.map((p) => `\${${p}}`).join(', ')} — pass these fields to renderCard("${name}", data)`, 'CARD_UNBOUND');
  }
  // Data values may legitimately contain "${" (the engine never re-evaluates them); the template must not.
  if (JSON.stringify(card).includes('${') && !JSON.stringify(data).includes('${')) {
    throw new CardError(`card "${name}" still contains an unexpanded \${...} binding — check the template's expressions`, 'CARD_UNBOUND');
  }
  return card as AdaptiveCard;
}

/** Serialized size in bytes (UTF-8), to keep a message under the Teams limit. */
export function cardSize(card: unknown): number {
  return Buffer.byteLength(JSON.stringify(card), 'utf8');
}

/** Forget cached templates (tests that rewrite a template file). */
export function clearCardCache(): void {
  templates.clear();
}
