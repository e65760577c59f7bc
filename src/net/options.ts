// Options shared by every outbound request (downloads and webhook posts), and their defaults.
import type { GuardLog, Resolver } from './address-guard.js';
import type { HostLimiter } from './host-limiter.js';
import { toAllowlist, type AllowlistInput } from './private-network.js';
import type { RetryInfo, RetryOptions } from './retry.js';
import type { ConnectionSettings } from './transport.js';

export interface GuardedRequestOptions {
  /** FETCH_ALLOWLIST: CIDRs exempt from the address block (parse once with parseAllowlist). */
  allowlist?: AllowlistInput;
  /** Limit on the DNS lookup, and on each TCP (+ TLS) connect. Default 5000 (FETCH_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /**
   * Total time for one attempt, including redirects and the whole body, but not time spent
   * waiting for a connection slot of `limiter`. Default 30000 (FETCH_TIMEOUT_MS).
   */
  timeoutMs?: number;
  /** Extra attempts after the first, for retryable failures. Default 3 for downloads (FETCH_RETRIES), 0 for postJson. */
  retries?: number;
  /** Base of the exponential backoff (attempt n waits about base * 2^(n-1), with jitter). Default 500 (FETCH_RETRY_BASE_MS). */
  retryBaseMs?: number;
  /** Cap on any single wait, including one asked for by Retry-After. Default 30000. */
  maxRetryDelayMs?: number;
  /** Cancels everything, including a backoff wait and a wait for a connection slot. */
  signal?: AbortSignal;
  /** User-Agent header. */
  userAgent?: string;
  /** Host name resolver; default dns.lookup(all). Every address it returns is checked. */
  resolve?: Resolver;
  /**
   * Connection slots per destination IP address (DOWNLOAD_PER_HOST) and overall: each exchange
   * holds one for the address it connects to. Default: no limit.
   */
  limiter?: HostLimiter;
  /** Called before each backoff wait (logging, tests). */
  onRetry?: (info: RetryInfo) => void;
  /** Where refused addresses are logged (debug level only); they never appear in a FetchError. */
  log?: GuardLog;
}

export const DEFAULTS = {
  connectTimeoutMs: 5_000,
  timeoutMs: 30_000,
  retries: 3,
  retryBaseMs: 500,
  maxRetryDelayMs: 30_000,
  maxBytes: 25 * 1024 * 1024,
  maxRedirects: 5,
  userAgent: 'image-csv-processor/0.1',
} as const;

/** The transport's settings from request options (the allowlist parsed here, once per request). */
export function connectionSettings(opts: GuardedRequestOptions): ConnectionSettings {
  return {
    allow: toAllowlist(opts.allowlist),
    connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    resolve: opts.resolve,
    limiter: opts.limiter,
    log: opts.log,
  };
}

/** The retry loop's settings from request options, with `retries` defaulting to `defaultRetries`. */
export function retryOptions(opts: GuardedRequestOptions, defaultRetries: number): RetryOptions {
  return {
    timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
    retries: opts.retries ?? defaultRetries,
    retryBaseMs: opts.retryBaseMs ?? DEFAULTS.retryBaseMs,
    maxRetryDelayMs: opts.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs,
    signal: opts.signal,
    onRetry: opts.onRetry,
  };
}
