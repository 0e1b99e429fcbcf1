/**
 * The part of Data Factory's expression language the emulated pipelines use: "@fn(args).prop['key'][0]" expressions,
 * "@{…}" string interpolation, {"value": "…", "type": "Expression"} objects, and a handful of functions (pipeline,
 * activity, variables, linkedService, concat, equals, not, and, or, if, coalesce, string, int, json, toLower,
 * contains, empty, greater, less, utcNow). "@@" escapes a literal "@".
 */

export interface ExpressionScope {
  pipeline: Record<string, unknown>;
  activity(name: string): unknown;
  variables(name: string): unknown;
  linkedService?: Record<string, unknown>;
  now(): number;
}

export class ExpressionError extends Error {}

type Token = { t: 'id' | 'str' | 'num' | 'punct'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i += 1; continue; }
    if ('(),.[]'.includes(c)) { out.push({ t: 'punct', v: c }); i += 1; continue; }
    if (c === "'") {
      let s = '';
      i += 1;
      for (;;) {
        if (i >= src.length) throw new ExpressionError(`unterminated string in "${src}"`);
        if (src[i] === "'" && src[i + 1] === "'") { s += "'"; i += 2; continue; }
        if (src[i] === "'") { i += 1; break; }
        s += src[i];
        i += 1;
      }
      out.push({ t: 'str', v: s });
      continue;
    }
    const num = /^-?\d+(?:\.\d+)?/.exec(src.slice(i));
    if (num) { out.push({ t: 'num', v: num[0] }); i += num[0].length; continue; }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) { out.push({ t: 'id', v: id[0] }); i += id[0].length; continue; }
    throw new ExpressionError(`unexpected "${c}" in "${src}"`);
  }
  return out;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function call(name: string, args: unknown[], scope: ExpressionScope): unknown {
  switch (name.toLowerCase()) {
    case 'pipeline': return scope.pipeline;
    case 'activity': return scope.activity(str(args[0]));
    case 'variables': return scope.variables(str(args[0]));
    case 'linkedservice': return scope.linkedService ?? {};
    case 'concat': return args.map(str).join('');
    case 'equals': return str(args[0]).toLowerCase() === str(args[1]).toLowerCase() && typeof args[0] === typeof args[1] ? true : args[0] === args[1];
    case 'not': return !args[0];
    case 'and': return args.every(Boolean);
    case 'or': return args.some(Boolean);
    case 'if': return args[0] ? args[1] : args[2];
    case 'coalesce': return args.find((a) => a !== null && a !== undefined);
    case 'string': return str(args[0]);
    case 'int': return Number.parseInt(str(args[0]), 10);
    case 'json': return JSON.parse(str(args[0])) as unknown;
    case 'tolower': return str(args[0]).toLowerCase();
    case 'contains': return typeof args[0] === 'string' ? args[0].includes(str(args[1])) : Array.isArray(args[0]) ? args[0].includes(args[1]) : Boolean(args[0] && typeof args[0] === 'object' && str(args[1]) in (args[0] as object));
    case 'empty': return args[0] === null || args[0] === undefined || args[0] === '' || (Array.isArray(args[0]) && args[0].length === 0);
    case 'greater': return Number(args[0]) > Number(args[1]);
    case 'less': return Number(args[0]) < Number(args[1]);
    case 'utcnow': return new Date(scope.now()).toISOString();
    default: throw new ExpressionError(`the emulator does not know the function ${name}()`);
  }
}

function member(value: unknown, key: string | number): unknown {
  if (value === null || value === undefined) throw new ExpressionError(`cannot read "${key}" of ${value === null ? 'null' : 'undefined'}`);
  if (typeof value !== 'object') throw new ExpressionError(`cannot read "${key}" of a ${typeof value}`);
  const obj = value as Record<string, unknown>;
  if (typeof key === 'string' && !(key in obj)) {
    // ADF property names are case-insensitive.
    const found = Object.keys(obj).find((k) => k.toLowerCase() === key.toLowerCase());
    if (found === undefined) throw new ExpressionError(`the property "${key}" does not exist (have: ${Object.keys(obj).join(', ') || 'none'})`);
    return obj[found];
  }
  return obj[key as string];
}

/** Evaluates one expression (without its leading "@"). */
export function evaluateExpression(src: string, scope: ExpressionScope): unknown {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = () => tokens[pos];
  const expect = (v: string) => {
    const t = tokens[pos];
    if (!t || t.v !== v) throw new ExpressionError(`expected "${v}" in "${src}"`);
    pos += 1;
  };
  const primary = (): unknown => {
    const t = tokens[pos++];
    if (!t) throw new ExpressionError(`unexpected end of "${src}"`);
    let value: unknown;
    if (t.t === 'str') value = t.v;
    else if (t.t === 'num') value = Number(t.v);
    else if (t.t === 'id' && ['true', 'false', 'null'].includes(t.v)) value = t.v === 'null' ? null : t.v === 'true';
    else if (t.t === 'id') {
      expect('(');
      const args: unknown[] = [];
      if (peek()?.v !== ')') {
        for (;;) {
          args.push(primary());
          if (peek()?.v === ',') { pos += 1; continue; }
          break;
        }
      }
      expect(')');
      value = call(t.v, args, scope);
    } else throw new ExpressionError(`unexpected "${t.v}" in "${src}"`);
    for (;;) {
      const n = peek();
      if (n?.v === '.') {
        pos += 1;
        const id = tokens[pos++];
        if (!id || id.t !== 'id') throw new ExpressionError(`expected a property name in "${src}"`);
        value = member(value, id.v);
      } else if (n?.v === '[') {
        pos += 1;
        const key = primary();
        expect(']');
        value = member(value, typeof key === 'number' ? key : str(key));
      } else return value;
    }
  };
  const value = primary();
  if (pos !== tokens.length) throw new ExpressionError(`unexpected "${tokens[pos]!.v}" in "${src}"`);
  return value;
}

/** Resolves a JSON value from a pipeline definition: expressions, interpolations, and nested objects/arrays. */
export function resolveValue(value: unknown, scope: ExpressionScope): unknown {
  if (typeof value === 'string') {
    if (value.startsWith('@@')) return value.slice(1);
    if (value.startsWith('@') && !value.startsWith('@{')) return evaluateExpression(value.slice(1), scope);
    if (value.includes('@{')) return value.replace(/@\{([^}]*)\}/g, (_m, e: string) => str(evaluateExpression(e, scope)));
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, scope));
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (obj.type === 'Expression' && typeof obj.value === 'string') return resolveValue(obj.value.startsWith('@') ? obj.value : `@${obj.value}`, scope);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, resolveValue(v, scope)]));
  }
  return value;
}
