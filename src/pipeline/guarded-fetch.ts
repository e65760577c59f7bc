// Safe outbound HTTP: the one seam where the service talks to hosts named by its users.
//
// Every request (image downloads and webhook deliveries) goes through the SSRF guard:
//   1. the URL must be absolute http(s); WHATWG URL normalises odd IPv4 spellings
//      (2130706433, 0x7f.1, 127.1 -> 127.0.0.1) before we look at the host;
//   2. IP-literal hosts are judged directly (Node skips `lookup` for them);
//      "localhost" / "*.localhost" are refused by name;
//   3. DNS names are resolved by our own `lookup`, and the connection is refused when ANY
//      returned address is forbidden (so the socket can only ever use checked addresses);
//   4. on 'connect' the socket's actual remote address is judged again (defence in depth,
//      before any byte is written), so DNS rebinding cannot pass;
//   5. every redirect hop goes through 1-4 again.
// Connections are never pooled (one socket per request, `connection: close`), so a socket that
// was checked for one host is never reused for another.
//
// Bodies are never decompressed (`accept-encoding: identity`); the byte cap is enforced while
// streaming; every failure becomes a FetchError with a short `reason` for the status page.
import { randomInt } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import {
  forbiddenHostName,
  isForbiddenAddress,
  toAllowlist,
  type Allowlist,
  type AllowlistInput,
} from './address-policy.js';

// ---- errors -------------------------------------------------------------------------------

export type FetchErrorKind =
  | 'invalid-url' // not an absolute http(s) URL
  | 'blocked' // SSRF guard refused the address
  | 'http' // the server answered with a non-2xx status
  | 'too-large' // byte cap exceeded (declared or streamed)
  | 'timeout' // connect or total timeout
  | 'network' // connection refused/reset, DNS failure, TLS failure, premature close
  | 'bad-response' // unparseable HTTP, unsupported content-encoding
  | 'redirect' // too many redirects, bad Location
  | 'aborted'; // the caller's AbortSignal fired

export class FetchError extends Error {
  override readonly name = 'FetchError';
  /** Short, human-readable, safe to show on the status page. Contains "blocked" for every SSRF refusal. */
  readonly reason: string;
  readonly kind: FetchErrorKind;
  /** Whether trying again later could succeed (timeouts, connection errors, 429, 5xx). */
  readonly retryable: boolean;
  /** HTTP status when kind === 'http'. */
  readonly status?: number;
  /** Parsed Retry-After, in ms, when the server sent one. */
  readonly retryAfterMs?: number;
  /** How many attempts were made before giving up (set by the retry loop). */
  attempts = 1;

