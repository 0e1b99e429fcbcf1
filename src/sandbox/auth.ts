/** How emulators check bearer tokens issued by the emulated Entra token endpoint (src/sandbox/entra). */
export interface IssuedTokenPrincipal {
  tenantId: string;
  /** Client (application) id the token was issued to. */
  appId: string;
  /** Object id of the service principal. */
  objectId?: string;
  /** Audience, e.g. "https://vault.azure.net", "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d". */
  audience: string;
}

export type TokenCheck = { ok: true; principal: IssuedTokenPrincipal } | { ok: false; reason: string };

export interface TokenValidator {
  /** Validates an access token for an audience (resource) at the emulators' current time. */
  validate(token: string, audience: string): TokenCheck;
}
