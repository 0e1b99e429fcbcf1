import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { registerSecret, isSecretKey } from '../logging/redact.js';
import { configSchema, type KeywardenConfig } from './schema.js';
import { issueToProblems, keyPath, unknownKeyProblems } from './problems.js';

export type Env = Record<string, string | undefined>;

export interface LoadConfigOptions {
  /** Config file; else KEYWARDEN_CONFIG; else ./keywarden.yaml, ./keywarden.yml or ./keywarden.json in cwd. */
  path?: string;
  /** Environment for `env:NAME` values and the Microsoft* overrides (default process.env). */
  env?: Env;
  /** Where to look for ./keywarden.yaml (default process.cwd()). */
  cwd?: string;
}

export interface LoadedConfig {
  config: KeywardenConfig;
  /** 'none' means no file was found: the sandbox with defaults. */
  source: 'file' | 'none';
  /** Absolute path of the file that was read. */
  path?: string;
}

/** Invalid configuration. Each problem is one line: `<key.path>: <what is wrong> — <how to fix>`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  readonly statusCode = 400;
  constructor(readonly problems: string[], readonly path?: string) {
    super(`Keywarden configuration${path ? ` (${path})` : ''} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export const DEFAULT_CONFIG_FILES = ['keywarden.yaml', 'keywarden.yml', 'keywarden.json'] as const;

/** Bot Framework's conventional env vars; they override the file so secrets can stay out of it. */
export const BOT_ENV_OVERRIDES = [
  { env: 'MicrosoftAppId', key: 'appId' },
  { env: 'MicrosoftAppPassword', key: 'appPassword' },
  { env: 'MicrosoftAppTenantId', key: 'tenantId' },
  { env: 'MicrosoftAppType', key: 'appType' },
] as const;

const ENV_REF = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

function findConfigFile(options: LoadConfigOptions, env: Env): { path: string; explicit: string } | undefined {
  const cwd = options.cwd ?? process.cwd();
  if (options.path) return { path: resolve(cwd, options.path), explicit: 'the --config path' };
  if (env.KEYWARDEN_CONFIG) return { path: resolve(cwd, env.KEYWARDEN_CONFIG), explicit: 'KEYWARDEN_CONFIG' };
  for (const name of DEFAULT_CONFIG_FILES) {
    const candidate = resolve(cwd, name);
    if (existsSync(candidate)) return { path: candidate, explicit: '' };
  }
  return undefined;
}

function parseFile(path: string, explicit: string): unknown {
  if (!existsSync(path)) {
    throw new ConfigError([`config file: ${path} does not exist — create it (see keywarden.example.yaml) or fix ${explicit}`], path);
  }
  if (statSync(path).isDirectory()) {
    throw new ConfigError([`config file: ${path} is a directory — point ${explicit || 'the config path'} at a .yaml or .json file`], path);
  }
  const text = readFileSync(path, 'utf8');
  if (extname(path).toLowerCase() === '.json') {
    try {
      return text.trim() === '' ? {} : JSON.parse(text);
    } catch (err) {
      throw new ConfigError([`config file: not valid JSON (${(err as Error).message}) — fix the syntax or use YAML`], path);
    }
  }
  // YAML is a superset of JSON, so any other extension is read as YAML.
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const at = e.linePos?.[0];
      return `config file${at ? ` line ${at.line} column ${at.col}` : ''}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')} — fix the YAML syntax there`;
    }), path);
  }
  return doc.toJS() ?? {};
}

/** Replaces `env:NAME` strings from the environment; secret-named keys' values are registered for redaction. */
function substituteEnv(value: unknown, env: Env, problems: string[], path: (string | number)[] = []): unknown {
  if (typeof value === 'string') {
    const match = ENV_REF.exec(value.trim());
    if (!match) return value;
    const name = match[1]!;
    const resolved = env[name];
    if (resolved === undefined || resolved === '') {
      problems.push(`${keyPath(path)}: environment variable ${name} is not set — export ${name} or change the value in the config file`);
      return undefined;
    }
    const key = path[path.length - 1];
    if (typeof key === 'string' && isSecretKey(key)) registerSecret(resolved);
    return resolved;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

function applyEnvOverrides(raw: Record<string, unknown>, env: Env, problems: string[]): void {
  const bot = (raw.bot !== null && typeof raw.bot === 'object' && !Array.isArray(raw.bot) ? raw.bot : {}) as Record<string, unknown>;
  let touched = false;
  for (const { env: name, key } of BOT_ENV_OVERRIDES) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    bot[key] = v;
    touched = true;
  }
  if (touched) raw.bot = bot;
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      problems.push(`server.port: PORT=${JSON.stringify(env.PORT)} is not a port number — set PORT to 0..65535 or unset it`);
    } else {
      const server = (raw.server !== null && typeof raw.server === 'object' && !Array.isArray(raw.server) ? raw.server : {}) as Record<string, unknown>;
      raw.server = { ...server, port };
    }
  }
}

