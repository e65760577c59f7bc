// The one error that crosses the HTTP edge: a status and a detail that is safe to show the client.
// It is Hono's HTTPException, so what Hono's own middleware throws (a malformed JSON body, …)
// takes the same path to the client: src/http/error-handler.ts maps both to { detail }.
// Anything else that reaches the edge is a 500 whose cause is logged, never shown.
import { HTTPException } from 'hono/http-exception';

export type ErrorStatus = 400 | 401 | 403 | 404 | 408 | 409 | 413 | 415 | 421 | 422 | 429 | 500 | 503;

export class AppError extends HTTPException {
  declare readonly status: ErrorStatus;

  constructor(
    status: ErrorStatus,
    readonly detail: string,
    /** Headers the answer carries (Retry-After on a 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message: detail });
    this.name = 'AppError';
  }
}

export const badRequest = (detail: string) => new AppError(400, detail);
export const notFound = (detail: string) => new AppError(404, detail);
