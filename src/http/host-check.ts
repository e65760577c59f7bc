// DNS rebinding: a page on attacker.example can point its name at 127.0.0.1 after loading, and
// its requests then reach a service on the visitor's machine as same-origin (Host and Origin
// both say attacker.example). In open mode nothing else stops it, so a request must name one of
// the service's own hosts: the loopback names, PUBLIC_BASE_URL's host, or ALLOWED_HOSTS.
// Probes (/healthz, /readyz, /metrics) are exempt: orchestrators call them by pod or container
// address. With API_KEY set the key already stops such a page, and nothing is checked.
import type { MiddlewareHandler } from 'hono';
import { parseHost } from '../config.js';
import { AppError } from '../errors.js';

const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

export interface HostCheckOptions {
  /** API_KEY: when set, every host is accepted. */
  apiKey: string | undefined;
  publicBaseUrl: string;
  /** ALLOWED_HOSTS entries, `host` (any port) or `host:port`. */
  allowedHosts: readonly string[];
}

const isLoopbackName = (name: string) =>
  name === 'localhost' || name === '[::1]' || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(name);

export function hostCheck(opts: HostCheckOptions): MiddlewareHandler {
  if (opts.apiKey) return (_c, next) => next();
  const publicName = parseHost(new URL(opts.publicBaseUrl).host)?.name;
  const allowed = opts.allowedHosts.map(parseHost).filter((h) => h !== null);
  const isOwn = (host: string) => {
    const h = parseHost(host);
    if (!h) return false;
    if (isLoopbackName(h.name) || h.name === publicName) return true;
    return allowed.some((a) => a.name === h.name && (a.port === null || a.port === h.port));
  };
  return async (c, next) => {
    if (EXEMPT.has(c.req.path)) return next();
    const host = c.req.header('host') ?? new URL(c.req.url).host;
    if (!isOwn(host)) {
      throw new AppError(421, `Unknown host ${JSON.stringify(host.slice(0, 100))}: in open mode (no API_KEY) this service answers only to localhost, PUBLIC_BASE_URL's host and ALLOWED_HOSTS; add this host to ALLOWED_HOSTS to use it`);
    }
    return next();
  };
}
