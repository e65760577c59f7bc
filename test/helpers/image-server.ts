// A local HTTP server for tests: serves registered images and misbehaves on purpose.
//
//   const srv = await startImageServer({ host: '127.0.0.9' });   // default 127.0.0.1, port 0
//   srv.serve('/cat.jpg', jpegBytes, 'image/jpeg');
//   await downloadImage(srv.url('/cat.jpg'), { allowlist: [srv.cidr] });
//   srv.hits('/cat.jpg')  // -> 1
//   await srv.close();
//
// Built-in routes (see BUILTIN) are always present; any path can also be given a behaviour
// with srv.set(path, behaviour) or the helpers (serve, failThen, rateLimitThen, redirect, ...).
// Paths are matched without the query string. Counts are per path.
// Tests only ever send traffic to loopback addresses (127.0.0.0/8, ::1).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';

export type Body = Uint8Array | string;

export type Behaviour =
  /** a normal response */
  | { kind: 'bytes'; body: Body; type?: string; status?: number; headers?: Record<string, string> }
  /** declares `declaredLength` (default body.length * 2) bytes, sends `body`, then drops the connection */
  | { kind: 'truncated'; body: Body; type?: string; declaredLength?: number }
  /** streams `chunkSize` bytes at a time forever, until the client disconnects (no Content-Length) */
  | { kind: 'endless'; type?: string; chunkSize?: number }
  /** accepts the request and never answers */
  | { kind: 'hang' }
  /** answers `status` (default 500) for the first `failures` requests to this path, then behaves as `then` */
  | { kind: 'fail-then'; failures: number; status?: number; then: Behaviour }
  /** answers 429 with Retry-After for the first `failures` (default 1) requests, then `then` */
  | { kind: 'rate-limit-then'; retryAfter: string; failures?: number; then: Behaviour }
  /** redirect (default 302) to `to` (absolute or relative) */
  | { kind: 'redirect'; to: string; status?: number }
  /** sends headers at once, then `bytesPerTick` (default 1) bytes every `intervalMs` */
  | { kind: 'slow-drip'; body: Body; intervalMs: number; bytesPerTick?: number; type?: string }
  /** full control */
  | { kind: 'handler'; fn: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void };

/** Paths that exist on every server. */
export const BUILTIN = {
  /** 404 Not Found (any unknown path is a 404 too) */
  notFound: '/_/404',
  /** an HTML page labelled image/jpeg */
  htmlAsJpeg: '/_/html-as-jpeg',
  /** Content-Length 1000, 100 bytes sent, connection dropped */
  truncated: '/_/truncated',
  /** an endless body (stops when the client disconnects) */
  endless: '/_/endless',
  /** never answers */
  hang: '/_/hang',
  /** /_/loop/a -> /_/loop/b -> /_/loop/a -> ... */
  loop: '/_/loop/a',
  /** 302 to the URL in `?to=` (use redirectUrl()) */
  redirect: '/_/redirect',
  /** headers, then one byte every 50 ms of a 1000-byte body */
  slowDrip: '/_/slow',
  /** Content-Length: 10 GiB, tiny real body */
  hugeLength: '/_/huge-length',
} as const;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** the request body (capped at 1 MiB) */
  body: Buffer;
}

