/**
 * An HTTP endpoint a module serves beside /api/messages (e.g. the pipeline JIT API). Plain data in and out: bot/
 * mounts it on the restify server, so no module knows the web framework.
 */
export interface HttpRequestData {
  /** Path parameters, e.g. { id } for "/api/jit/:id". */
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  /** Parsed JSON body (untrusted), or undefined. */
  body: unknown;
  /** Absolute base URL the caller used (scheme://host), for Location headers. */
  baseUrl: string;
}

export interface HttpResponseData {
  status: number;
  /** Always a JSON object (ADF's Web activity refuses anything else). */
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface HttpRoute {
  method: 'GET' | 'POST';
  /** restify-style path, e.g. "/api/jit/:id/release". */
  path: string;
  handle(req: HttpRequestData): Promise<HttpResponseData>;
}
