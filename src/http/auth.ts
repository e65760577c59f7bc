import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Requires X-API-Key (or Authorization: Bearer) equal to apiKey, compared in constant time. */
export function requireApiKey(apiKey: string): MiddlewareHandler {
  const expected = digest(apiKey);
  return async (c, next) => {
    const bearer = c.req.header('authorization')?.match(/^Bearer\s+(.+)$/i)?.[1];
    const given = c.req.header('x-api-key') ?? bearer;
    if (given === undefined) throw new AppError(401, 'Missing API key: send X-API-Key or Authorization: Bearer');
    // Hashing first makes both sides the same length, so the comparison time says nothing.
    if (!timingSafeEqual(digest(given), expected)) throw new AppError(403, 'Invalid API key');
    await next();
  };
}
