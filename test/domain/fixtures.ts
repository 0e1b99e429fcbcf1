import type { Credential, CredentialKind, Estate } from '../../src/domain/credential.js';
import { credentialId } from '../../src/domain/credential.js';
import { configSchema } from '../../src/config/schema.js';
import { DAY_MS } from '../../src/clock.js';

export const NOW = Date.UTC(2026, 3, 1, 12, 0, 0);
export const days = (n: number) => NOW + n * DAY_MS;

const ESTATE: Record<CredentialKind, Estate> = {
  'databricks-pat': 'databricks', 'keyvault-secret': 'keyvault', 'entra-password': 'entra', 'entra-certificate': 'entra',
};

/** A plain credential with sensible defaults; override what the test is about. */
export function cred(kind: CredentialKind, scope: string, nativeId: string, over: Partial<Credential> = {}): Credential {
  return {
    id: credentialId(kind, scope, nativeId),
    kind,
    nativeId,
    name: nativeId,
    where: { estate: ESTATE[kind], scope, label: scope },
    createdAt: days(-10),
    expiresAt: days(45),
    heldIn: [],
    consumers: [],
    attributes: {},
    ...over,
  };
}

export function defaultConfig(extra: Record<string, unknown> = {}) {
  return configSchema.parse(extra);
}
