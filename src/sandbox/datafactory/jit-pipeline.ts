import { readFileSync } from 'node:fs';
import type { DataFactoryEmulator } from './index.js';
import { SANDBOX_RESOURCE_GROUP, SANDBOX_SUBSCRIPTION_ID } from './seed.js';

/**
 * The sandbox's second factory, adf-analytics: it runs the pipeline docs/adf/keywarden-jit-pipeline.json (the very
 * JSON the docs show), which asks Keywarden for a JIT PAT + pool over its managed identity. Kept apart from adf-prod
 * so the scanned estate of docs/sandbox-estate.md stays as it is.
 */

export const JIT_FACTORY = 'adf-analytics';
/** The factory's system-assigned managed identity (its "principalId"): the caller Keywarden allow-lists. */
export const JIT_FACTORY_PRINCIPAL_ID = 'f0f0f0f0-0000-4000-8000-0000000ad0a1';
export const JIT_FACTORY_APP_ID = 'f1f1f1f1-0000-4000-8000-0000000ad0a1';
export const JIT_PIPELINE = 'keywarden-jit-notebook';
/** Keywarden's application ID URI in the sandbox tenant (the `resource` of the pipeline's MSI authentication). */
export const KEYWARDEN_API_URI = 'api://keywarden';
/** The prefix the pipeline gives its secret names ("adf-jit-<run id>-token"). */
export const JIT_SECRET_PREFIX = 'adf-jit-';

// From src/sandbox/datafactory, or from dist/src/sandbox/datafactory in the build (one level deeper).
const docFile = (name: string) => new URL(`${import.meta.url.includes('/dist/') ? '../' : ''}../../../docs/adf/${name}`, import.meta.url);
const load = (name: string) => JSON.parse(readFileSync(docFile(name), 'utf8')) as { name: string; properties: Record<string, unknown> };

export function seedJitPipelineFactory(handle: DataFactoryEmulator, options: { vaultUrl: string }): { factory: string; pipeline: string; principalId: string } {
  const { state } = handle;
  const factory = state.addFactory({ subscriptionId: SANDBOX_SUBSCRIPTION_ID, resourceGroup: SANDBOX_RESOURCE_GROUP, name: JIT_FACTORY, principalId: JIT_FACTORY_PRINCIPAL_ID });
  const kv = load('LS_KeyVault_Prod.json');
  state.put(factory, 'linkedservices', kv.name, { ...kv.properties, typeProperties: { baseUrl: options.vaultUrl.endsWith('/') ? options.vaultUrl : `${options.vaultUrl}/` } });
  const ls = load('LS_Databricks_JIT.json');
  state.put(factory, 'linkedservices', ls.name, ls.properties);
  const pipeline = load('keywarden-jit-pipeline.json');
  state.put(factory, 'pipelines', pipeline.name, pipeline.properties);
  return { factory: JIT_FACTORY, pipeline: pipeline.name, principalId: JIT_FACTORY_PRINCIPAL_ID };
}
