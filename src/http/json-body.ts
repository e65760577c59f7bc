// The one check of a JSON body's envelope, for every route that takes one: a Content-Type that is
// not JSON is 415, a body that does not parse is 400, both as { detail } (the validator's own
// refusals would differ from route to route). The parsed body stays in Hono's body cache, so the
// route's validator does not read it again.
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

export function requireJsonBody(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== 'POST') return next();
    if (!JSON_TYPE.test(c.req.header('content-type') ?? '')) {
      throw new AppError(415, 'The body must be JSON (Content-Type: application/json)');
    }
    try {
      await c.req.json();
    } catch {
      throw new AppError(400, 'The body is not valid JSON');
    }
    return next();
  };
}
