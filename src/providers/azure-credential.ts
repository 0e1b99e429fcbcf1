import { existsSync } from 'node:fs';
import type { TokenCredential } from '@azure/core-auth';
import {
  AzureAuthorityHosts, ClientCertificateCredential, ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';
import type { KeywardenConfig } from '../config/schema.js';
import { registerSecret } from '../logging/redact.js';

// Kept here for its importers; it lives apart so the scan thread shares tokens without loading @azure/identity.
export { shareTokens } from './share-tokens.js';

/** Builds the one TokenCredential Keywarden shares across Graph, ARM, Key Vault and Databricks, from `azure` config. */

export type AzureConfig = KeywardenConfig['azure'];

export class AzureCredentialConfigError extends Error {
  readonly code = 'AzureCredentialConfig';
  readonly statusCode = 400;
  constructor(readonly problems: string[]) {
    super(`azure credential config is incomplete:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'AzureCredentialConfigError';
  }
}

const PUBLIC_HOSTS = new Set<string>([
  ...Object.values(AzureAuthorityHosts).map((h) => new URL(h).host.toLowerCase()),
  'login.windows.net', 'login.microsoft.com', 'sts.windows.net',
]);

/** Public clouds support MSAL instance discovery; anything else (a sandbox, a private authority) must skip it. */
export function isPublicAuthorityHost(authorityHost: string | undefined): boolean {
  if (!authorityHost) return true;
  try {
    return PUBLIC_HOSTS.has(new URL(authorityHost).host.toLowerCase());
  } catch {
    return false;
  }
}

export function createAzureCredential(azure: AzureConfig, options: { env?: NodeJS.ProcessEnv } = {}): TokenCredential {
  const env = options.env ?? process.env;
  const c = azure.credential;
  const authority = azure.authorityHost
    ? { authorityHost: azure.authorityHost, disableInstanceDiscovery: !isPublicAuthorityHost(azure.authorityHost) }
    : {};
  const problems: string[] = [];
  const need = (value: string | undefined, key: string, fix: string): string => {
    if (!value) problems.push(`${key}: missing for credential type "${c.type}" — ${fix}`);
    return value ?? '';
  };

  switch (c.type) {
    case 'default':
      return new DefaultAzureCredential({
        ...authority, tenantId: azure.tenantId,
        ...(c.clientId ? { managedIdentityClientId: c.clientId, workloadIdentityClientId: c.clientId } : {}),
      });
    case 'managed-identity':
      // User-assigned when a client id is given; system-assigned otherwise.
      return c.clientId ? new ManagedIdentityCredential({ clientId: c.clientId }) : new ManagedIdentityCredential();
    case 'workload-identity': {
      const tenantId = need(azure.tenantId ?? env.AZURE_TENANT_ID, 'azure.tenantId', 'set it or AZURE_TENANT_ID (the AKS webhook injects it)');
      const clientId = need(c.clientId ?? env.AZURE_CLIENT_ID, 'azure.credential.clientId', 'set it or AZURE_CLIENT_ID');
      const tokenFilePath = need(env.AZURE_FEDERATED_TOKEN_FILE, 'AZURE_FEDERATED_TOKEN_FILE', 'enable workload identity on the pod (azure.workload.identity/use: "true")');
      if (problems.length > 0) throw new AzureCredentialConfigError(problems);
      return new WorkloadIdentityCredential({ ...authority, tenantId, clientId, tokenFilePath });
    }
    case 'client-secret': {
      const tenantId = need(azure.tenantId, 'azure.tenantId', 'set the Entra tenant id (a GUID)');
      const clientId = need(c.clientId, 'azure.credential.clientId', "set the app registration's Application (client) ID");
      const secret = need(c.clientSecret, 'azure.credential.clientSecret', 'set it from the environment, e.g. "env:AZURE_CLIENT_SECRET"');
      if (problems.length > 0) throw new AzureCredentialConfigError(problems);
      registerSecret(secret);
      return new ClientSecretCredential(tenantId, clientId, secret, authority);
    }
    case 'client-certificate': {
      const tenantId = need(azure.tenantId, 'azure.tenantId', 'set the Entra tenant id (a GUID)');
      const clientId = need(c.clientId, 'azure.credential.clientId', "set the app registration's Application (client) ID");
      const certificatePath = need(c.certificatePath, 'azure.credential.certificatePath', 'point it at a PEM file holding the certificate and its private key');
      if (certificatePath && !existsSync(certificatePath)) {
        problems.push(`azure.credential.certificatePath: no file at ${certificatePath} — check the path (relative paths start at the working directory)`);
      }
      if (problems.length > 0) throw new AzureCredentialConfigError(problems);
      return new ClientCertificateCredential(tenantId, clientId, { certificatePath }, authority);
    }
    default:
      throw new AzureCredentialConfigError([`azure.credential.type: unknown "${String((c as { type: unknown }).type)}" — use default, managed-identity, workload-identity, client-secret or client-certificate`]);
  }
}
