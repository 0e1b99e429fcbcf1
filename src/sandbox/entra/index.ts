import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { TokenValidator } from '../auth.js';
import { EmulatorServer } from '../emulator.js';
import { ensureSandboxTls, TEST_CA_DIR, type SandboxTls } from '../tls.js';
import { createGraphHandler } from './graph.js';
import { graphFaultBody } from './graph-shapes.js';
import { EntraDirectory } from './state.js';
import { createTokenEndpointHandler } from './token-endpoint.js';
import { audienceForScope, TokenIssuer } from './tokens.js';

/** Emulated Entra ID: a token endpoint (authority host) and Microsoft Graph, on two HTTPS servers sharing one directory. */

export const SANDBOX_TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

export interface EntraEmulatorOptions {
  clock?: Clock;
  /** Defaults to the sandbox CA in $KEYWARDEN_CA_DIR or .test-ca (what scripts/with-ca.ts trusts). */
  tls?: SandboxTls;
  tenantId?: string;
  /** Verified domain, also accepted in place of the tenant id in token URLs. */
  tenantName?: string;
  /** A password added less than this many ms ago (clock time) is refused at the token endpoint (default 0). */
  propagationDelayMs?: number;
  /** Server-side page cap for Graph collections (default 100, like Graph). */
  graphPageSize?: number;
  /** Access token lifetime (default 3599 s, what Entra answers). */
  tokenLifetimeSeconds?: number;
  /** Fixed ports (default 0 = ephemeral). */
  authorityPort?: number;
  graphPort?: number;
  host?: string;
}

export interface EntraEmulator {
  tenantId: string;
  /** What @azure/identity calls authorityHost, e.g. https://127.0.0.1:PORT. */
  authorityHost: string;
  /** Graph base URL (without /v1.0). */
  graphUrl: string;
  directory: EntraDirectory;
  /** Checks bearer tokens for the other emulators (Databricks, Key Vault, ARM). */
  validator: TokenValidator;
  authority: EmulatorServer;
  graph: EmulatorServer;
  clock: Clock;
  propagationDelayMs: number;
  graphPageSize: number;
  /** Mints a token without a secret (test setup): the app must exist; `scopeOrResource` like "https://vault.azure.net/.default". */
  issueToken(appId: string, scopeOrResource: string): string;
  /** A managed identity's token (what IMDS hands an Azure resource such as a Data Factory) for a resource. */
  issueManagedIdentityToken(objectId: string, resource: string): string;
  close(): Promise<void>;
}

export async function startEntraEmulator(options: EntraEmulatorOptions = {}): Promise<EntraEmulator> {
  const clock = options.clock ?? systemClock;
  const tls = options.tls ?? ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR);
  const tenantId = options.tenantId ?? SANDBOX_TENANT_ID;
  const directory = new EntraDirectory(tenantId, options.tenantName ?? 'contoso.onmicrosoft.com', clock);
  const issuer = new TokenIssuer(tenantId, clock);
  const lifetime = options.tokenLifetimeSeconds ?? 3599;

  const handle = {} as EntraEmulator;
  const authority: EmulatorServer = new EmulatorServer({
    name: 'entra-authority', tls, clock,
    handler: createTokenEndpointHandler({
      directory, issuer, clock, baseUrl: () => authority.url,
      propagationDelayMs: () => handle.propagationDelayMs, tokenLifetimeSeconds: () => lifetime,
    }),
    faultBody: (status) => ({ error: status === 429 ? 'temporarily_unavailable' : 'server_error', error_description: `AADSTS90033: A transient error has occurred (injected ${status}). Please try again.`, error_codes: [90033] }),
  });
  const graph: EmulatorServer = new EmulatorServer({
    name: 'graph', tls, clock,
    handler: createGraphHandler({ directory, validator: issuer, clock, baseUrl: () => graph.url, maxPageSize: () => handle.graphPageSize }),
    faultBody: graphFaultBody,
  });
  const host = options.host ?? '127.0.0.1';
  const authorityHost = await authority.listen(options.authorityPort ?? 0, host);
  let graphUrl: string;
  try {
    graphUrl = await graph.listen(options.graphPort ?? 0, host);
  } catch (err) {
    await authority.close();
    throw err;
  }

  Object.assign(handle, {
    tenantId, authorityHost, graphUrl, directory, validator: issuer, authority, graph, clock,
    propagationDelayMs: options.propagationDelayMs ?? 0,
    graphPageSize: options.graphPageSize ?? 100,
    issueToken(appId: string, scopeOrResource: string): string {
      const sp = directory.servicePrincipalByAppId(appId);
      if (!sp) throw new Error(`no service principal for appId ${appId}`);
      const audience = audienceForScope(scopeOrResource) ?? scopeOrResource;
      return issuer.issue({ appId, spObjectId: sp.id, audience, roles: directory.permissionsOf(appId), lifetimeSeconds: lifetime }).token;
    },
    issueManagedIdentityToken(objectId: string, resource: string): string {
      const mi = directory.managedIdentities.get(objectId);
      if (!mi) throw new Error(`no managed identity with object id ${objectId}`);
      const audience = audienceForScope(resource) ?? directory.apiAudience(resource);
      if (!audience) throw new Error(`AADSTS500011: the resource principal named ${resource} was not found in the tenant`);
      return issuer.issue({ appId: mi.appId, spObjectId: mi.id, audience, lifetimeSeconds: lifetime }).token;
    },
    async close() {
      await Promise.all([authority.close(), graph.close()]);
    },
  } satisfies EntraEmulator);
  return handle;
}

export { EntraDirectory } from './state.js';
export type { DirectoryApplication, DirectoryServicePrincipal, StoredPassword, StoredKey, CredentialTarget } from './state.js';
export { TokenIssuer, DATABRICKS_RESOURCE, GRAPH_RESOURCE, ARM_RESOURCE, KEY_VAULT_RESOURCE } from './tokens.js';
