// The only runtime-specific piece: start an HTTP server for a web-standard fetch handler on
// Node (@hono/node-server), Bun (Bun.serve) or Deno (Deno.serve), with the connection limits
// each runtime lets us set.
//
//   limit              Node                               Bun                     Deno
//   headers timeout    headersTimeout (408, closed)       idleTimeout only        -
//   request timeout    own timer per request (408)        answer deadline (408)   answer deadline (408)
//   keep-alive idle    keepAliveTimeout                   idleTimeout only        -
//   max connections    server.maxConnections              -                       -
//   cut-off body       closed after the answer            closed after the answer read to its end
// Node's own requestTimeout is off: it would cut long uploads, which are held to a minimum
// rate instead (src/ingest/multipart.ts). Bun and Deno expose no header or connection limits,
// and Deno keeps reading a body it no longer wants: run them behind a proxy that has those
// limits when clients are untrusted.
import type { IncomingMessage, ServerResponse } from 'node:http';

type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface RunningServer {
  port: number;
  runtime: 'node' | 'bun' | 'deno';
  /** Stops accepting connections; resolves when open requests have finished. */
  close(): Promise<void>;
}

export interface ConnectionLimits {
  /** Time a client has to send a request's headers (HTTP_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs: number;
  /** Time a client has to send the rest of a request once its headers are in (HTTP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** Idle time before a kept-alive connection is closed (HTTP_KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs: number;
  /** Connections open at once; more are closed as they arrive (HTTP_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Requests exempt from requestTimeoutMs: streamed uploads, held to a minimum rate instead. */
  untimed?: (method: string, path: string) => boolean;
}

export interface ServeOptions {
  port: number;
  hostname: string;
  maxBodyBytes: number;
  /** Limits on client connections; without them each runtime's defaults apply. */
  limits?: ConnectionLimits;
}

declare const Bun: { serve(options: Record<string, unknown>): { port: number; stop(closeActive?: boolean): Promise<void> | void } } | undefined;
declare const Deno: {
  serve(options: Record<string, unknown>, handler: FetchHandler): { addr: { port: number }; shutdown(): Promise<void>; finished: Promise<void> };
} | undefined;

export function currentRuntime(): RunningServer['runtime'] {
  if (typeof Bun !== 'undefined') return 'bun';
  if (typeof Deno !== 'undefined') return 'deno';
  return 'node';
}

const requestTimeoutBody = (ms: number) => JSON.stringify({ detail: `request timeout: the request was not received within ${ms} ms` });

export async function serve(fetch: FetchHandler, opts: ServeOptions): Promise<RunningServer> {
  const runtime = currentRuntime();
  const limits = opts.limits;
  if (runtime === 'bun') {
    // The body limit is enforced while streaming by the upload route; Bun's own cap sits above it.
    const server = Bun!.serve({
      fetch: limits ? withAnswerDeadline(fetch, limits) : fetch,
      port: opts.port, hostname: opts.hostname, maxRequestBodySize: opts.maxBodyBytes * 2, idleTimeout: 120,
    });
    return { port: server.port, runtime, close: async () => { await server.stop(); } };
  }
  if (runtime === 'deno') {
    let shutdown: () => Promise<void> = async () => {};
    const port = await new Promise<number>((resolve) => {
      const handler = limits ? withAnswerDeadline(fetch, limits) : fetch;
      const server = Deno!.serve({ port: opts.port, hostname: opts.hostname, onListen: (addr: { port: number }) => resolve(addr.port) }, handler);
      shutdown = () => server.shutdown();
    });
    return { port, runtime, close: () => shutdown() };
  }
  const { serve: nodeServe } = await import('@hono/node-server');
  return new Promise((resolve, reject) => {
    // A listen error (port in use, address not available) fails start-up instead of being thrown
    // as an uncaught 'error' event with this promise left pending.
    const onListenError = (err: Error) => reject(err);
    const server = nodeServe({
      fetch, port: opts.port, hostname: opts.hostname,
      ...(limits ? {
        serverOptions: {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: 0,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          // How often Node looks for requests past headersTimeout (its default, 30 s, would let
          // a slow client hold a connection up to that much longer).
          connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(limits.headersTimeoutMs / 4))),
        },
      } : {}),
    }, (info) => {
      server.off('error', onListenError);
      resolve({
        port: info.port,
        runtime,
        close: () => new Promise((done) => {
          server.close(() => done());
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        }),
      });
    });
    if (limits) {
      server.maxConnections = limits.maxConnections;
      server.on('request', (req: IncomingMessage, res: ServerResponse) => timeRequest(req, res, limits));
    }
    server.once('error', onListenError);
  });
}

/** Node: a request whose body is not in `requestTimeoutMs` after its headers is answered 408 and its connection closed. */
function timeRequest(req: IncomingMessage, res: ServerResponse, limits: ConnectionLimits): void {
  const path = (req.url ?? '/').split('?')[0]!;
  if (limits.untimed?.(req.method ?? 'GET', path)) return;
  const timer = setTimeout(() => {
    if (req.complete) return;
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    // `connection: close` makes Node end the socket once this answer is out.
    const body = requestTimeoutBody(limits.requestTimeoutMs);
    res.writeHead(408, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  }, limits.requestTimeoutMs);
  timer.unref();
  res.once('close', () => clearTimeout(timer));
}

/**
 * Bun and Deno: a request with a body gets `requestTimeoutMs` for its answer, which covers
 * receiving the body; then it is answered 408. An answer that cut a body off (408, 413) asks for
 * the connection to be closed, so the client cannot go on trickling into it (Bun closes it; Deno
 * reads the rest of the body regardless).
 */
export function withAnswerDeadline(fetch: FetchHandler, limits: ConnectionLimits): FetchHandler {
  return async (request) => {
    if (!request.body) return fetch(request);
    if (limits.untimed?.(request.method, new URL(request.url).pathname)) return closeIfCutOff(await fetch(request));
    const answer = await new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => {
        request.body?.cancel().catch(() => {}); // refused while the handler reads it: it ends with the connection
        resolve(new Response(requestTimeoutBody(limits.requestTimeoutMs), { status: 408, headers: { 'content-type': 'application/json' } }));
      }, limits.requestTimeoutMs);
      Promise.resolve()
        .then(() => fetch(request))
        .then(
          (res) => {
            clearTimeout(timer);
            resolve(res);
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err);
          },
        );
    });
    return closeIfCutOff(answer);
  };
}

function closeIfCutOff(res: Response): Response {
  if (res.status !== 408 && res.status !== 413) return res;
  const headers = new Headers(res.headers);
  headers.set('connection', 'close');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
