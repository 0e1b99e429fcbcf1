/**
 * restify 11 reads process.binding('http_parser') when it loads, and Node prints DEP0111 for it on every start.
 * We cannot change restify's code, so this one deprecation (and nothing else) is dropped for our processes;
 * Node's --disable-warning=DEP0111 does the same, but only when passed on the command line.
 */

const SILENCED = new Set(['DEP0111']);
let installed = false;

function warningCode(args: unknown[]): string | undefined {
  const [typeOrOptions, code] = args;
  if (typeOrOptions && typeof typeOrOptions === 'object') return (typeOrOptions as { code?: string }).code; // emitWarning(w, { code })
  return typeof code === 'string' ? code : undefined; // emitWarning(w, type, code)
}

export function silenceKnownDeprecations(): void {
  if (installed) return;
  installed = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = warning instanceof Error ? (warning as Error & { code?: string }).code : warningCode(rest);
    if (code && SILENCED.has(code)) return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

silenceKnownDeprecations();
