// Request observation, the first middleware: a request id (X-Request-Id in and out), one log line
// per request and the HTTP metrics. Labels and logged paths use the route pattern
// (/api/v1/status/{request_id}), not the raw path, so IDs do not explode the series count.
// Headers, query strings and bodies are never logged.
import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** This HTTP request's id (X-Request-Id). */
    requestId: string;
  }
}

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** An incoming X-Request-Id is kept when it is short and made of token characters only. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:=+/@-]{1,128}$/;

/** Routes polled by machines: logged at debug level unless they fail. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** The pattern of the route that handled the request, in OpenAPI form; null when none matched. */
export function routePattern(c: Context): string | null {
  const routes = matchedRoutes(c).filter((r) => r.method !== 'ALL');
  const path = routes.at(-1)?.path;
  return path === undefined ? null : path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, '{$1}');
}

/** The processing request an API call is about, for correlating with pipeline and webhook logs. */
async function processingRequestId(c: Context, route: string | null): Promise<string | undefined> {
  if (route?.startsWith('/api/v1/status/{request_id}')) {
    const raw = c.req.path.split('/')[4];
    try {
      return raw ? decodeURIComponent(raw).slice(0, 100) : undefined;
    } catch {
      return undefined;
    }
  }
  if (route === '/api/v1/upload' && c.res.status === 202) {
    try {
      const body = (await c.res.clone().json()) as { request_id?: unknown };
      return typeof body.request_id === 'string' ? body.request_id : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function observeRequests(deps: { log: Logger; metrics: Metrics }): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const id = requestIdFrom(c.req.header(REQUEST_ID_HEADER));
    c.set('requestId', id);
    c.header(REQUEST_ID_HEADER, id);
    try {
      await next();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      // A handler that built its own Response skipped the prepared header.
      if (!c.res.headers.has(REQUEST_ID_HEADER)) {
        try {
          c.res.headers.set(REQUEST_ID_HEADER, id);
        } catch {
          c.res = new Response(c.res.body, c.res); // immutable headers: copy
          c.res.headers.set(REQUEST_ID_HEADER, id);
        }
      }
      const route = routePattern(c);
      const status = c.res.status;
      deps.metrics.observeHttp(c.req.method, route ?? 'unmatched', status, seconds);
      const requestId = await processingRequestId(c, route);
      const line = {
        req_id: id,
        method: c.req.method,
        path: route ?? c.req.path.slice(0, 200),
        status,
        duration_ms: Math.round(seconds * 10_000) / 10,
        ...(requestId ? { request_id: requestId } : {}),
      };
      if (status >= 500) deps.log.warn(line, 'http request');
      else if (route !== null && QUIET_ROUTES.has(route) && status < 400) deps.log.debug(line, 'http request');
      else deps.log.info(line, 'http request');
    }
  };
}
