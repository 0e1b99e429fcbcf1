import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { TokenValidator } from '../auth.js';
import type { Fault } from '../emulator.js';
import { EmulatorServer } from '../emulator.js';
import type { SandboxTls } from '../tls.js';
import type { SecretPermission, VaultOperation } from './routes.js';
import { createVaultHandler } from './routes.js';
import type { NewVersion, StoredVersion } from './store.js';
import { VaultStore } from './store.js';
import { errorBody } from './wire.js';

/** Emulated Azure Key Vault: several vaults, each an HTTPS server on its own port speaking the secrets REST API. */

export type { SecretPermission, VaultOperation } from './routes.js';

export interface KeyVaultEmulatorOptions {
  tls: SandboxTls;
  tenantId: string;
  vaults: Array<{ name: string; port?: number }>;
  clock?: Clock;
  /** Checks bearer tokens for https://vault.azure.net; without it any bearer is accepted. */
  tokenValidator?: TokenValidator;
  /** Port of the first vault when a vault gives none (the next vaults take the following ports); 0/absent = ephemeral. */
  port?: number;
  host?: string;
  /** Authority named in the challenge (the Entra emulator's URL in the sandbox). */
  authorityHost?: string;
  /** Default list page size; small so nextLink paging is exercised. */
  pageSize?: number;
}

/** A version as tests see it: everything but the value. */
export interface SecretVersionView {
  version: string;
  enabled: boolean;
  contentType?: string;
  tags?: Record<string, string>;
  /** Epoch ms. */
  exp?: number;
  nbf?: number;
  created: number;
  updated: number;
}

export interface SeedSecretInput extends NewVersion {
  /** Certificate-backed secret (managed: true). */
  managed?: boolean;
}

export interface EmulatedVault {
  readonly name: string;
  readonly url: string;
  readonly server: EmulatorServer;
  /** Restricts the vault to principals on its access list (the first call switches the list on). */
  allow(appId: string, permissions: SecretPermission[]): void;
  /** Takes permissions away (all of them when none are named); switches the access list on if it was off. */
  withdraw(appId: string, permissions?: SecretPermission[]): void;
  /** Back to "any valid token may do anything". */
  clearAccessList(): void;
  secretNames(): string[];
  deletedSecretNames(): string[];
  /** Versions oldest first; the last is current. */
  versions(name: string): SecretVersionView[];
  /** Test-only: the stored value of a version (current when omitted); never logged. */
  readStoredValue(name: string, version?: string): string | undefined;
  /** Writes a version directly (seeding; may set created/updated in the past). */
  seedSecret(name: string, input: SeedSecretInput): SecretVersionView;
  operations(): VaultOperation[];
}

export interface KeyVaultEmulatorHandle {
  readonly tenantId: string;
  readonly vaults: ReadonlyMap<string, EmulatedVault>;
  vault(name: string): EmulatedVault;
  /** Vault name → URL, e.g. { 'kv-prod': 'https://127.0.0.1:41234' }. */
  urls(): Record<string, string>;
  /** Every answered request across vaults (injected faults are in each server's own `requests`). */
  operations(): VaultOperation[];
  /** Successful reads of a secret value (GET /secrets/{n}/[{v}] → 200). */
  valueReads(): VaultOperation[];
  clearOperations(): void;
  /** A fault on one vault, or on every vault when none is named. */
  injectFault(fault: Fault, vault?: string): void;
  clearFaults(): void;
  setLatency(ms: number, vault?: string): void;
  close(): Promise<void>;
}

const view = (v: StoredVersion): SecretVersionView => ({
  version: v.version, enabled: v.enabled, contentType: v.contentType, tags: v.tags ? { ...v.tags } : undefined,
  exp: v.exp, nbf: v.nbf, created: v.created, updated: v.updated,
});

