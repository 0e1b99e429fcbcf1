import type { AdfResource, FactoryDefinitions } from './arm.js';

/**
 * Which linked services, datasets, pipelines and triggers use which Key Vault secret (reference §6.3).
 * Pure: works on the raw ARM JSON of one factory.
 */

export interface ConfiguredVault {
  name: string;
  url: string;
}

export interface SecretUse {
  linkedService: string;
  /** Where in the linked service the reference sits, e.g. "typeProperties.accessToken". */
  property: string;
  keyVaultLinkedService: string;
  /** Configured vault name, when the KV linked service's baseUrl matches a configured vault URL. */
  vault?: string;
  /** The KV linked service's baseUrl when it is a literal. */
  vaultUrl?: string;
  /** The secret name, or the expression text when it is dynamic. */
  secretName: string;
  secretVersion?: string;
  /** secretName or the vault URL is an expression/parameter: "possible (dynamic)". */
  dynamic: boolean;
  /** secretVersion is set: a rotation will not reach this consumer. */
  pinnedVersion: boolean;
  datasets: string[];
  pipelines: string[];
  triggers: string[];
}

type Json = unknown;

/** "https://KV.vault.azure.net/" and "https://kv.vault.azure.net" are the same vault. */
export function normalizeVaultUrl(url: string): string | undefined {
  try {
    const u = new URL(url.trim());
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`.toLowerCase();
  } catch {
    return undefined;
  }
}

function isObject(v: Json): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An ADF Expression `{ value: "@…", type: "Expression" }` or a string starting with "@" (not "@@"). */
function isExpression(v: Json): boolean {
  if (isObject(v)) return v.type === 'Expression' || typeof v.value === 'string';
  return typeof v === 'string' && v.startsWith('@') && !v.startsWith('@@');
}

function expressionText(v: Json): string {
  if (isObject(v) && typeof v.value === 'string') return v.value;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Visits every object in a JSON tree with its dotted path; `visit` returning true stops the descent below it. */
function walk(node: Json, path: string, visit: (obj: Record<string, unknown>, path: string) => boolean | void): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => walk(item, `${path}[${i}]`, visit));
    return;
  }
  if (!isObject(node)) return;
  if (visit(node, path) === true) return;
  for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k, visit);
}

/** Names referenced as `{ referenceName, type }` of one reference type anywhere in a resource. */
function references(resource: AdfResource, type: 'LinkedServiceReference' | 'DatasetReference' | 'PipelineReference'): Set<string> {
  const out = new Set<string>();
  walk(resource.properties, '', (obj) => {
    if (obj.type === type && typeof obj.referenceName === 'string') out.add(obj.referenceName);
  });
  return out;
}

export function findSecretUses(defs: FactoryDefinitions, vaults: ConfiguredVault[]): SecretUse[] {
  const vaultByUrl = new Map(vaults.map((v) => [normalizeVaultUrl(v.url), v.name] as const));

  // 1. Key Vault linked services and the vault each points at.
  const kvLinkedServices = new Map<string, { vault?: string; vaultUrl?: string; dynamic: boolean }>();
  for (const ls of defs.linkedServices) {
    if (ls.properties.type !== 'AzureKeyVault') continue;
    const baseUrl = (ls.properties.typeProperties as Record<string, unknown> | undefined)?.baseUrl;
    if (typeof baseUrl === 'string' && !isExpression(baseUrl)) {
      kvLinkedServices.set(ls.name, { vault: vaultByUrl.get(normalizeVaultUrl(baseUrl)), vaultUrl: baseUrl, dynamic: false });
    } else {
      kvLinkedServices.set(ls.name, { dynamic: true, vaultUrl: baseUrl === undefined ? undefined : expressionText(baseUrl) });
    }
  }

  // 2. Secret references inside every other linked service.
  const uses: Array<Omit<SecretUse, 'datasets' | 'pipelines' | 'triggers'>> = [];
  for (const ls of defs.linkedServices) {
    walk(ls.properties, '', (obj, path) => {
      if (obj.type !== 'AzureKeyVaultSecret') return false;
      const store = isObject(obj.store) && typeof obj.store.referenceName === 'string' ? obj.store.referenceName : undefined;
      const kv = store ? kvLinkedServices.get(store) : undefined;
      if (!store || !kv) return true;
      const dynamicName = isExpression(obj.secretName) || typeof obj.secretName !== 'string';
      const version = obj.secretVersion === undefined || obj.secretVersion === null || obj.secretVersion === '' ? undefined : obj.secretVersion;
      uses.push({
        linkedService: ls.name, property: path, keyVaultLinkedService: store, vault: kv.vault, vaultUrl: kv.vaultUrl,
        secretName: dynamicName ? expressionText(obj.secretName) : (obj.secretName as string),
        secretVersion: version === undefined ? undefined : isExpression(version) ? expressionText(version) : String(version),
        dynamic: dynamicName || kv.dynamic, pinnedVersion: version !== undefined,
      });
      return true;
    });
  }

  // 3–5. Datasets, pipelines (through ExecutePipeline too) and triggers that reach each affected linked service.
  const datasetsByLs = new Map<string, string[]>();
  for (const ds of defs.datasets) {
    for (const lsName of references(ds, 'LinkedServiceReference')) datasetsByLs.set(lsName, [...(datasetsByLs.get(lsName) ?? []), ds.name]);
  }
  const pipelineRefs = new Map(defs.pipelines.map((p) => [p.name, {
    linkedServices: references(p, 'LinkedServiceReference'), datasets: references(p, 'DatasetReference'), pipelines: references(p, 'PipelineReference'),
  }]));
  const triggersByPipeline = new Map<string, string[]>();
  for (const t of defs.triggers) {
    for (const p of references(t, 'PipelineReference')) triggersByPipeline.set(p, [...(triggersByPipeline.get(p) ?? []), t.name]);
  }

  return uses.map((use) => {
    const datasets = datasetsByLs.get(use.linkedService) ?? [];
    const affected = new Set<string>();
    for (const [name, refs] of pipelineRefs) {
      if (refs.linkedServices.has(use.linkedService) || datasets.some((d) => refs.datasets.has(d))) affected.add(name);
    }
    // A pipeline that executes an affected pipeline is affected too.
    for (let grew = true; grew;) {
      grew = false;
      for (const [name, refs] of pipelineRefs) {
        if (!affected.has(name) && [...refs.pipelines].some((p) => affected.has(p))) {
          affected.add(name);
          grew = true;
        }
      }
    }
    const pipelines = [...affected].sort();
    const triggers = [...new Set(pipelines.flatMap((p) => triggersByPipeline.get(p) ?? []))].sort();
    return { ...use, datasets: [...datasets].sort(), pipelines, triggers };
  });
}
