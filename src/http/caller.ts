// Who is calling: the tenant an /api/v1 request acts for. With API_KEY set, that key is the
// admin and keys made through /api/v1/keys are tenants; without it the service is open and
// every caller is the one implicit tenant, acting as admin. Ownership is checked against it.
import type { Context, MiddlewareHandler } from 'hono';
import { hashKey } from '../auth/api-keys.js';
import { AppError } from '../errors.js';
import { ADMIN_TENANT, type ApiKeyRecord, type Store } from '../store/types.js';
import { bearerToken, secretMatcher } from './auth.js';

export interface Caller {
  tenantId: string;
  admin: boolean;
  /** The key's own quotas (null: the settings'); none for the admin or in open mode. */
  quotas: { maxImagesInFlight: number | null; maxUploadsPerMinute: number | null } | null;
  /** false in open mode (no API_KEY): key management is refused there. */
  keyed: boolean;
}

declare module 'hono' {
  interface ContextVariableMap {
    caller: Caller;
  }
}

const OPEN: Caller = { tenantId: ADMIN_TENANT, admin: true, keyed: false, quotas: null };
/** A revoked key is refused by every server within this long. */
export const KEY_CACHE_MS = 1_000;

/** A header's value, or undefined when it is absent or empty (an empty one must not hide the other header). */
const present = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value.trim());

/** The answer to a missing or refused key: 401 naming the scheme, as RFC 9110 asks. */
const unauthorized = (detail: string) => new AppError(401, detail, { 'www-authenticate': 'Bearer realm="api"' });

/**
 * Sets the caller from X-API-Key (or Authorization: Bearer): the admin for API_KEY (compared
 * in constant time), the tenant of a live key, 401 for a missing, unknown or revoked one.
 * An empty header counts as absent.
 */
export function identifyCaller(opts: { apiKey: string | undefined; store: Store }): MiddlewareHandler {
  if (!opts.apiKey) {
    return async (c, next) => {
      c.set('caller', OPEN);
      await next();
    };
  }
  const isAdmin = secretMatcher(opts.apiKey);
  const cache = new Map<string, { key: ApiKeyRecord | null; until: number }>();
  const lookup = async (hash: string): Promise<ApiKeyRecord | null> => {
    const now = Date.now();
    const hit = cache.get(hash);
    if (hit && hit.until > now) return hit.key;
    const key = await opts.store.findKey(hash);
    if (cache.size > 10_000) cache.clear(); // bounded: unknown keys sent at random cannot grow it
    cache.set(hash, { key, until: now + KEY_CACHE_MS });
    return key;
  };
  return async (c, next) => {
    const given = present(c.req.header('x-api-key')) ?? present(bearerToken(c.req.header('authorization')));
    if (given === undefined) throw unauthorized('Missing API key: send X-API-Key or Authorization: Bearer');
    if (isAdmin(given)) {
      c.set('caller', { tenantId: ADMIN_TENANT, admin: true, keyed: true, quotas: null });
    } else {
      const key = await lookup(hashKey(given));
      if (!key) throw unauthorized('Invalid API key');
      c.set('caller', { tenantId: key.id, admin: false, keyed: true, quotas: { maxImagesInFlight: key.maxImagesInFlight, maxUploadsPerMinute: key.maxUploadsPerMinute } });
    }
    await next();
  };
}

/** The caller identifyCaller set; a route outside /api/v1 asking for one is a bug, not an admin. */
export function callerOf(c: Context): Caller {
  const caller = c.get('caller');
  if (!caller) throw new Error(`no caller identified for ${c.req.path}: the route is not behind identifyCaller`);
  return caller;
}

/** Whether the caller may see something owned by `tenantId` (the admin sees everything). */
export function mayAccess(caller: Caller, tenantId: string): boolean {
  return caller.admin || caller.tenantId === tenantId;
}

/** The tenant filter for a list: null (everything) for the admin. */
export function listScope(caller: Caller): string | null {
  return caller.admin ? null : caller.tenantId;
}
