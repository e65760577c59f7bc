// Validation of a webhook receiver URL at configure/upload time: absolute http(s), and a host
// that is (or resolves only to) addresses the SSRF guard allows. The guard checks again on
// every delivery (DNS may change), so this is an early, clear 400 rather than the only check.
import { badRequest } from '../errors.js';
import type { AllowlistInput } from '../net/index.js';
import { FetchError, preflightUrl, type Resolver } from '../net/index.js';

export const MAX_URL_LENGTH = 2048;

/**
 * Returns the normalised URL (fragment removed) or throws AppError 400 whose detail starts with
 * `field` (default "webhook_url"). Loopback, private, link-local and other non-global targets
 * are refused unless covered by `allowlist` (FETCH_ALLOWLIST).
 */
export async function assertDeliverableUrl(
  url: string,
  allowlist: AllowlistInput,
  opts: { field?: string; resolve?: Resolver } = {},
): Promise<string> {
  const field = opts.field ?? 'webhook_url';
  if (url.length > MAX_URL_LENGTH) throw badRequest(`${field}: longer than ${MAX_URL_LENGTH} characters`);
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw badRequest(`${field}: must be an absolute http(s) URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw badRequest(`${field}: must be an absolute http(s) URL (got ${parsed.protocol})`);
  }
  if (parsed.username || parsed.password) throw badRequest(`${field}: must not contain credentials`);
  parsed.hash = '';
  try {
    await preflightUrl(parsed.href, { allowlist, ...(opts.resolve ? { resolve: opts.resolve } : {}) });
  } catch (err) {
    if (err instanceof FetchError) {
      if (err.kind === 'blocked') throw badRequest(`${field}: refused, ${err.reason}`);
      throw badRequest(`${field}: ${err.reason}`);
    }
    throw err;
  }
  return parsed.href;
}
