import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';

/** docs/configuration.md must name every key the schema accepts, so the doc cannot drift from the code. */

const DOC = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

/** Peels defaults, optionals and refinements to reach the shape underneath. */
function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else return s;
  }
}

/** Every leaf key path: objects recurse with ".", arrays of objects with "[]", union branches merge. */
function leafKeyPaths(schema: z.ZodTypeAny, prefix = ''): string[] {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodTypeAny>)
      .flatMap(([key, child]) => leafKeyPaths(child, prefix ? `${prefix}.${key}` : key));
  }
  if (s instanceof z.ZodArray) {
    const element = unwrap(s.element as z.ZodTypeAny);
    return element instanceof z.ZodObject || element instanceof z.ZodUnion ? leafKeyPaths(element, `${prefix}[]`) : [prefix];
  }
  if (s instanceof z.ZodUnion) {
    const options = s.options as z.ZodTypeAny[];
    const objectBranches = options.filter((o) => unwrap(o) instanceof z.ZodObject);
    if (objectBranches.length === 0) return [prefix];
    return [...new Set(objectBranches.flatMap((o) => leafKeyPaths(o, prefix)))];
  }
  return [prefix];
}

describe('docs/configuration.md', () => {
  const doc = readFileSync(DOC, 'utf8');
  const paths = leafKeyPaths(configSchema);

  it('walks a realistic number of keys from the schema (the walker itself works)', () => {
    expect(paths).toContain('mode');
    expect(paths).toContain('databricks.workspaces[].auth.keyVaultSecret');
    expect(paths).toContain('policy.maxLifetimeDays.databricks-pat');
    expect(paths.length).toBeGreaterThan(80);
  });

  it('documents every leaf key of the config schema as `key.path`', () => {
    const missing = paths.filter((p) => !doc.includes(`\`${p}\``));
    expect(missing, `add these keys to docs/configuration.md (in backticks, with type, default and meaning): ${missing.join(', ')}`).toEqual([]);
  });

  it('documents the environment variables the loader reads', () => {
    for (const name of ['MicrosoftAppId', 'MicrosoftAppPassword', 'MicrosoftAppTenantId', 'MicrosoftAppType', 'KEYWARDEN_CONFIG', 'PORT', 'env:NAME']) {
      expect(doc, `docs/configuration.md should explain ${name}`).toContain(name);
    }
    expect(doc).toContain('keywarden.example.yaml');
  });
});