  constructor(
    reason: string,
    kind: FetchErrorKind,
    retryable: boolean,
    extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(reason, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.reason = reason;
    this.kind = kind;
    this.retryable = retryable;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

// ---- options ------------------------------------------------------------------------------

/** Resolves a host name to addresses (injectable for tests; default: dns.lookup with all:true). */
export type Resolver = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export interface RetryInfo {
  /** the attempt that just failed (1-based) */
  attempt: number;
  /** how long we wait before the next attempt */
  delayMs: number;
  error: FetchError;
}

export interface GuardedRequestOptions {
  /** FETCH_ALLOWLIST: CIDRs exempt from the address block (parse once with parseAllowlist). */
  allowlist?: AllowlistInput;
  /** DNS + TCP (+ TLS) connect timeout per connection. Default 5000 (FETCH_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Total time for one attempt, including redirects and the whole body. Default 30000 (FETCH_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Extra attempts after the first, for retryable failures. Default 3 for downloads (FETCH_RETRIES), 0 for postJson. */
  retries?: number;
  /** Base of the exponential backoff (attempt n waits about base * 2^(n-1), with jitter). Default 500 (FETCH_RETRY_BASE_MS). */
  retryBaseMs?: number;
  /** Cap on any single wait, including one asked for by Retry-After. Default 30000. */
  maxRetryDelayMs?: number;
  /** Cancels everything, including a backoff wait. */
  signal?: AbortSignal;
  /** User-Agent header. */
  userAgent?: string;
  /** Host name resolver; default dns.lookup(all). Every address it returns is checked. */
  resolve?: Resolver;
  /** Called before each backoff wait (logging, tests). */
  onRetry?: (info: RetryInfo) => void;
}

export interface DownloadOptions extends GuardedRequestOptions {
  /** Byte cap (MAX_IMAGE_BYTES). Default 25 MiB. */
  maxBytes?: number;
  /** Redirect limit. Default 5. */
  maxRedirects?: number;
}

export type PostOptions = GuardedRequestOptions;

export interface DownloadResult {
  /** The body; backed by its own ArrayBuffer (safe to transfer to a worker). */
  bytes: Uint8Array;
  /** URL of the last hop (after redirects). */
  finalUrl: string;
  status: number;
  /** Content-Type header as sent (informational only: the format is decided by magic bytes). */
  contentType?: string;
}

export interface PostResult {
  status: number;
  /** From sending the request to receiving the response headers, of the last attempt. */
  durationMs: number;
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

// ---- public API ---------------------------------------------------------------------------

/**
 * GET an image: follows up to `maxRedirects` redirects (each hop re-checked), enforces the byte
 * cap while streaming, retries timeouts / connection errors / 429 / 5xx with backoff.
 * Resolves only for a 2xx final response; everything else rejects with a FetchError.
 */
export async function downloadImage(url: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const allow = toAllowlist(opts.allowlist);
  const start = parseHttpUrl(url);
  const maxBytes = opts.maxBytes ?? DEFAULTS.maxBytes;
  const maxRedirects = opts.maxRedirects ?? DEFAULTS.maxRedirects;
  return withRetries(opts, opts.retries ?? DEFAULTS.retries, async (signal) => {
    let current = start;
    for (let hops = 0; ; hops++) {
      const res = await exchange(current, {
        method: 'GET',
        headers: { accept: 'image/*,*/*;q=0.8', 'user-agent': opts.userAgent ?? DEFAULTS.userAgent },
        maxBytes,
        wantBody: (s) => s >= 200 && s < 300,
        allow,
        connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
        resolve: opts.resolve,
        signal,
      });
      if (isRedirect(res.status)) {
        const location = res.headers.location;
        if (!location) throw httpError(res.status, res.headers);
        if (hops + 1 > maxRedirects) throw new FetchError('too many redirects', 'redirect', false);
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
        current = next;
        continue;
      }
      if (res.status < 200 || res.status >= 300 || !res.bytes) throw httpError(res.status, res.headers);
      const ct = headerString(res.headers['content-type']);
      return { bytes: res.bytes, finalUrl: current.href, status: res.status, ...(ct ? { contentType: ct } : {}) };
    }
  });
}

/**
 * POST a JSON body (webhook delivery). Never follows redirects: any HTTP status, 3xx included,
 * is returned as is (the caller decides what counts as delivered). Rejects with a FetchError only
 * when no HTTP response was obtained (blocked, timeout, network). `retries` defaults to 0 because
 * the webhook dispatcher schedules its own retries; when set, only thrown retryable errors retry.
 */
export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string> = {},
  opts: PostOptions = {},
): Promise<PostResult> {
  const allow = toAllowlist(opts.allowlist);
  const target = parseHttpUrl(url);
  const payload = Buffer.from(body, 'utf8');
  return withRetries(opts, opts.retries ?? 0, async (signal) => {
    const started = performance.now();
    const res = await exchange(target, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': opts.userAgent ?? DEFAULTS.userAgent,
        ...lowerKeys(headers),
        'content-length': String(payload.length),
      },
      body: payload,
      maxBytes: 0,
      wantBody: () => false,
      allow,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      resolve: opts.resolve,
      signal,
    });
    return { status: res.status, durationMs: Math.round(performance.now() - started) };
  });
}

/**
 * Checks a URL without sending anything: absolute http(s), host not forbidden, and (for names)
 * every address DNS returns allowed. For validating webhook URLs at configure time.
 * Rejects with a FetchError (kind 'invalid-url' or 'blocked', or 'network' if DNS fails).
 */
export async function preflightUrl(
  url: string,
  opts: { allowlist?: AllowlistInput; resolve?: Resolver } = {},
): Promise<void> {
  const allow = toAllowlist(opts.allowlist);
  const target = parseHttpUrl(url);
  const host = bareHost(target.hostname);
  if (net.isIP(host)) {
    const v = isForbiddenAddress(host, allow);
    if (v.blocked) throw blockedError(v.reason);
    return;
  }
  const byName = forbiddenHostName(host);
  if (byName) throw blockedError(byName);
  let addrs: ReadonlyArray<{ address: string; family: number }>;
  try {
    addrs = await (opts.resolve ?? defaultResolve)(host);
  } catch (e) {
    throw mapNodeError(e, host);
  }
  checkResolved(host, addrs, allow);
}

/** Parses Retry-After (delta seconds or HTTP date) into ms from `now`; undefined if absent/invalid. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 86_400 * 365) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Backoff before attempt `failedAttempt + 1`: base*2^(n-1), half fixed + half random, capped; Retry-After wins when longer. */
export function backoffDelay(failedAttempt: number, baseMs: number, maxMs: number, retryAfterMs?: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(failedAttempt - 1, 30));
  const half = Math.floor(exp / 2);
  const jittered = half + (half > 0 ? randomInt(0, half + 1) : 0);
  if (retryAfterMs === undefined) return Math.min(jittered, maxMs);
  return Math.min(Math.max(retryAfterMs, jittered), maxMs);
}

