// Image downloads: GET through the guarded transport, following redirects (each hop checked and
// slotted again), retrying what may succeed later.
import type { IncomingHttpHeaders } from 'node:http';
import { parseHttpUrl } from './address-guard.js';
import { FetchError } from './errors.js';
import { connectionSettings, DEFAULTS, retryOptions, type GuardedRequestOptions } from './options.js';
import { parseRetryAfter, withRetries } from './retry.js';
import { exchange, headerString } from './transport.js';

export interface DownloadOptions extends GuardedRequestOptions {
  /** Byte cap (MAX_IMAGE_BYTES). Default 25 MiB. */
  maxBytes?: number;
  /** Redirect limit. Default 5. */
  maxRedirects?: number;
}

/** What an earlier download of the URL answered (sent back as If-None-Match / If-Modified-Since). */
export interface Validators {
  etag: string | null;
  lastModified: string | null;
}

export interface DownloadResult {
  /** The body; backed by its own ArrayBuffer (safe to transfer to a worker). */
  bytes: Uint8Array;
  /** URL of the last hop (after redirects). */
  finalUrl: string;
  status: number;
  /** Content-Type header as sent (informational only: the format is decided by magic bytes). */
  contentType?: string;
  /** Validators to ask with next time (ETag, Last-Modified), when the server sent them. */
  etag: string | null;
  lastModified: string | null;
}

/** The server said the image has not changed since the validators given (304). */
export interface NotModified {
  notModified: true;
  finalUrl: string;
}

/**
 * GET an image: follows up to `maxRedirects` redirects (each hop re-checked), enforces the byte
 * cap while streaming, retries timeouts / connection errors / 429 / 5xx with backoff.
 * Resolves only for a 2xx final response; everything else rejects with a FetchError.
 */
export async function downloadImage(url: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  return download(url, opts, null) as Promise<DownloadResult>;
}

/** downloadImage, asking the server whether the image changed since `validators` (304: NotModified, no body). */
export async function downloadIfChanged(url: string, validators: Validators, opts: DownloadOptions = {}): Promise<DownloadResult | NotModified> {
  return download(url, opts, validators);
}

async function download(url: string, opts: DownloadOptions, ifChanged: Validators | null): Promise<DownloadResult | NotModified> {
  const start = parseHttpUrl(url);
  const connection = connectionSettings(opts);
  const maxBytes = opts.maxBytes ?? DEFAULTS.maxBytes;
  const maxRedirects = opts.maxRedirects ?? DEFAULTS.maxRedirects;
  return withRetries(retryOptions(opts, DEFAULTS.retries), async (attempt) => {
    let current = start;
    for (let hops = 0; ; hops++) {
      const res = await exchange(current, {
        ...connection,
        method: 'GET',
        headers: { accept: 'image/*,*/*;q=0.8', 'user-agent': opts.userAgent ?? DEFAULTS.userAgent, ...conditionalHeaders(ifChanged) },
        maxBytes,
        wantBody: (s) => s >= 200 && s < 300,
        attempt,
      });
      if (isRedirect(res.status)) {
        current = nextHop(current, res, hops + 1, maxRedirects);
        continue;
      }
      if (res.status === 304 && ifChanged) return { notModified: true as const, finalUrl: current.href };
      if (res.status < 200 || res.status >= 300 || !res.bytes) throw httpError(res.status, res.headers);
      const ct = headerString(res.headers['content-type']);
      return {
        bytes: res.bytes, finalUrl: current.href, status: res.status, ...(ct ? { contentType: ct } : {}),
        etag: headerString(res.headers.etag) ?? null, lastModified: headerString(res.headers['last-modified']) ?? null,
      };
    }
  });
}

function conditionalHeaders(v: Validators | null): Record<string, string> {
  if (!v) return {};
  return { ...(v.etag ? { 'if-none-match': v.etag } : {}), ...(v.lastModified ? { 'if-modified-since': v.lastModified } : {}) };
}

function nextHop(current: URL, res: { status: number; headers: IncomingHttpHeaders }, hops: number, maxRedirects: number): URL {
  const location = res.headers.location;
  if (!location) throw httpError(res.status, res.headers);
  if (hops > maxRedirects) throw new FetchError('too many redirects', 'redirect', false);
  let next: URL;
  try {
    next = new URL(location, current);
  } catch {
    throw new FetchError('redirect to an invalid URL', 'redirect', false);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new FetchError(`redirect to a non-http(s) URL (${next.protocol})`, 'redirect', false);
  }
  next.hash = '';
  return next;
}

const isRedirect = (s: number) => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;

function httpError(status: number, headers: IncomingHttpHeaders): FetchError {
  const retryable = status === 429 || (status >= 500 && status <= 599);
  const retryAfterMs = parseRetryAfter(headerString(headers['retry-after']));
  const reason = isRedirect(status) ? `HTTP ${status} without a Location header` : `HTTP ${status}`;
  return new FetchError(reason, 'http', retryable, {
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}
