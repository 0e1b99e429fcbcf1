import { z } from 'zod';
import { redactText } from '../logging/redact.js';

/** Turns zod issues and unknown keys into one-line problems: `<key.path>: <what is wrong> — <how to fix>`. */

export function keyPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(top level)';
}

/** Values are shown only when they cannot be secrets (enums, short words), and even then redacted. */
function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return JSON.stringify(redactText(String(text).slice(0, 40)));
}

function typeHint(expected: string): string {
  switch (expected) {
    case 'number': return 'write a number without quotes, e.g. 3978';
    case 'boolean': return 'write true or false without quotes';
    case 'string': return 'write a text value (quote it if it looks like a number)';
    case 'array': return 'write a list (YAML "- item" lines or JSON [ ... ])';
    case 'object': return 'write a mapping of keys to values';
    default: return `change it to a ${expected}`;
  }
}

function unionProblems(issue: z.ZodInvalidUnionIssue, path: string): string[] {
  const branches = issue.unionErrors.map((e) => e.issues);
  // A branch that failed on its `type` literal is the wrong branch, not the user's mistake.
  const wrongType = (issues: z.ZodIssue[]) => issues.some((i) => i.code === z.ZodIssueCode.invalid_literal && i.path[i.path.length - 1] === 'type');
  const candidates = branches.filter((b) => !wrongType(b));
  if (candidates.length === 0) {
    const allowed = branches.flatMap((b) => b.filter((i) => i.code === z.ZodIssueCode.invalid_literal).map((i) => JSON.stringify((i as z.ZodInvalidLiteralIssue).expected)));
    return [`${path}.type: unknown type — use one of ${[...new Set(allowed)].join(', ')}`];
  }
  const best = candidates.reduce((a, b) => (b.length < a.length ? b : a));
  return best.flatMap(issueToProblems);
}

export function issueToProblems(issue: z.ZodIssue): string[] {
  const path = keyPath(issue.path);
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === 'undefined') return [`${path}: is required — add ${path} to the config file`];
      if (issue.expected.includes(' | ')) {
        // z.enum reports a wrong-typed value as invalid_type with the options joined by " | ".
        return [`${path}: expected one of ${issue.expected.replace(/'/g, '').split(' | ').join(', ')}, got ${issue.received} — use one of those values`];
      }
      return [`${path}: expected ${issue.expected}, got ${issue.received} — ${typeHint(issue.expected)}`];
    case z.ZodIssueCode.invalid_enum_value:
      return [`${path}: ${shown(issue.received)} is not allowed — use one of: ${issue.options.map(String).join(', ')}`];
    case z.ZodIssueCode.invalid_literal:
      return [`${path}: must be ${JSON.stringify(issue.expected)} — set it to ${JSON.stringify(issue.expected)}`];
    case z.ZodIssueCode.invalid_union:
      return unionProblems(issue, path);
    case z.ZodIssueCode.too_small:
      if (issue.type === 'array') return [`${path}: needs at least ${issue.minimum} item(s) — add entries or remove the key to use the default`];
      if (issue.type === 'string') return [`${path}: is empty — give it a value or remove the key`];
      return [`${path}: must be ${issue.inclusive ? 'at least' : 'more than'} ${issue.minimum} — raise the value`];
    case z.ZodIssueCode.too_big:
      return [`${path}: must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum} — lower the value`];
    case z.ZodIssueCode.not_multiple_of:
      return [`${path}: must be a multiple of ${issue.multipleOf} — adjust the value`];
    case z.ZodIssueCode.unrecognized_keys:
      return issue.keys.map((k) => `${keyPath([...issue.path, k])}: unknown key — remove it (see keywarden.example.yaml for the valid keys)`);
    case z.ZodIssueCode.invalid_string:
      // Our schema's string messages already say how to fix (e.g. 'must be a full URL such as https://host:port').
      return [`${path}: invalid value — ${issue.message.replace(/^Invalid\b/, 'use a valid')}`];
    default:
      return [`${path}: invalid value — ${issue.message}`];
  }
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Peels defaults, optionals and refinements to reach the object/array shape underneath. */
function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else return s;
  }
}

/** zod drops unknown keys silently; a typo like `aprovals:` must not silently disable approvals. */
export function unknownKeyProblems(schema: z.ZodTypeAny, value: unknown, path: (string | number)[] = []): string[] {
  const s = unwrap(schema);
  if (s instanceof z.ZodArray && Array.isArray(value)) {
    return value.flatMap((item, i) => unknownKeyProblems(s.element as z.ZodTypeAny, item, [...path, i]));
  }
  if (!(s instanceof z.ZodObject) || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const shape = s.shape as Record<string, z.ZodTypeAny>;
  const known = Object.keys(shape);
  const problems: string[] = [];
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const childSchema = shape[key];
    if (childSchema) {
      problems.push(...unknownKeyProblems(childSchema, child, [...path, key]));
      continue;
    }
    const guess = closest(key, known);
    const where = path.length ? keyPath(path) : 'the top level';
    problems.push(guess
      ? `${keyPath([...path, key])}: unknown key — did you mean "${guess}"?`
      : `${keyPath([...path, key])}: unknown key — remove it; valid keys at ${where} are ${known.join(', ')}`);
  }
  return problems;
}