// ---- internals ----------------------------------------------------------------------------

function parseHttpUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FetchError('invalid URL', 'invalid-url', false);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new FetchError(`unsupported URL scheme ${u.protocol} (only http and https)`, 'invalid-url', false);
  }
  if (!u.hostname) throw new FetchError('invalid URL: no host', 'invalid-url', false);
  u.hash = '';
  return u;
}

const bareHost = (hostname: string) =>
  hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;

const blockedError = (reason: string | undefined) =>
  new FetchError(reason ?? 'blocked: forbidden address', 'blocked', false);

const isRedirect = (s: number) => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function httpError(status: number, headers: IncomingHttpHeaders): FetchError {
  const retryable = status === 429 || (status >= 500 && status <= 599);
  const retryAfterMs = parseRetryAfter(headerString(headers['retry-after']));
  const reason = isRedirect(status) ? `HTTP ${status} without a Location header` : `HTTP ${status}`;
  return new FetchError(reason, 'http', retryable, {
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

const defaultResolve: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses);
    });
  });

function checkResolved(host: string, addrs: ReadonlyArray<{ address: string }>, allow: Allowlist): void {
  if (addrs.length === 0) throw new FetchError(`host not found: ${host}`, 'network', false);
  for (const a of addrs) {
    const v = isForbiddenAddress(a.address, allow);
    if (v.blocked) {
      throw blockedError(`blocked: ${host} resolves to ${a.address}, ${v.noun ? `a${/^[aeio]/i.test(v.noun) ? 'n' : ''} ${v.noun}` : 'a forbidden address'}`);
    }
  }
}

/** A net `lookup` that resolves, rejects if ANY address is forbidden, and answers in both callback shapes. */
function guardedLookup(allow: Allowlist, resolve: Resolver | undefined): net.LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const byName = forbiddenHostName(hostname);
    if (byName) {
      callback(blockedError(byName), '', 0);
      return;
    }
    (resolve ?? defaultResolve)(hostname).then(
      (addrs) => {
        try {
          checkResolved(hostname, addrs, allow);
        } catch (e) {
          callback(e as FetchError, '', 0);
          return;
        }
        const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = addrs
          .filter((a) => wanted === 0 || a.family === wanted)
          .map((a): LookupAddress => ({ address: a.address, family: a.family }));
        if (usable.length === 0) {
          callback(new FetchError(`host not found: ${hostname}`, 'network', false), '', 0);
          return;
        }
        if (options.all) callback(null, usable);
        else callback(null, usable[0]!.address, usable[0]!.family);
      },
      (err: unknown) => callback(mapNodeError(err, hostname), '', 0),
    );
  };
}

function mapNodeError(e: unknown, host?: string): FetchError {
  if (e instanceof FetchError) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  const code = typeof err?.code === 'string' ? err.code : '';
  switch (code) {
    case 'ENOTFOUND':
      return new FetchError(`host not found${host ? `: ${host}` : ''}`, 'network', false, { cause: e });
    case 'EAI_AGAIN':
      return new FetchError(`DNS lookup failed${host ? ` for ${host}` : ''} (temporary)`, 'network', true, { cause: e });
    case 'ECONNREFUSED':
      return new FetchError('connection refused', 'network', true, { cause: e });
    case 'ECONNRESET':
    case 'EPIPE':
      return new FetchError('connection reset', 'network', true, { cause: e });
    case 'ETIMEDOUT':
      return new FetchError('connection timed out', 'timeout', true, { cause: e });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new FetchError('host unreachable', 'network', true, { cause: e });
  }
  if (code.startsWith('HPE_') || code === 'ERR_INVALID_HTTP_RESPONSE') {
    return new FetchError(`invalid HTTP response (${code})`, 'bad-response', false, { cause: e });
  }
  if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) {
    return new FetchError(`TLS error (${code})`, 'network', false, { cause: e });
  }
  const msg = err?.message ? String(err.message).slice(0, 120) : 'unknown error';
  return new FetchError(`network error: ${code || msg}`, 'network', true, { cause: e });
}

