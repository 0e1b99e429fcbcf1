import { ClientSecretCredential } from '@azure/identity';
import { AdjustableClock } from '../../src/clock.js';
import { startEntraEmulator, type EntraEmulator, type EntraEmulatorOptions } from '../../src/sandbox/entra/index.js';
import { seedEntra, type SeededEntra } from '../../src/sandbox/entra/seed.js';
import { ensureSandboxTls, TEST_CA_DIR } from '../../src/sandbox/tls.js';

/** Starts the Entra emulator with the seeded Contoso tenant on a frozen clock, and builds real identity credentials for it. */

export const START = Date.UTC(2026, 10, 22, 9, 0, 0);

export interface EntraFixture {
  clock: AdjustableClock;
  entra: EntraEmulator;
  seeded: SeededEntra;
  /** A real ClientSecretCredential pointed at the emulator (instance discovery off, as for any non-public authority). */
  credentialFor(clientId: string, secret: string): ClientSecretCredential;
  /** keywarden-bot's credential (Application.Read.All + ReadWrite.OwnedBy + GroupMember.Read.All). */
  keywardenCredential(): ClientSecretCredential;
}

export async function startSeededEntra(options: Omit<EntraEmulatorOptions, 'clock' | 'tls'> = {}): Promise<EntraFixture> {
  const clock = new AdjustableClock({ frozenAt: START });
  const entra = await startEntraEmulator({ ...options, clock, tls: ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR) });
  const seeded = seedEntra(entra, { clock });
  const credentialFor = (clientId: string, secret: string) =>
    new ClientSecretCredential(entra.tenantId, clientId, secret, { authorityHost: entra.authorityHost, disableInstanceDiscovery: true });
  return {
    clock, entra, seeded, credentialFor,
    keywardenCredential: () => credentialFor(seeded.keywarden.clientId, seeded.keywarden.clientSecret),
  };
}

/** Decodes a JWT payload (tests only: to show the claims a resource server sees). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
