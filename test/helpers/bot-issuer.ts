import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

/**
 * A local stand-in for login.botframework.com: OpenID metadata, a JWKS whose keys carry Bot Framework's
 * `endorsements`, and a signer for Bot Connector-shaped tokens (iss api.botframework.com, aud = bot app id,
 * serviceurl). `hang()` makes it accept connections and never answer, like the endpoint in issue 15.
 */

export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';

export interface BotIssuer {
  readonly metadataUrl: string;
  readonly kid: string;
  /** Open sockets right now (to see that callers release them). */
  readonly openSockets: number;
  /** Requests received, by path. */
  readonly requests: string[];
  sign(claims: JWTPayload & { serviceurl?: string }, options?: { kid?: string; expiresInSeconds?: number; notBefore?: number }): Promise<string>;
  /** Signs with a key the JWKS does not publish. */
  signWithUnknownKey(claims: JWTPayload): Promise<string>;
  /** Accept connections, never answer (until `answer()`). */
  hang(): void;
  answer(): void;
  close(): Promise<void>;
}

export async function startBotIssuer(options: { endorsements?: string[] } = {}): Promise<BotIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const other = await generateKeyPair('RS256');
  const kid = 'kw-test-key-1';
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', kty: 'RSA', endorsements: options.endorsements ?? ['msteams', 'webchat'] };
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  let hanging = false;
  let base = '';

  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (hanging) return; // accepted, never answered
    res.setHeader('content-type', 'application/json');
    if (req.url === '/v1/.well-known/openidconfiguration') {
      res.end(JSON.stringify({ issuer: BOT_FRAMEWORK_ISSUER, authorization_endpoint: `${base}/v1/authorize`, jwks_uri: `${base}/v1/.well-known/keys`, id_token_signing_alg_values_supported: ['RS256'], token_endpoint_auth_methods_supported: ['private_key_jwt'] }));
      return;
    }
    if (req.url === '/v1/.well-known/keys') {
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const signWith = (key: CryptoKey, keyId: string, claims: JWTPayload, expiresIn = 3600, notBefore?: number) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: BOT_FRAMEWORK_ISSUER, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: keyId, typ: 'JWT' })
      .setIssuedAt(notBefore ?? now)
      .setNotBefore(notBefore ?? now)
      .setExpirationTime((notBefore ?? now) + expiresIn)
      .sign(key);
  };

  return {
    metadataUrl: `${base}/v1/.well-known/openidconfiguration`,
    kid,
    get openSockets() { return sockets.size; },
    requests,
    sign: (claims, o = {}) => signWith(privateKey, o.kid ?? kid, claims, o.expiresInSeconds, o.notBefore),
    signWithUnknownKey: (claims) => signWith(other.privateKey, 'not-published-key', claims),
    hang() { hanging = true; },
    answer() { hanging = false; },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