interface ExchangeRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
  maxBytes: number;
  /** read the body only for these statuses; otherwise resolve with headers and drop the socket */
  wantBody: (status: number) => boolean;
  allow: Allowlist;
  connectTimeoutMs: number;
  resolve: Resolver | undefined;
  /** aborted by the attempt's total timeout or by the caller; its reason is a FetchError */
  signal: AbortSignal;
}

interface ExchangeResult {
  status: number;
  headers: IncomingHttpHeaders;
  bytes?: Uint8Array;
}

/** One HTTP request/response on one fresh, checked connection. Never throws synchronously. */
function exchange(target: URL, rq: ExchangeRequest): Promise<ExchangeResult> {
  return new Promise<ExchangeResult>((resolvePromise, rejectPromise) => {
    let settled = false;
    let connectTimer: NodeJS.Timeout | undefined;
    let req: http.ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    let socket: net.Socket | undefined;

    const onAbort = () => fail(rq.signal.reason);
    const cleanup = () => {
      if (connectTimer) clearTimeout(connectTimer);
      rq.signal.removeEventListener('abort', onAbort);
    };
    function fail(e: unknown): void {
      if (settled) return;
      settled = true;
      cleanup();
      const err = rq.signal.aborted && rq.signal.reason instanceof FetchError ? rq.signal.reason : mapNodeError(e, target.hostname);
      res?.destroy();
      req?.destroy();
      socket?.destroy();
      rejectPromise(err);
    }
    function succeed(v: ExchangeResult): void {
      if (settled) return;
      settled = true;
      cleanup();
      res?.destroy();
      req?.destroy();
      socket?.destroy();
      resolvePromise(v);
    }

    if (rq.signal.aborted) {
      fail(rq.signal.reason);
      return;
    }
    rq.signal.addEventListener('abort', onAbort, { once: true });

    try {
      const host = bareHost(target.hostname);
      const isHttps = target.protocol === 'https:';
      const port = target.port ? Number(target.port) : isHttps ? 443 : 80;
      const literal = net.isIP(host) !== 0;
      if (literal) {
        const v = isForbiddenAddress(host, rq.allow);
        if (v.blocked) return fail(blockedError(v.reason));
      } else {
        const byName = forbiddenHostName(host);
        if (byName) return fail(blockedError(byName));
      }

      const createConnection = (): net.Socket => {
        const lookup = guardedLookup(rq.allow, rq.resolve);
        const s: net.Socket = isHttps
          ? tls.connect({
              host,
              port,
              lookup,
              ALPNProtocols: ['http/1.1'],
              ...(literal ? {} : { servername: host }),
            })
          : net.connect({ host, port, lookup });
        socket = s;
        // Runs before anything else listening for 'connect' (TLS hello, buffered request bytes).
        s.prependOnceListener('connect', () => {
          const remote = s.remoteAddress;
          const v = remote ? isForbiddenAddress(remote, rq.allow) : { blocked: true, reason: undefined };
          if (v.blocked) {
            const err = blockedError(v.reason ?? 'blocked: could not verify the connected address');
            s.destroy(err);
            fail(err);
          }
        });
        s.once(isHttps ? 'secureConnect' : 'connect', () => {
          if (connectTimer) clearTimeout(connectTimer);
          connectTimer = undefined;
        });
        connectTimer = setTimeout(() => {
          fail(new FetchError(`connect timed out after ${rq.connectTimeoutMs} ms`, 'timeout', true));
        }, rq.connectTimeoutMs);
        s.on('error', (e) => fail(e));
        return s;
      };

      req = http.request({
        method: rq.method,
        host,
        port,
        path: `${target.pathname}${target.search}`,
        setHost: false,
        headers: {
          host: target.host,
          'accept-encoding': 'identity',
          connection: 'close',
          ...rq.headers,
        },
        createConnection,
      });
      req.on('error', (e) => fail(e));
      req.on('response', (r) => {
        res = r;
        r.on('error', (e) => fail(e));
        const status = r.statusCode ?? 0;
        if (!rq.wantBody(status)) return succeed({ status, headers: r.headers });
        const enc = headerString(r.headers['content-encoding'])?.trim().toLowerCase();
        if (enc && enc !== 'identity') {
          return fail(new FetchError(`unsupported content-encoding: ${enc.slice(0, 40)}`, 'bad-response', false));
        }
        const declared = Number(headerString(r.headers['content-length']));
        if (Number.isFinite(declared) && declared > rq.maxBytes) return fail(tooLarge(rq.maxBytes));
        // With a declared length, fill one buffer in place (peak memory = the body, not twice it).
        const prealloc = Number.isFinite(declared) && declared >= 0 && status !== 204 ? new Uint8Array(declared) : undefined;
        const chunks: Buffer[] = [];
        let total = 0;
        r.on('data', (chunk: Buffer) => {
          if (settled) return;
          if (total + chunk.length > rq.maxBytes) return fail(tooLarge(rq.maxBytes));
          if (prealloc) {
            if (total + chunk.length > prealloc.length) {
              return fail(new FetchError('invalid HTTP response (body longer than Content-Length)', 'bad-response', false));
            }
            prealloc.set(chunk, total);
          } else {
            chunks.push(chunk);
          }
          total += chunk.length;
        });
        r.on('end', () => {
          if (!r.complete || (prealloc && total !== prealloc.length)) {
            return fail(new FetchError('connection closed before the body was complete', 'network', true));
          }
          let out = prealloc;
          if (!out) {
            out = new Uint8Array(total);
            let off = 0;
            for (const c of chunks) {
              out.set(c, off);
              off += c.length;
            }
          }
          succeed({ status, headers: r.headers, bytes: out });
        });
        r.on('close', () => {
          if (!settled) fail(new FetchError('connection closed before the body was complete', 'network', true));
        });
      });
      req.on('close', () => {
        if (!settled && !res) fail(new FetchError('connection closed before a response', 'network', true));
      });
      req.end(rq.body);
    } catch (e) {
      fail(e);
    }
  });
}