/** The service's throttling and failure bodies for injected faults. */
function faultBody(status: number): unknown {
  if (status === 429) return errorBody('Throttled', 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached');
  if (status === 503) return errorBody('ServiceUnavailable', 'The service is temporarily unavailable. Please retry.');
  return errorBody('InternalServerError', `Injected failure (HTTP ${status}).`);
}

export async function startKeyVaultEmulator(options: KeyVaultEmulatorOptions): Promise<KeyVaultEmulatorHandle> {
  const clock = options.clock ?? systemClock;
  const log: VaultOperation[] = [];
  const vaults = new Map<string, EmulatedVault>();
  const names = new Set<string>();
  for (const v of options.vaults) {
    if (names.has(v.name)) throw new Error(`Key Vault emulator: vault "${v.name}" is listed twice; give each vault a unique name.`);
    names.add(v.name);
  }

  try {
    for (const [index, spec] of options.vaults.entries()) {
      const store = new VaultStore(spec.name, clock);
      let access: Map<string, Set<SecretPermission>> | undefined;
      const where = { url: '' };
      const handler = createVaultHandler({
        name: spec.name, store, clock, tenantId: options.tenantId,
        authorityHost: options.authorityHost ?? 'https://login.microsoftonline.com',
        tokenValidator: options.tokenValidator,
        accessList: () => access,
        baseUrl: () => where.url,
        pageSize: options.pageSize ?? 5,
        record: (op) => log.push(op),
      });
      const server = new EmulatorServer({ name: `keyvault:${spec.name}`, handler, tls: options.tls, clock, faultBody });
      const port = spec.port ?? (options.port ? options.port + index : 0);
      const url = await server.listen(port, options.host ?? '127.0.0.1');
      where.url = url;
      vaults.set(spec.name, {
        name: spec.name, url, server,
        allow(appId, permissions) {
          access ??= new Map();
          const set = access.get(appId) ?? new Set();
          for (const p of permissions) set.add(p);
          access.set(appId, set);
        },
        withdraw(appId, permissions) {
          access ??= new Map();
          if (!permissions) access.delete(appId);
          else for (const p of permissions) access.get(appId)?.delete(p);
        },
        clearAccessList() {
          access = undefined;
        },
        secretNames: () => store.list().map((s) => s.name),
        deletedSecretNames: () => store.listDeleted().map((d) => d.secret.name),
        versions: (name) => store.secret(name).versions.map(view),
        readStoredValue(name, version) {
          try {
            return store.version(name, version).value;
          } catch {
            return undefined;
          }
        },
        seedSecret(name, input) {
          const { managed, ...rest } = input;
          return view(store.set(name, rest, { managed, kid: managed ? `${url}/keys/${name}/${'0'.repeat(32)}` : undefined }));
        },
        operations: () => log.filter((o) => o.vault === spec.name),
      });
    }
  } catch (err) {
    await Promise.all([...vaults.values()].map((v) => v.server.close()));
    throw err;
  }

  const pick = (vault?: string): EmulatedVault[] => {
    if (vault === undefined) return [...vaults.values()];
    const v = vaults.get(vault);
    if (!v) throw new Error(`Key Vault emulator has no vault "${vault}"; known: ${[...vaults.keys()].join(', ')}`);
    return [v];
  };

  return {
    tenantId: options.tenantId,
    vaults,
    vault: (name) => pick(name)[0]!,
    urls: () => Object.fromEntries([...vaults.values()].map((v) => [v.name, v.url])),
    operations: () => [...log],
    valueReads: () => log.filter((o) => o.valueRead && o.status === 200),
    clearOperations: () => {
      log.length = 0;
      for (const v of vaults.values()) v.server.clearRequests();
    },
    injectFault: (fault, vault) => pick(vault).forEach((v) => v.server.injectFault({ ...fault })),
    clearFaults: () => [...vaults.values()].forEach((v) => v.server.clearFaults()),
    setLatency: (ms, vault) => pick(vault).forEach((v) => v.server.setLatency(ms)),
    close: async () => {
      await Promise.all([...vaults.values()].map((v) => v.server.close()));
    },
  };
}