export interface ImageServer {
  /** the address listened on, e.g. "127.0.0.9" or "::1" */
  readonly host: string;
  readonly port: number;
  /** e.g. "http://127.0.0.9:41234" (IPv6 hosts in brackets) */
  readonly origin: string;
  /** a CIDR matching exactly this server's address, for the fetch allowlist: "127.0.0.9/32" or "::1/128" */
  readonly cidr: string;
  /** absolute URL for a path on this server */
  url(path: string): string;
  /** absolute URL of BUILTIN.redirect pointing at `target` */
  redirectUrl(target: string): string;
  /** sets a path's behaviour (replaces any previous one, keeps its request count) */
  set(path: string, behaviour: Behaviour): void;
  serve(path: string, body: Body, type?: string, headers?: Record<string, string>): void;
  failThen(path: string, failures: number, then: Behaviour, status?: number): void;
  rateLimitThen(path: string, retryAfter: string, then: Behaviour, failures?: number): void;
  redirect(path: string, to: string, status?: number): void;
  /** requests received for a path (query ignored) */
  hits(path: string): number;
  /** every request received, oldest first */
  readonly requests: readonly RecordedRequest[];
  /** connections accepted so far */
  readonly connections: number;
  /** forgets counts and recorded requests (behaviours stay) */
  reset(): void;
  /** stops listening, destroys open sockets and timers */
  close(): Promise<void>;
}

export interface ImageServerOptions {
  /** loopback address to listen on; default 127.0.0.1 */
  host?: string;
  /** default 0 (a free port) */
  port?: number;
}

const HTML = '<!doctype html><html><body><h1>Not an image</h1></body></html>';

