// Shared-secret checks at the HTTP edge: the admin API key (caller.ts), the metrics token on /metrics.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A check of presented values against `secret` whose time says nothing about either. */
export function secretMatcher(secret: string): (given: string) => boolean {
  const expected = digest(secret);
  // Hashing first makes both sides the same length, so the comparison time says nothing.
  return (given) => timingSafeEqual(digest(given), expected);
}

export const bearerToken = (authorization: string | undefined) => authorization?.match(/^Bearer\s+(.+)$/i)?.[1];

/** Requires Authorization: Bearer equal to token; 401 (with WWW-Authenticate) when missing or wrong. */
export function requireBearerToken(token: string, realm: string): MiddlewareHandler {
  const matches = secretMatcher(token);
  return async (c, next) => {
    const given = bearerToken(c.req.header('authorization'));
    if (given === undefined || !matches(given)) {
      c.header('WWW-Authenticate', `Bearer realm="${realm}"`);
      throw new AppError(401, given === undefined ? 'Missing token: send Authorization: Bearer <token>' : 'Invalid token');
    }
    await next();
  };
}
