/**
 * Lossless JSON for Databricks: owner_id / workspace_id / created_by_id are 15–16 digit JSON numbers near or
 * above 2^53 (G1), and Node 20's JSON.parse reviver cannot see the source text. Integer literals with 16 or
 * more digits are quoted before parsing, so they arrive as exact decimal strings.
 */

const BIG_INTEGER = /^-?\d{16,}$/;

export function parseJsonLossless(text: string): unknown {
  let out = '';
  let copiedUpTo = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string literal, honouring escapes, so digits inside strings are left alone.
      i += 1;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) { i += 1; break; } else i += 1;
      }
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i += 1;
      while (i < n && isNumberChar(text.charCodeAt(i))) i += 1;
      const literal = text.slice(start, i);
      if (BIG_INTEGER.test(literal)) {
        out += `${text.slice(copiedUpTo, start)}"${literal}"`;
        copiedUpTo = i;
      }
      continue;
    }
    i += 1;
  }
  return JSON.parse(copiedUpTo === 0 ? text : out + text.slice(copiedUpTo));
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** An id from a response as an exact decimal string (numbers up to 15 digits are exact as doubles). */
export function idString(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}
