// One HTTP exchange on one fresh, checked connection: the only code that opens sockets to hosts
// named by users.
//
//   1. the host is resolved and every address checked (address-guard.ts);
//   2. a connection slot is taken for the address about to be connected to (host-limiter.ts),
//      so the per-host limit counts machines, not names; it is held for the whole exchange;
//   3. the socket connects to that checked IP itself (no second DNS lookup that could answer
//      differently), and on 'connect' the remote address is judged again before any byte is
//      written (TLS starts only after that check);
//   4. the request goes out with `connection: close` and `accept-encoding: identity`; the body
//      is read only when wanted, under a byte cap enforced while streaming.
// Connections are never pooled, so a socket checked for one host is never reused for another.
// Redirects are the caller's: each hop is a new exchange, checked and slotted again.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { bareHost, refuseConnected, resolveAllowed, type GuardLog, type ResolvedAddress, type Resolver } from './address-guard.js';
import { FetchError, mapNodeError, tooLarge } from './errors.js';
import type { HostLimiter, Release } from './host-limiter.js';
import { canonicalAddress, type Allowlist } from './private-network.js';
import type { Attempt } from './retry.js';

/** How to reach hosts: the same for every exchange of one download or post. */
export interface ConnectionSettings {
  allow: Allowlist;
  /** Limit on the DNS lookup, and on each TCP (+ TLS) connect. */
  connectTimeoutMs: number;
  resolve: Resolver | undefined;
  /** Per-destination-address connection slots (DOWNLOAD_PER_HOST); none: unlimited. */
  limiter: HostLimiter | undefined;
  /** where refused addresses are logged (debug) */
  log: GuardLog | undefined;
}

export interface ExchangeRequest extends ConnectionSettings {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
  maxBytes: number;
  /** read the body only for these statuses; otherwise resolve with headers and drop the socket */
  wantBody: (status: number) => boolean;
  /** the attempt's signal aborts on its total timeout or the caller's abort; its reason is a FetchError */
  attempt: Attempt;
}

export interface ExchangeResult {
  status: number;
  headers: IncomingHttpHeaders;
  bytes?: Uint8Array;
}

export function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Connection errors after which the next address of the host is worth a try. */
const TRY_NEXT_ADDRESS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export async function exchange(target: URL, rq: ExchangeRequest): Promise<ExchangeResult> {
  const { signal } = rq.attempt;
  if (signal.aborted) throw signal.reason;
  const host = bareHost(target.hostname);
  const addresses = await withTimeout(resolveAllowed(host, rq.allow, rq.resolve, rq.log), rq.connectTimeoutMs, signal);
  for (let i = 0; ; i++) {
    const address = addresses[i]!;
    const release = await takeSlot(address, rq);
    let socket: net.Socket;
    try {
      socket = await connectChecked(target, address, rq);
    } catch (e) {
      release();
      if (i + 1 < addresses.length && !signal.aborted && TRY_NEXT_ADDRESS.has(causeCode(e))) continue;
      throw e;
    }
    try {
      return await talk(target, socket, rq);
    } finally {
      release();
    }
  }
}

/** A slot for the address, waited for with the attempt's clock stopped. */
async function takeSlot(address: ResolvedAddress, rq: ExchangeRequest): Promise<Release> {
  const { limiter, attempt } = rq;
  if (!limiter) return () => {};
  try {
    const release = await attempt.untimed(() => limiter.acquire(canonicalAddress(address.address), attempt.signal));
    if (attempt.signal.aborted) {
      release();
      throw attempt.signal.reason;
    }
    return release;
  } catch (e) {
    throw attempt.signal.aborted ? attempt.signal.reason : e;
  }
}

function causeCode(e: unknown): string {
  const cause = e instanceof FetchError ? (e.cause as NodeJS.ErrnoException | undefined) : undefined;
  return typeof cause?.code === 'string' ? cause.code : '';
}

/** Rejects with the signal's reason on abort, or with a connect timeout after `ms`. */
function withTimeout<T>(work: Promise<T>, ms: number, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => finish(() => reject(signal.reason));
    const timer = setTimeout(
      () => finish(() => reject(new FetchError(`connect timed out after ${ms} ms`, 'timeout', true))),
      ms,
    );
    let done = false;
    function finish(settle: () => void): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    }
    signal.addEventListener('abort', onAbort, { once: true });
    work.then((v) => finish(() => resolve(v)), (e) => finish(() => reject(e)));
  });
}

/** TCP to the checked address, the remote address judged on connect, then TLS for https. */
function connectChecked(target: URL, to: ResolvedAddress, rq: ExchangeRequest): Promise<net.Socket> {
  const { signal } = rq.attempt;
  const host = bareHost(target.hostname);
  const isHttps = target.protocol === 'https:';
  const port = target.port ? Number(target.port) : isHttps ? 443 : 80;
  return new Promise<net.Socket>((resolve, reject) => {
    let done = false;
    let secure: tls.TLSSocket | undefined;
    const raw = net.connect({ host: to.address, port, family: to.family });
    // Errors after the connection is handed over reach the HTTP client's own listener; this one
    // only keeps an early error from becoming an uncaught exception.
    raw.on('error', (e) => finish(mapNodeError(e, host)));
    const onAbort = () => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => finish(new FetchError(`connect timed out after ${rq.connectTimeoutMs} ms`, 'timeout', true)),
      rq.connectTimeoutMs,
    );
    function finish(err: unknown, socket?: net.Socket): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (socket) return resolve(socket);
      secure?.destroy();
      raw.destroy();
      reject(err);
    }
    raw.once('connect', () => {
      const refused = refuseConnected(host, raw.remoteAddress, rq.allow, rq.log);
      if (refused) return finish(refused);
      if (!isHttps) return finish(null, raw);
      secure = tls.connect({
        socket: raw,
        host,
        ...(net.isIP(host) ? {} : { servername: host }),
        ALPNProtocols: ['http/1.1'],
      });
      secure.on('error', (e) => finish(mapNodeError(e, host)));
      secure.once('secureConnect', () => finish(null, secure));
    });
  });
}

/** The request and its response on a connected socket. Never throws synchronously. */
function talk(target: URL, socket: net.Socket, rq: ExchangeRequest): Promise<ExchangeResult> {
  const { signal } = rq.attempt;
  return new Promise<ExchangeResult>((resolvePromise, rejectPromise) => {
    let settled = false;
    let req: http.ClientRequest | undefined;
    let res: IncomingMessage | undefined;

    const onAbort = () => fail(signal.reason);
    function finish(): void {
      settled = true;
      signal.removeEventListener('abort', onAbort);
      res?.destroy();
      req?.destroy();
      socket.destroy();
    }
    function fail(e: unknown): void {
      if (settled) return;
      finish();
      rejectPromise(signal.aborted && signal.reason instanceof FetchError ? signal.reason : mapNodeError(e, target.hostname));
    }
    function succeed(v: ExchangeResult): void {
      if (settled) return;
      finish();
      resolvePromise(v);
    }

    if (signal.aborted) return fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    try {
      req = http.request({
        method: rq.method,
        path: `${target.pathname}${target.search}`,
        setHost: false,
        headers: {
          host: target.host,
          'accept-encoding': 'identity',
          connection: 'close',
          ...rq.headers,
        },
        createConnection: () => socket,
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
