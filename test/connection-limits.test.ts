// Inbound connection limits over real sockets on loopback: slow headers, a slow body on an
// ordinary route, an upload that trickles below the minimum rate, and the cap on connections.
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { serve, withAnswerDeadline, type ConnectionLimits } from '../src/runtime/serve.js';
import { freePort, startTestService, storedCounts, upload, type TestService } from './helpers/service.js';
import { until } from './helpers/poll.js';

interface RawClient {
  socket: Socket;
  /** everything the server sent so far */
  text(): string;
  isClosed(): boolean;
  closed: Promise<void>;
}

function openRaw(base: string): Promise<RawClient> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    let isClosed = false;
    socket.on('data', (d) => (received += d));
    socket.on('error', () => {}); // writes after the server hung up: expected here
    const closed = new Promise<void>((r) => socket.once('close', () => {
      isClosed = true;
      r();
    }));
    socket.once('connect', () => resolve({ socket, text: () => received, isClosed: () => isClosed, closed }));
    socket.once('error', reject);
  });
}

/** Writes `piece()` every `everyMs` until the connection closes. */
function trickle(c: RawClient, piece: () => string, everyMs: number): () => void {
  const timer = setInterval(() => {
    if (!c.isClosed()) c.socket.write(piece());
  }, everyMs);
  return () => clearInterval(timer);
}


function parseResponse(raw: string): { status: number; body: string } {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body };
}

describe('configuration of the limits', () => {
  it('has the documented defaults and refuses nonsense with the variable named', () => {
    expect(loadConfig({})).toMatchObject({
      HTTP_HEADERS_TIMEOUT_MS: 20_000, HTTP_REQUEST_TIMEOUT_MS: 30_000, HTTP_KEEP_ALIVE_TIMEOUT_MS: 5_000, HTTP_MAX_CONNECTIONS: 1_024,
      UPLOAD_MIN_BYTES_PER_SEC: 1_024, UPLOAD_RATE_WINDOW_MS: 10_000, UPLOAD_RATE_GRACE_MS: 10_000,
    });
    expect(loadConfig({ UPLOAD_MIN_BYTES_PER_SEC: '0' }).UPLOAD_MIN_BYTES_PER_SEC).toBe(0);
    expect(() => loadConfig({ HTTP_MAX_CONNECTIONS: '0' })).toThrow(/HTTP_MAX_CONNECTIONS/);
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: 'soon' })).toThrow(/HTTP_HEADERS_TIMEOUT_MS/);
    expect(() => loadConfig({ UPLOAD_RATE_WINDOW_MS: '10' })).toThrow(/UPLOAD_RATE_WINDOW_MS/);
  });
});

describe('inbound connection limits (Node server)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({
      ROLE: 'api',
      HTTP_HEADERS_TIMEOUT_MS: '300',
      HTTP_REQUEST_TIMEOUT_MS: '300',
      // An upload below 1000 bytes/s over a 500 ms window, after 500 ms of grace, is cut off.
      // The upload is exempt from the 300 ms request timeout: if it were not, that would cut
      // it first, with another answer.
      UPLOAD_MIN_BYTES_PER_SEC: '1000',
      UPLOAD_RATE_WINDOW_MS: '500',
      UPLOAD_RATE_GRACE_MS: '500',
    });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('cuts off a client that trickles its headers, with 408', async () => {
    const c = await openRaw(svc.base);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const stop = trickle(c, () => 'X-Slow: 1\r\n', 50);
    await c.closed;
    stop();
    expect(parseResponse(c.text()).status).toBe(408);
    // A client that sends its headers at once is served.
    expect((await fetch(`${svc.base}/healthz`)).status).toBe(200);
  });

  it('answers 408 {detail} to a request whose body does not arrive in time, and closes the connection', async () => {
    const c = await openRaw(svc.base);
    c.socket.write('POST /api/v1/webhook/configure HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"webhook_url":');
    await c.closed;
    const res = parseResponse(c.text());
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body)).toEqual({ detail: expect.stringMatching(/^request timeout: /) });
  });

  it('cuts off an upload that trickles below UPLOAD_MIN_BYTES_PER_SEC with 408 {detail}, keeping nothing', async () => {
    const before = await storedCounts(svc.dataDir);
    const c = await openRaw(svc.base);
    const boundary = 'slow-upload';
    c.socket.write([
      'POST /api/v1/upload HTTP/1.1', 'Host: 127.0.0.1', `Content-Type: multipart/form-data; boundary=${boundary}`, 'Content-Length: 100000', '', '',
    ].join('\r\n'));
    c.socket.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"\r\nContent-Type: text/csv\r\n\r\nproduct_name,image_url\n`);
    const row = 'P,http://127.0.0.1:9/a.jpg\n';
    let i = 0;
    const stop = trickle(c, () => row[i++ % row.length]!, 20); // about 50 bytes/s
    // The upload got as far as the store: its request exists, still ingesting.
    let begun = false;
    await until(async () => (begun = (await storedCounts(svc.dataDir)).requests === before.requests + 1) || c.isClosed());
    expect(begun).toBe(true);
    await c.closed;
    stop();
    const res = parseResponse(c.text());
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body)).toEqual({ detail: expect.stringMatching(/^upload too slow: less than 1000 bytes\/s/) });
    expect(await storedCounts(svc.dataDir)).toEqual(before);
    // An upload at full speed on the same server is accepted.
    expect((await upload(svc.base, `product_name,image_url\nP,http://127.0.0.1:9/a.jpg\n`)).status).toBe(202);
  });
});

