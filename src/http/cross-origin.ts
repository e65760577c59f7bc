// Browsers on other sites may not use /api/v1, except from the origins in CORS_ORIGINS.
//
// A browser sends Origin on every cross-origin request (and on same-origin ones that are not GET
// or HEAD). A request that carries one is refused with 403 unless it is the service's own origin
// (PUBLIC_BASE_URL's, or the one the request came to: its scheme and Host) or a listed origin.
// Without this, any page a user visits could upload to a service running in open mode on their
// network, or read its results. Clients that are not browsers send no Origin and are not
// concerned. Listed origins get CORS answers (preflight included), so a page there can call
// the API with its key.
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { AppError } from '../errors.js';

/** What a browser page may send and read, beyond the CORS-safelisted headers. */
const ALLOW_HEADERS = ['X-API-Key', 'Authorization', 'Content-Type', 'Idempotency-Key', 'If-None-Match', 'X-Request-Id'];
const EXPOSE_HEADERS = ['X-Request-Id', 'Idempotent-Replayed', 'ETag', 'Content-Disposition', 'Retry-After'];
const ALLOW_METHODS = ['GET', 'HEAD', 'POST', 'DELETE'];
/** How long a browser may reuse a preflight answer (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_S = 600;

/** The serialised origin of a URL or Origin header value; null for "null" and anything unparsable. */
function originOf(value: string): string | null {
  try {
    const origin = new URL(value).origin;
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

export interface CrossOriginOptions {
  /** The service's public address (PUBLIC_BASE_URL). */
  publicBaseUrl: string;
  /** Other origins allowed to call the API from a browser (CORS_ORIGINS, already normalised). */
  allowedOrigins: readonly string[];
}

/** The middleware for /api/v1/*: refuses foreign origins, answers CORS for the allowed ones. */
export function crossOriginPolicy(opts: CrossOriginOptions): MiddlewareHandler {
  const publicOrigin = originOf(opts.publicBaseUrl);
  const allowed = new Set(opts.allowedOrigins);
  const corsAnswers = cors({
    origin: (origin) => (allowed.has(originOf(origin) ?? '') ? origin : null),
    allowMethods: ALLOW_METHODS,
    allowHeaders: ALLOW_HEADERS,
    exposeHeaders: EXPOSE_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
  });

  return async (c, next) => {
    const header = c.req.header('origin');
    if (header === undefined) return next();
    const origin = originOf(header);
    if (origin !== null && allowed.has(origin)) return corsAnswers(c, next);
    const host = c.req.header('host');
    const own = origin !== null && (origin === publicOrigin || (host !== undefined && origin === originOf(`${new URL(c.req.url).protocol}//${host}`)));
    if (!own) throw new AppError(403, 'Cross-origin request refused: this origin is not allowed to use the API (see CORS_ORIGINS)');
    return next();
  };
}
