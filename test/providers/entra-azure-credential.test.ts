import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultAzureCredential, ManagedIdentityCredential, WorkloadIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureCredentialConfigError, createAzureCredential, isPublicAuthorityHost, type AzureConfig } from '../../src/providers/azure-credential.js';
import { startSeededEntra, type EntraFixture } from '../sandbox/entra-fixtures.js';

// createAzureCredential: config → the right @azure/identity credential, with clear errors for missing fields.

let f: EntraFixture;
let dir: string;
beforeAll(async () => {
  f = await startSeededEntra();
  dir = mkdtempSync(join(tmpdir(), 'kw-cred-'));
});
afterAll(async () => {
  await f?.entra.close();
  rmSync(dir, { recursive: true, force: true });
});

const config = (credential: Partial<AzureConfig['credential']> & { type: AzureConfig['credential']['type'] }, extra: Partial<AzureConfig> = {}): AzureConfig =>
  ({ tenantId: f.seeded.tenantId, authorityHost: f.entra.authorityHost, credential, ...extra });

describe('createAzureCredential', () => {
  it('builds a client-secret credential that gets tokens from a non-public authority (instance discovery off)', async () => {
    const credential = createAzureCredential(config({ type: 'client-secret', clientId: f.seeded.keywarden.clientId, clientSecret: f.seeded.keywarden.clientSecret }));
    const token = await credential.getToken('https://management.azure.com/.default');
    expect(token?.token).toMatch(/^eyJ/);
  });

  it('lists every missing field of a client-secret config, one line each with the fix, and never echoes a secret', () => {
    let err: unknown;
    try {
      createAzureCredential({ credential: { type: 'client-secret' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AzureCredentialConfigError);
    const problems = (err as AzureCredentialConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^azure\.tenantId: missing .* — /);
    expect(problems[1]).toMatch(/^azure\.credential\.clientId: /);
    expect(problems[2]).toMatch(/^azure\.credential\.clientSecret: .*env:AZURE_CLIENT_SECRET/);
    expect(err).toMatchObject({ code: 'AzureCredentialConfig', statusCode: 400 });
  });

  it('checks that the certificate file exists', () => {
    expect(() => createAzureCredential(config({ type: 'client-certificate', clientId: 'x', certificatePath: join(dir, 'missing.pem') })))
      .toThrow(/certificatePath: no file at/);
  });

  it('builds a workload-identity credential from the AKS env and sends its assertion to the configured authority', async () => {
    const tokenFile = join(dir, 'federated-token');
    writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln');
    expect(() => createAzureCredential(config({ type: 'workload-identity', clientId: 'x' }), { env: {} })).toThrow(/AZURE_FEDERATED_TOKEN_FILE/);
    const credential = createAzureCredential(config({ type: 'workload-identity', clientId: f.seeded.keywarden.clientId }), { env: { AZURE_FEDERATED_TOKEN_FILE: tokenFile } });
    expect(credential).toBeInstanceOf(WorkloadIdentityCredential);
    f.entra.authority.clearRequests();
    // The emulator accepts secrets only, so the assertion is refused — but it reached our authority, not the internet.
    await expect(credential.getToken('https://graph.microsoft.com/.default')).rejects.toThrow(/700027/);
    expect(f.entra.authority.requests.some((r) => r.method === 'POST' && r.path.endsWith('/oauth2/v2.0/token'))).toBe(true);
  });

  it('builds managed-identity and default credentials without probing anything at construction', () => {
    expect(createAzureCredential({ credential: { type: 'managed-identity' } })).toBeInstanceOf(ManagedIdentityCredential);
    expect(createAzureCredential({ credential: { type: 'managed-identity', clientId: 'user-assigned-id' } })).toBeInstanceOf(ManagedIdentityCredential);
    expect(createAzureCredential({ credential: { type: 'default' } })).toBeInstanceOf(DefaultAzureCredential);
  });

  it('knows the public clouds', () => {
    expect(isPublicAuthorityHost(undefined)).toBe(true);
    expect(isPublicAuthorityHost('https://login.microsoftonline.com')).toBe(true);
    expect(isPublicAuthorityHost('https://login.microsoftonline.us/')).toBe(true);
    expect(isPublicAuthorityHost('https://login.chinacloudapi.cn')).toBe(true);
    expect(isPublicAuthorityHost(f.entra.authorityHost)).toBe(false);
  });
});