describe('serve: connection cap', () => {
  it('closes connections beyond HTTP_MAX_CONNECTIONS as they arrive', async () => {
    const port = await freePort();
    const limits: ConnectionLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 10_000, maxConnections: 1 };
    const server = await serve(() => new Response('ok'), { port, hostname: '127.0.0.1', maxBodyBytes: 1024, limits });
    const base = `http://127.0.0.1:${port}`;
    try {
      const first = await openRaw(base);
      first.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => first.text().endsWith('ok'));
      const second = await openRaw(base);
      second.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await second.closed;
      expect(second.text()).toBe('');
      expect(first.isClosed()).toBe(false);
      first.socket.destroy();
      await first.closed;
      // Room again once the first has gone.
      await until(async () => {
        const c = await openRaw(base);
        c.socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        await c.closed;
        return c.text().endsWith('ok');
      });
    } finally {
      await server.close();
    }
  });
});

describe('withAnswerDeadline (the request timeout on Bun and Deno)', () => {
  const limits: ConnectionLimits = {
    headersTimeoutMs: 1_000, requestTimeoutMs: 50, keepAliveTimeoutMs: 1_000, maxConnections: 10,
    untimed: (method, path) => method === 'POST' && path === '/api/v1/upload',
  };
  const endless = () => new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new TextEncoder().encode('{')) });
  const post = (path: string, body: ReadableStream<Uint8Array>) =>
    new Request(`http://127.0.0.1${path}`, { method: 'POST', body, duplex: 'half' } as RequestInit);

  it('answers 408 {detail} when the body does not arrive in time', async () => {
    const handler = withAnswerDeadline(async (req) => new Response(await req.text()), limits);
    const res = await handler(post('/api/v1/webhook/configure', endless()));
    expect(res.status).toBe(408);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toEqual({ detail: expect.stringMatching(/^request timeout: /) });
  });

  it('leaves exempt requests (uploads) and bodiless requests alone', async () => {
    const handler = withAnswerDeadline(async () => {
      await delay(limits.requestTimeoutMs * 4); // a slow handler on purpose: well past requestTimeoutMs
      return new Response('late');
    }, limits);
    expect(await (await handler(post('/api/v1/upload', endless()))).text()).toBe('late');
    expect(await (await handler(new Request('http://127.0.0.1/api/v1/status/x'))).text()).toBe('late');
  });

  it('asks for the connection to be closed after an answer that cut a body off (408, 413)', async () => {
    const tooSlow = withAnswerDeadline(async () => Response.json({ detail: 'upload too slow' }, { status: 408 }), limits);
    const res = await tooSlow(post('/api/v1/upload', endless()));
    expect(res.status).toBe(408);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toEqual({ detail: 'upload too slow' });
    const fine = withAnswerDeadline(async () => new Response('ok', { status: 202 }), limits);
    expect((await fine(post('/api/v1/upload', endless()))).headers.get('connection')).toBeNull();
  });
});