export async function startImageServer(options: ImageServerOptions = {}): Promise<ImageServer> {
  const host = options.host ?? '127.0.0.1';
  const routes = new Map<string, Behaviour>();
  const counts = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  let closing = false;

  const builtins: Record<string, Behaviour> = {
    [BUILTIN.notFound]: { kind: 'bytes', status: 404, body: 'not found', type: 'text/plain' },
    [BUILTIN.htmlAsJpeg]: { kind: 'bytes', body: HTML, type: 'image/jpeg' },
    [BUILTIN.truncated]: { kind: 'truncated', body: new Uint8Array(100).fill(0xff), declaredLength: 1000, type: 'image/jpeg' },
    [BUILTIN.endless]: { kind: 'endless', type: 'image/jpeg' },
    [BUILTIN.hang]: { kind: 'hang' },
    '/_/loop/a': { kind: 'redirect', to: '/_/loop/b' },
    '/_/loop/b': { kind: 'redirect', to: '/_/loop/a' },
    [BUILTIN.slowDrip]: { kind: 'slow-drip', body: new Uint8Array(1000).fill(0xab), intervalMs: 50, type: 'image/jpeg' },
    [BUILTIN.hugeLength]: {
      kind: 'handler',
      fn: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(10 * 1024 ** 3) });
        res.write(new Uint8Array(16));
        // then nothing: the client is expected to refuse on the header alone
      },
    },
  };

  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  };

  function respond(b: Behaviour, req: IncomingMessage, res: ServerResponse, body: Buffer, nth: number, url: URL): void {
    switch (b.kind) {
      case 'bytes': {
        const data = typeof b.body === 'string' ? Buffer.from(b.body) : b.body;
        res.writeHead(b.status ?? 200, {
          'content-type': b.type ?? 'application/octet-stream',
          'content-length': String(data.length),
          ...b.headers,
        });
        res.end(data);
        return;
      }
      case 'truncated': {
        const data = typeof b.body === 'string' ? Buffer.from(b.body) : b.body;
        res.writeHead(200, {
          'content-type': b.type ?? 'application/octet-stream',
          'content-length': String(b.declaredLength ?? data.length * 2),
        });
        res.write(data, () => later(() => res.socket?.destroy(), 10));
        return;
      }
      case 'endless': {
        const chunk = Buffer.alloc(b.chunkSize ?? 64 * 1024, 0xd8);
        res.writeHead(200, { 'content-type': b.type ?? 'application/octet-stream' });
        const pump = () => {
          while (!res.destroyed && !closing) {
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
        };
        res.on('error', () => {});
        pump();
        return;
      }
      case 'hang':
        return; // socket stays open until the client gives up or close() destroys it
      case 'fail-then': {
        if (nth <= b.failures) {
          res.writeHead(b.status ?? 500, { 'content-type': 'text/plain' });
          res.end(`failure ${nth}`);
          return;
        }
        respond(b.then, req, res, body, nth - b.failures, url);
        return;
      }
      case 'rate-limit-then': {
        const failures = b.failures ?? 1;
        if (nth <= failures) {
          res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': b.retryAfter });
          res.end('slow down');
          return;
        }
        respond(b.then, req, res, body, nth - failures, url);
        return;
      }
      case 'redirect': {
        res.writeHead(b.status ?? 302, { location: b.to, 'content-length': '0' });
        res.end();
        return;
      }
      case 'slow-drip': {
        const data = typeof b.body === 'string' ? Buffer.from(b.body) : Buffer.from(b.body);
        const step = b.bytesPerTick ?? 1;
        res.writeHead(200, { 'content-type': b.type ?? 'application/octet-stream', 'content-length': String(data.length) });
        let off = 0;
        const tick = () => {
          if (res.destroyed || closing) return;
          res.write(data.subarray(off, off + step));
          off += step;
          if (off >= data.length) res.end();
          else later(tick, b.intervalMs);
        };
        res.on('error', () => {});
        tick();
        return;
      }
      case 'handler':
        b.fn(req, res, body);
        return;
    }
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const nth = (counts.get(path) ?? 0) + 1;
    counts.set(path, nth);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size < 1024 * 1024) chunks.push(c);
      size += c.length;
    });
    req.on('error', () => {});
    res.on('error', () => {});
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
      if (path === BUILTIN.redirect) {
        const to = url.searchParams.get('to');
        if (!to) {
          res.writeHead(400).end('missing ?to=');
          return;
        }
        respond({ kind: 'redirect', to }, req, res, body, nth, url);
        return;
      }
      const b = routes.get(path) ?? builtins[path];
      if (!b) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      try {
        respond(b, req, res, body, nth, url);
      } catch {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  server.on('clientError', (_e, s) => s.destroy());

  const port = await listen(server, host, options.port ?? 0);
  const isV6 = host.includes(':');
  const origin = `http://${isV6 ? `[${host}]` : host}:${port}`;

  const api: ImageServer = {
    host,
    port,
    origin,
    cidr: isV6 ? `${host}/128` : `${host}/32`,
    url: (path) => new URL(path, origin).href,
    redirectUrl: (target) => `${origin}${BUILTIN.redirect}?to=${encodeURIComponent(target)}`,
    set: (path, behaviour) => {
      routes.set(path, behaviour);
    },
    serve: (path, body, type = 'application/octet-stream', headers) =>
      routes.set(path, { kind: 'bytes', body, type, ...(headers ? { headers } : {}) }),
    failThen: (path, failures, then, status = 500) => routes.set(path, { kind: 'fail-then', failures, status, then }),
    rateLimitThen: (path, retryAfter, then, failures = 1) =>
      routes.set(path, { kind: 'rate-limit-then', retryAfter, failures, then }),
    redirect: (path, to, status = 302) => routes.set(path, { kind: 'redirect', to, status }),
    hits: (path) => counts.get(new URL(path, origin).pathname) ?? 0,
    get requests() {
      return requests;
    },
    get connections() {
      return connections;
    },
    reset: () => {
      counts.clear();
      requests.length = 0;
      connections = 0;
    },
    close: async () => {
      closing = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  return api;
}

/**
 * A bare TCP listener that only counts connections (and closes them). Use it as the "trap" an
 * SSRF attempt must never reach. Listens on `host` (default 127.0.0.1) and `port` (default free).
 */
export interface Trap {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTrap(options: { host?: string; port?: number } = {}): Promise<Trap> {
  const host = options.host ?? '127.0.0.1';
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.destroy();
  });
  const port = await listen(server, host, options.port ?? 0);
  return {
    host,
    port,
    get connections() {
      return connections;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** Listens on host:port (0 = any free port) and resolves with the port, or rejects on error. */
function listen(server: TcpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