const tooLarge = (max: number) => new FetchError(`too large: more than ${max} bytes`, 'too-large', false);

/** Runs attempts with a total timeout each, retrying retryable FetchErrors with backoff. */
async function withRetries<T>(
  opts: GuardedRequestOptions,
  retries: number,
  attemptFn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
  const base = opts.retryBaseMs ?? DEFAULTS.retryBaseMs;
  const maxDelay = opts.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs;
  const outer = opts.signal;
  for (let attempt = 1; ; attempt++) {
    if (outer?.aborted) throw finalError(abortedError(), attempt - 1 || 1);
    const ctl = new AbortController();
    const onOuter = () => ctl.abort(abortedError());
    outer?.addEventListener('abort', onOuter, { once: true });
    const timer = setTimeout(
      () => ctl.abort(new FetchError(`timed out after ${timeoutMs} ms`, 'timeout', true)),
      timeoutMs,
    );
    let err: FetchError;
    try {
      return await attemptFn(ctl.signal);
    } catch (e) {
      err = e instanceof FetchError ? e : mapNodeError(e);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    }
    if (!err.retryable || attempt > retries || outer?.aborted) throw finalError(err, attempt);
    const delayMs = backoffDelay(attempt, base, maxDelay, err.retryAfterMs);
    try {
      opts.onRetry?.({ attempt, delayMs, error: err });
    } catch {
      // a faulty hook must not break the fetch
    }
    try {
      await sleep(delayMs, outer);
    } catch {
      throw finalError(abortedError(), attempt);
    }
  }
}

const abortedError = () => new FetchError('aborted', 'aborted', false);

function finalError(err: FetchError, attempts: number): FetchError {
  if (attempts <= 1 || err.kind === 'aborted') {
    err.attempts = attempts;
    return err;
  }
  const out = new FetchError(`${err.reason} (after ${attempts} attempts)`, err.kind, err.retryable, {
    ...(err.status !== undefined ? { status: err.status } : {}),
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    cause: err,
  });
  out.attempts = attempts;
  return out;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
