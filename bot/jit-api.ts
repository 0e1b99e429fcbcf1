import type restify from 'restify';
import type { Keywarden } from '../src/app.js';
import type { HttpRequestData } from '../src/domain/http.js';
import type { Logger } from '../src/logging/logger.js';

/**
 * Mounts the modules' HTTP endpoints (the pipeline JIT API: POST /api/jit, GET /api/jit/:id, POST /api/jit/:id/release)
 * on the restify server beside /api/messages. Authentication is the module's own (Entra bearer tokens), not Bot Framework's.
 */
export function registerModuleRoutes(server: restify.Server, keywarden: Keywarden, logger: Logger, closing: () => boolean): void {
  const log = logger.child({ component: 'http-api' });
  for (const route of keywarden.httpRoutes) {
    const handler = async (req: restify.Request, res: restify.Response): Promise<void> => {
      res.header('Cache-Control', 'no-store');
      if (closing()) {
        res.header('Retry-After', '5');
        res.send(503, { error: { code: 'ShuttingDown', message: 'Keywarden is shutting down; retry shortly.' } });
        return;
      }
      // A fenced replica (the store moved past this release) must write nothing: the caller retries another one.
      const fence = keywarden.fenced;
      if (fence) {
        res.header('Retry-After', String(fence.retryAfterSeconds));
        res.send(503, { error: { code: 'ReplicaFenced', message: fence.reason } });
        return;
      }
      const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim() || ('encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http');
      const data: HttpRequestData = {
        params: { ...(req.params as Record<string, string>) },
        query: Object.fromEntries(new URL(req.url ?? '/', 'http://local').searchParams),
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])),
        body: req.body,
        baseUrl: `${proto}://${req.headers.host ?? 'localhost'}`,
      };
      try {
        const out = await route.handle(data);
        for (const [k, v] of Object.entries(out.headers ?? {})) res.header(k, v);
        res.send(out.status, out.body);
      } catch (err) {
        // The request may carry a bearer token: log the route, never the headers.
        log.error({ err, route: `${route.method} ${route.path}` }, 'HTTP API handler failed');
        res.send(500, { error: { code: 'InternalError', message: 'Keywarden failed to handle this request; the incident is in its log.' } });
      }
    };
    if (route.method === 'GET') server.get(route.path, handler);
    else server.post(route.path, handler);
  }
}