function problemKey(problem: string): string {
  return problem.slice(0, problem.indexOf(': '));
}

/** Production never runs anonymous: Bot Framework credentials and a tenant are required. */
function productionProblems(config: KeywardenConfig): string[] {
  if (config.mode !== 'production') return [];
  const problems: string[] = [];
  const { bot } = config;
  if (!bot.appId) {
    problems.push('bot.appId: required in production mode — set bot.appId (the Azure Bot\'s Microsoft App ID) or the MicrosoftAppId environment variable');
  }
  if (!bot.appPassword && bot.appType !== 'UserAssignedMSI') {
    problems.push('bot.appPassword: required in production mode unless bot.appType is UserAssignedMSI — set MicrosoftAppPassword in the environment (or bot.appPassword: env:MicrosoftAppPassword), or use a managed identity with bot.appType: UserAssignedMSI (MicrosoftAppType)');
  }
  if (!bot.tenantId) {
    problems.push('bot.tenantId: required in production mode — set bot.tenantId (your Entra tenant id) or the MicrosoftAppTenantId environment variable');
  }
  return problems;
}

/** Pipeline callers must point at what the config knows (vaults and workspaces are filled in later in the sandbox). */
function pipelineProblems(config: KeywardenConfig): string[] {
  const { callers, audiences } = config.pipelines;
  if (callers.length === 0) return [];
  const problems: string[] = [];
  if (audiences.length === 0) problems.push('pipelines.audiences: required when pipelines.callers is set — add Keywarden\'s application ID URI, e.g. ["api://keywarden"]');
  const seen = new Set<string>();
  callers.forEach((c, i) => {
    const at = `pipelines.callers[${i}]`;
    if (seen.has(c.objectId.toLowerCase())) problems.push(`${at}.objectId: ${c.objectId} is listed twice — keep one entry per identity`);
    seen.add(c.objectId.toLowerCase());
    if (c.limits.maxHours > config.workflows.jit.maxHours) problems.push(`${at}.limits.maxHours: ${c.limits.maxHours} is above workflows.jit.maxHours (${config.workflows.jit.maxHours}) — lower it or raise workflows.jit.maxHours`);
    if (config.mode !== 'production') return;
    for (const v of c.vaults) if (!config.keyVault.vaults.some((x) => x.name === v)) problems.push(`${at}.vaults: ${v} is not in keyVault.vaults — add the vault there or remove it here`);
    for (const w of c.workspaces) if (!config.databricks.workspaces.some((x) => x.name === w)) problems.push(`${at}.workspaces: ${w} is not in databricks.workspaces — add the workspace there or remove it here`);
  });
  return problems;
}

function registerConfigSecrets(config: KeywardenConfig): void {
  if (config.bot.appPassword) registerSecret(config.bot.appPassword);
  if (config.azure.credential.clientSecret) registerSecret(config.azure.credential.clientSecret);
  for (const ws of config.databricks.workspaces) if (ws.auth.type === 'pat' && ws.auth.token) registerSecret(ws.auth.token);
}

/**
 * Loads and validates the configuration. Throws ConfigError listing every problem at once;
 * with no file anywhere, returns the sandbox defaults with source 'none'.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const found = findConfigFile(options, env);
  const problems: string[] = [];
  let raw: unknown = {};
  if (found) {
    raw = parseFile(found.path, found.explicit);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(['config file: the top level must be a mapping of keys (mode:, bot:, ...) — see keywarden.example.yaml'], found.path);
    }
    raw = substituteEnv(raw, env, problems);
  }
  const input = raw as Record<string, unknown>;
  applyEnvOverrides(input, env, problems);
  problems.push(...unknownKeyProblems(configSchema, input));
  const parsed = configSchema.safeParse(input);
  // A key whose env var is missing already has its problem line; its knock-on effects (on the key, its
  // children or its parents, e.g. "set exactly one of ...") would only confuse.
  const envKeys = problems.map(problemKey);
  const related = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || a.startsWith(`${b}[`) || b.startsWith(`${a}.`) || b.startsWith(`${a}[`);
  const later = parsed.success ? [...productionProblems(parsed.data), ...pipelineProblems(parsed.data)] : parsed.error.issues.flatMap(issueToProblems);
  problems.push(...later.filter((p) => !envKeys.some((k) => related(problemKey(p), k))));
  const unique = [...new Set(problems)];
  if (unique.length > 0 || !parsed.success) throw new ConfigError(unique, found?.path);
  registerConfigSecrets(parsed.data);
  return found ? { config: parsed.data, source: 'file', path: found.path } : { config: parsed.data, source: 'none' };
}
