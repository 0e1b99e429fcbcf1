import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { EmulatorHandler, EmulatorRequest, EmulatorResponse } from '../emulator.js';
import { hashSecret, type EntraDirectory, type StoredPassword } from './state.js';
import { audienceForScope, GRAPH_RESOURCE, normalizeResource, type TokenIssuer } from './tokens.js';

/** The login.microsoftonline.com side: OpenID discovery, JWKS and the client-credentials token endpoint. */

export interface TokenEndpointContext {
  directory: EntraDirectory;
  issuer: TokenIssuer;
  clock: Clock;
  /** Base URL of this server (for discovery documents). */
  baseUrl(): string;
  /** A password added less than this many ms ago (clock time) is not accepted yet: Entra replication lag. */
  propagationDelayMs(): number;
  tokenLifetimeSeconds(): number;
}

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

function entraTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** An AADSTS error body shaped like Entra's (the trace/correlation ids are in the description too). */
function aadError(ctx: TokenEndpointContext, req: EmulatorRequest, status: number, error: string, code: number, text: string): EmulatorResponse {
  const traceId = randomUUID();
  const correlationId = req.url.searchParams.get('client-request-id') ?? String(req.headers['client-request-id'] ?? randomUUID());
  const timestamp = entraTimestamp(ctx.clock.now());
  return {
    status,
    headers: { 'x-ms-request-id': traceId, 'client-request-id': correlationId, 'cache-control': 'no-store, no-cache' },
    body: {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${ctx.baseUrl()}/error?code=${code}`,
    },
  };
}

function knownTenant(ctx: TokenEndpointContext, tenant: string): boolean {
  const t = tenant.toLowerCase();
  return t === ctx.directory.tenantId.toLowerCase() || t === ctx.directory.tenantName.toLowerCase();
}

function openIdConfiguration(ctx: TokenEndpointContext, tenant: string): Record<string, unknown> {
  const base = `${ctx.baseUrl()}/${tenant}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${ctx.baseUrl()}/${ctx.directory.tenantId}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'tid', 'oid', 'appid', 'roles'],
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/** client_secret_basic: "Basic base64(client_id:client_secret)" (both URL-encoded per RFC 6749). */
function basicCredentials(header: string | undefined): { clientId: string; secret: string } | undefined {
  const m = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { clientId: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) };
}

function tokenRequest(ctx: TokenEndpointContext, req: EmulatorRequest): EmulatorResponse {
  if (req.method !== 'POST') return aadError(ctx, req, 405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
  const form = new URLSearchParams(req.bodyText);
  const basic = basicCredentials(req.headers.authorization);
  const grantType = form.get('grant_type');
  const clientId = form.get('client_id') ?? basic?.clientId;
  const scope = form.get('scope');
  const secret = form.get('client_secret') ?? basic?.secret;
  const missing = (p: string) => aadError(ctx, req, 400, 'invalid_request', 900144, `The request body must contain the following parameter: '${p}'.`);
  if (!grantType) return missing('grant_type');
  if (grantType !== 'client_credentials') {
    return aadError(ctx, req, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'. The emulator supports client_credentials only.`);
  }
  if (!clientId) return missing('client_id');
  if (!scope) return missing('scope');

  const resources = scope.split(/\s+/).filter((s) => s && !OIDC_SCOPES.has(s.toLowerCase()));
  if (resources.length !== 1) {
    return aadError(ctx, req, 400, 'invalid_scope', 70011, `The provided request must include a 'scope' input parameter with exactly one resource. The provided value for the input parameter 'scope' is not valid.`);
  }
  const requested = resources[0]!;
  if (!/\/\.default$/i.test(requested)) {
    return aadError(ctx, req, 400, 'invalid_scope', 1002012, `The provided value for scope ${requested} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  }

  const app = ctx.directory.applicationByAppId(clientId);
  const sp = ctx.directory.servicePrincipalByAppId(clientId);
  if (!app || !sp) {
    return aadError(ctx, req, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${ctx.directory.tenantName}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
  }
  if (!sp.accountEnabled) {
    return aadError(ctx, req, 400, 'unauthorized_client', 7000112, `Application '${clientId}'(${app.displayName}) is disabled.`);
  }
  if (!secret) {
    if (form.get('client_assertion')) {
      return aadError(ctx, req, 401, 'invalid_client', 700027, 'Client assertion failed signature validation: the emulator accepts client secrets only.');
    }
    return aadError(ctx, req, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }

  // App-level and SP-level passwords both authenticate.
  const hash = hashSecret(secret);
  const match: StoredPassword | undefined = [...app.passwordCredentials, ...sp.passwordCredentials].find((p) => p.secretHash === hash);
  const now = ctx.clock.now();
  const invalidSecret = () => aadError(ctx, req, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
  if (!match) return invalidSecret();
  if (match.endDateTime <= now) {
    return aadError(ctx, req, 401, 'invalid_client', 7000222, `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
  }
  // Not yet started, or not yet replicated: Entra answers as if the secret were wrong.
  if (match.startDateTime > now || now - match.addedAt < ctx.propagationDelayMs()) return invalidSecret();

  const audience = audienceForScope(requested) ?? ctx.directory.apiAudience(requested);
  if (!audience) {
    const resource = requested.replace(/\/\.default$/i, '');
    return aadError(ctx, req, 400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named ${ctx.directory.tenantName}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`);
  }
  const roles = normalizeResource(audience) === normalizeResource(GRAPH_RESOURCE) ? ctx.directory.permissionsOf(clientId) : undefined;
  const issued = ctx.issuer.issue({ appId: clientId, spObjectId: sp.id, audience, roles, lifetimeSeconds: ctx.tokenLifetimeSeconds() });
  ctx.directory.recordSignIn(match.keyId, now);
  return {
    status: 200,
    headers: { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' },
    body: { token_type: 'Bearer', expires_in: issued.expiresIn, ext_expires_in: issued.expiresIn, access_token: issued.token },
  };
}

export function createTokenEndpointHandler(ctx: TokenEndpointContext): EmulatorHandler {
  return (req) => {
    const m = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|\.well-known\/openid-configuration|oauth2\/v2\.0\/token|oauth2\/token|discovery\/v2\.0\/keys|discovery\/keys)$/.exec(req.path);
    if (!m) return aadError(ctx, req, 404, 'invalid_request', 90007, `The emulated token endpoint has no route ${req.method} ${req.path}.`);
    const tenant = m[1]!;
    const route = m[2]!;
    const openTenant = ['common', 'organizations'].includes(tenant.toLowerCase());
    if (!knownTenant(ctx, tenant) && !(openTenant && !route.includes('token'))) {
      return aadError(ctx, req, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    if (route.endsWith('openid-configuration')) return { status: 200, body: openIdConfiguration(ctx, tenant) };
    if (route.startsWith('discovery')) return { status: 200, body: ctx.issuer.jwks() };
    if (route === 'oauth2/token') {
      return aadError(ctx, req, 400, 'invalid_request', 900144, 'The emulator implements the v2.0 endpoint only; use /oauth2/v2.0/token with a /.default scope.');
    }
    return tokenRequest(ctx, req);
  };
}
