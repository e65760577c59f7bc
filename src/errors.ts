// Errors that may cross the HTTP edge. Anything else that reaches the edge is a 500.
export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 408 | 409 | 413 | 415 | 500 | 503,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'AppError';
  }
}

export const badRequest = (detail: string) => new AppError(400, detail);
export const notFound = (detail: string) => new AppError(404, detail);
