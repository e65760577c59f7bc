// The one place where errors become responses: every error answer is { "detail": "..." }.
// Routes and middleware throw AppError (or Hono's HTTPException); nothing else builds an error body.
import type { Hook } from '@hono/zod-openapi';
import type { Context, Env, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

const answer = (c: Context, status: number, detail: string) => c.json({ detail }, status as 400);

export function errorHandler(log: Logger): ErrorHandler {
  return (err, c) => {
    if (err instanceof AppError) {
      for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
      return answer(c, err.status, err.detail);
    }
    // Hono's own refusals (e.g. a malformed JSON body) keep their status and get our shape.
    if (err instanceof HTTPException && err.status < 500) return answer(c, err.status, err.message || 'Bad request');
    log.error({ err, req_id: c.get('requestId'), path: c.req.path }, 'unhandled error');
    return answer(c, 500, 'Internal server error');
  };
}

export const notFoundHandler: NotFoundHandler = (c) => answer(c, 404, 'Not found');

interface RouteEntry {
  method: string;
  path: string;
}

/** A Hono route path (`/api/v1/status/:request_id`, `/assets/:file`) as a whole-path pattern. */
const pathPattern = (path: string) =>
  new RegExp(`^${path.split(/(:[A-Za-z0-9_]+)/).map((part, i) => (i % 2 ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('')}$`);

/**
 * 404 for an unknown path; 405 with Allow for a path some route serves under other methods.
 * `routes` is read on first use, when every route is registered (they never change afterwards).
 */
export function notFoundOrNotAllowed(routes: () => readonly RouteEntry[]): NotFoundHandler {
  let table: { pattern: RegExp; method: string }[] | null = null;
  return (c) => {
    table ??= routes().filter((r) => r.method !== 'ALL').map((r) => ({ pattern: pathPattern(r.path), method: r.method }));
    const methods = new Set(table.filter((r) => r.pattern.test(c.req.path)).map((r) => r.method));
    if (methods.size === 0) return answer(c, 404, 'Not found');
    if (methods.has('GET')) methods.add('HEAD'); // Hono answers HEAD with the GET route
    const allow = [...methods].sort().join(', ');
    c.header('allow', allow);
    return answer(c, 405, `Method ${c.req.method} is not allowed here; allowed: ${allow}`);
  };
}

/** Schema validation failures are bad input like any other: 400 naming the first issue. */
export const validationHook: Hook<unknown, Env, string, unknown> = (result) => {
  if (result.success) return;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  throw new AppError(400, `${where}${issue?.message ?? 'invalid request'}`);
};
