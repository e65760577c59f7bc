// The public HTTP contract over real HTTP on loopback, with the real SQLite store in a temp dir.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { getJson, peakRssMb, spawnService, startTestService, storedCounts, tempDir, upload, type TestService } from './helpers/service.js';

const SEED_HEADER = 'S. No.,Product Name,Input Image Urls';
// Image URLs in these tests point at a closed loopback port: they fail fast ("blocked") and
// nothing leaves the machine. The API behaviour is what is under test here.
const IMG = (n: number | string) => `http://127.0.0.1:9/img-${n}.jpg`;
/** The per-image result fields of a product none of whose images is done. */
const nothingYet = (n: number) => ({ outcomes: Array(n).fill(null), notes: Array(n).fill(null), input_bytes: Array(n).fill(null), output_bytes: Array(n).fill(null) });

describe('HTTP API', () => {
  let svc: TestService;
  beforeAll(async () => {
    // 127.0.0.9 is allowlisted so that a webhook URL there passes the address check; nothing listens.
    svc = await startTestService({ ROLE: 'api', FETCH_ALLOWLIST: '127.0.0.9/32' });
  });
  afterAll(async () => {
    await svc.stop();
  });

  it('accepts the seed format and reflects it in the status', async () => {
    const csv = `${SEED_HEADER}\n1,SKU1,"${IMG(1)},${IMG(2)},${IMG(3)}"\n2,SKU2,"${IMG(4)},${IMG(1)}"\n`;
    const res = await upload(svc.base, csv);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'received', message: 'Processing started', products: 2, images: 4 });
    const status = await getJson(`${svc.base}/api/v1/status/${res.body.request_id}`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ request_id: res.body.request_id, status: 'received', progress: { total: 4, done: 0, failed: 0 }, bytes: { in: 0, out: 0 } });
    expect(status.body.products).toEqual([
      { serial_number: 1, product_name: 'SKU1', input_urls: [IMG(1), IMG(2), IMG(3)], output_urls: [null, null, null], processing_status: 'pending', errors: [null, null, null], ...nothingYet(3) },
      { serial_number: 2, product_name: 'SKU2', input_urls: [IMG(4), IMG(1)], output_urls: [null, null], processing_status: 'pending', errors: [null, null], ...nothingYet(2) },
    ]);
  });

  it("keeps the upload's file name, cleaned, and shows it with the bytes in the list and the status", async () => {
    const cases: Array<[string, string | null]> = [
      ['C:\\Users\\me\\spring sale.csv', 'spring sale.csv'],
      ['../../etc/\tforged\u202egpj.csv', 'forgedgpj.csv'],
      ['Caf\u00e9 \u6771\u4eac.csv', 'Caf\u00e9 \u6771\u4eac.csv'],
      [`${'x'.repeat(400)}.csv`, 'x'.repeat(255)],
    ];
    for (const [sent, kept] of cases) {
      const res = await upload(svc.base, `${SEED_HEADER}\n1,SKU1,${IMG('f')}\n`, { filename: sent });
      expect(res.status, sent).toBe(202);
      const status = await getJson(`${svc.base}/api/v1/status/${res.body.request_id}`);
      expect(status.body.file_name, sent).toBe(kept);
      const list = await getJson(`${svc.base}/api/v1/requests?limit=5`);
      expect(list.body.requests.find((r: { request_id: string }) => r.request_id === res.body.request_id), sent)
        .toMatchObject({ file_name: kept, bytes: { in: 0, out: 0 }, progress: { total: 1, done: 0, failed: 0 } });
    }
  });

  it('accepts the simple format, grouping rows by product name in order of first appearance', async () => {
    const csv = `\uFEFFproduct_name,image_url\r\nshoe,${IMG('a')}\r\nhat,${IMG('b')}\r\nshoe,${IMG('c')}\r\n`;
    const res = await upload(svc.base, csv);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ products: 2, images: 3 });
    const { body } = await getJson(`${svc.base}/api/v1/status/${res.body.request_id}`);
    expect(body.products.map((p: any) => [p.serial_number, p.product_name, p.input_urls])).toEqual([
      [1, 'shoe', [IMG('a'), IMG('c')]],
      [2, 'hat', [IMG('b')]],
    ]);
  });

  it('pages products with limit and cursor, and serves the output CSV', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => `${i + 1},=Prod ${i + 1},${IMG(`p${i}`)}`);
    const res = await upload(svc.base, `${SEED_HEADER}\n${rows.join('\n')}\n`);
    const id = res.body.request_id;
    const first = await getJson(`${svc.base}/api/v1/status/${id}?limit=2`);
    expect(first.body.products.map((p: any) => p.serial_number)).toEqual([1, 2]);
    const second = await getJson(`${svc.base}/api/v1/status/${id}?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.products.map((p: any) => p.serial_number)).toEqual([3, 4]);
    const third = await getJson(`${svc.base}/api/v1/status/${id}?limit=2&cursor=${second.body.next_cursor}`);
    expect(third.body.products.map((p: any) => p.serial_number)).toEqual([5]);
    expect(third.body.next_cursor).toBeNull();
    expect((await getJson(`${svc.base}/api/v1/status/${id}?limit=0`)).status).toBe(400);
    const page = await fetch(`${svc.base}/api/v1/status/${id}?limit=2`);
    const etag = page.headers.get('etag')!;
    expect(etag).toMatch(/^"v\d+"$/);
    expect((await fetch(`${svc.base}/api/v1/status/${id}?limit=2`, { headers: { 'if-none-match': etag } })).status).toBe(304);

    const csv = await fetch(`${svc.base}/api/v1/status/${id}/output.csv`);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trim().split(/\r?\n/);
    expect(lines[0]).toBe('"S. No.","Product Name","Input Image Urls","Output Image Urls"');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toBe(`"1","'=Prod 1","${IMG('p0')}",""`); // every cell quoted, formula neutralised
  });

  const bad: Array<[string, string | Uint8Array, RegExp]> = [
    ['empty file', '', /empty/i],
    ['header only', `${SEED_HEADER}\n`, /no (data )?rows|header only|no products/i],
    ['missing column', 'S. No.,Product Name\n1,SKU1\n', /Input Image Urls|column/i],
    ['unquoted comma shifting columns', `${SEED_HEADER}\n1,SKU1,${IMG(1)},${IMG(2)}\n`, /line 2/],
    ['ftp URL', `${SEED_HEADER}\n1,SKU1,"${IMG(1)},ftp://example.com/a.jpg"\n`, /line 2.*Input Image Urls.*http/],
    ['javascript URL', `${SEED_HEADER}\n1,SKU1,javascript:alert(1)\n`, /line 2.*Input Image Urls/],
    ['relative URL', `${SEED_HEADER}\n1,SKU1,/images/a.jpg\n`, /line 2.*Input Image Urls/],
    ['non-UTF-8 bytes', Buffer.concat([Buffer.from(`${SEED_HEADER}\n1,Caf`), Buffer.from([0xe9]), Buffer.from(`,${IMG(1)}\n`)]), /line 2.*UTF-8/i],
    ['binary data', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]), /line 1/],
  ];
  for (const [name, csv, detail] of bad) {
    it(`rejects ${name} with 400 naming the line and column, keeping nothing`, async () => {
      const before = await storedCounts(svc.dataDir);
      const res = await upload(svc.base, csv);
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(detail);
      if (name !== 'empty file' && name !== 'header only') expect(res.body.detail).toMatch(/line \d+/);
      if (/URL|comma|missing/.test(name)) expect(res.body.detail).toMatch(/column/i);
      expect(await storedCounts(svc.dataDir)).toEqual(before);
    });
  }

  it('refuses a per-upload webhook_url at a non-public address without naming it, keeping nothing', async () => {
    const before = await storedCounts(svc.dataDir);
    for (const [hook, reason] of [['http://10.1.2.3/hook', 'a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)'], ['http://[fd00::1]:8080/hook', 'a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)'], ['http://localhost:8080/hook', 'a loopback host name (use its address instead, with FETCH_ALLOWLIST set, e.g. 127.0.0.0/8)']]) {
      const res = await upload(svc.base, `${SEED_HEADER}\n1,SKU1,${IMG('w')}\n`, { fields: { webhook_url: hook! } });
      expect(res.status, hook).toBe(400);
      expect(res.body.detail, hook).toBe(`webhook_url: refused, blocked: ${reason}`);
    }
    expect(await storedCounts(svc.dataDir)).toEqual(before);
  });

  it('rejects a 100 001-row file with 400 and keeps nothing', async () => {
    const before = await storedCounts(svc.dataDir);
    const rows = Array.from({ length: 100_001 }, (_, i) => `${i + 1},P${i + 1},${IMG(i)}`).join('\n');
    const res = await upload(svc.base, `${SEED_HEADER}\n${rows}\n`);
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/line 100002.*too many rows/);
    expect(await storedCounts(svc.dataDir)).toEqual(before);
  });

  it('rejects a 60 MB upload with 413 while it is still streaming', async () => {
    const before = await storedCounts(svc.dataDir);
    const boundary = 'x-boundary-413';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\nproduct_name,image_url\n`;
    // Valid rows, long enough that 50 MB comes before the row limit: only the size is wrong.
    const row = `P,http://127.0.0.1:9/${'x'.repeat(700)}.jpg\n`.repeat(100);
    const total = 60 * 1024 * 1024;
    // A raw socket, so the answer is read while the body is still being written (an HTTP
    // client may report the server's early close as a write error instead of the response).
    const { status, body, sentWhenAnswered } = await new Promise<{ status: number; body: string; sentWhenAnswered: number }>((resolve, reject) => {
      const { port } = new URL(svc.base);
      const socket = connect(Number(port), '127.0.0.1');
      let sent = 0;
      let answeredAt = -1;
      let response = '';
      socket.on('data', (d) => {
        if (answeredAt < 0) answeredAt = sent;
        response += d;
      });
      socket.on('error', () => {}); // EPIPE/ECONNRESET once the server stops reading is expected
      socket.on('close', () => {
        const m = /^HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(response);
        if (!m) return reject(new Error(`no HTTP response: ${JSON.stringify(response.slice(0, 200))}`));
        resolve({ status: Number(m[1]), body: m[2]!, sentWhenAnswered: answeredAt });
      });
      socket.write(`POST /api/v1/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = (data: string) => `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`;
      const pump = () => {
        while (answeredAt < 0 && !socket.destroyed && sent < total) {
          const data = sent === 0 ? head + row : row;
          sent += data.length;
          if (!socket.write(chunk(data))) return void socket.once('drain', pump);
        }
        if (answeredAt < 0 && !socket.destroyed) socket.end('0\r\n\r\n');
        else socket.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(body).toMatch(/"detail":".*(too large|limit|MB|bytes)/i);
    expect(sentWhenAnswered).toBeLessThan(total);
    expect(await storedCounts(svc.dataDir)).toEqual(before);
  });

  it('answers 415 for a body that is not a multipart CSV upload', async () => {
    const json = await fetch(`${svc.base}/api/v1/upload`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(json.status).toBe(415);
    expect((await json.json()).detail).toMatch(/multipart\/form-data/);
    const png = await upload(svc.base, new Uint8Array([0x89, 0x50, 0x4e, 0x47]), { type: 'image/png', filename: 'photo.png' });
    expect(png.status).toBe(415);
  });

  it('answers 404 for an unknown request ID, with the seed error shape', async () => {
    const res = await getJson(`${svc.base}/api/v1/status/00000000-0000-0000-0000-000000000000`);
    expect(res).toEqual({ status: 404, body: { detail: 'Request ID not found' } });
    expect((await fetch(`${svc.base}/api/v1/status/nope/output.csv`)).status).toBe(404);
  });

  it('answers every kind of error with its status and { detail } only', async () => {
    const json = (body: string, type = 'application/json') =>
      fetch(`${svc.base}/api/v1/webhook/configure`, { method: 'POST', headers: { 'content-type': type }, body });
    const cases: Array<[string, Promise<Response>, number, RegExp]> = [
      ['unknown route', fetch(`${svc.base}/nope`), 404, /^Not found$/],
      ['unknown image', fetch(`${svc.base}/images/${'a'.repeat(64)}.jpg`), 404, /^Image not found$/],
      ['schema validation', fetch(`${svc.base}/api/v1/status/x?limit=0`), 400, /^limit: /],
      ['a body that is not JSON', json('{}', 'text/plain'), 415, /must be JSON/],
      ['malformed JSON', json('{"webhook_url":'), 400, /not valid JSON/],
      ['a bad secret', json(JSON.stringify({ webhook_url: 'http://127.0.0.9:9/h', secret: 'whsec_short' })), 400, /^secret: /],
      ['a body over 64 KiB', json(JSON.stringify({ webhook_url: 'http://127.0.0.9:9/h', pad: 'x'.repeat(70_000) })), 413, /64 KiB/],
      ['a bad Idempotency-Key', fetch(`${svc.base}/api/v1/upload`, { method: 'POST', headers: { 'idempotency-key': 'k'.repeat(201) } }), 400, /Idempotency-Key/],
    ];
    for (const [name, pending, status, detail] of cases) {
      const res = await pending;
      expect(res.status, name).toBe(status);
      expect(res.headers.get('content-type'), name).toMatch(/^application\/json/);
      const body = await res.json();
      expect(Object.keys(body), name).toEqual(['detail']);
      expect(body.detail, name).toMatch(detail);
    }
  });

  it('returns the first answer for a retried Idempotency-Key, storing nothing new', async () => {
    const csv = `${SEED_HEADER}\n1,SKU1,${IMG('idem')}\n`;
    const first = await upload(svc.base, csv, { headers: { 'idempotency-key': 'order-42' } });
    const before = await storedCounts(svc.dataDir);
    const again = await upload(svc.base, csv, { headers: { 'idempotency-key': 'order-42' } });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await storedCounts(svc.dataDir)).toEqual(before);
  });

  it('answers liveness and readiness', async () => {
    expect(await getJson(`${svc.base}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
    const ready = await getJson(`${svc.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ store: 'ok', storage: 'ok' });
  });
});

describe('API key', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', API_KEY: 'k3y-for-tests' });
  });
  afterAll(async () => {
    await svc.stop();
  });

  it('answers 401 without a key or with an unknown one, and accepts X-API-Key or Bearer', async () => {
    const csv = `${SEED_HEADER}\n1,SKU1,${IMG(1)}\n`;
    expect((await upload(svc.base, csv)).status).toBe(401);
    expect((await upload(svc.base, csv, { headers: { 'x-api-key': 'wrong' } })).status).toBe(401);
    const ok = await upload(svc.base, csv, { headers: { 'x-api-key': 'k3y-for-tests' } });
    expect(ok.status).toBe(202);
    expect((await getJson(`${svc.base}/api/v1/status/${ok.body.request_id}`)).status).toBe(401);
    expect((await getJson(`${svc.base}/api/v1/status/${ok.body.request_id}`, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await getJson(`${svc.base}/api/v1/status/${ok.body.request_id}`, { authorization: 'Bearer k3y-for-tests' })).status).toBe(200);
    expect((await getJson(`${svc.base}/api/v1/webhooks`)).status).toBe(401);
    expect((await getJson(`${svc.base}/healthz`)).status).toBe(200); // health stays open
  });
});

/** One HTTP exchange with full control of the headers (fetch sets Host itself). */
function rawRequest(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const { hostname, port } = new URL(base);
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any }>((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('cross-origin requests', () => {
  const APP = 'http://app.test:5173'; // a browser app allowed by CORS_ORIGINS
  const PUBLIC = 'https://images.example.com'; // PUBLIC_BASE_URL: not the address the tests use
  const KEY = 'cors-test-key';
  let open: TestService;
  let keyed: TestService;
  beforeAll(async () => {
    // api.internal: a name the operator allowed (open mode answers only to its own hosts).
    open = await startTestService({ ROLE: 'api', CORS_ORIGINS: `${APP}/, https://other.test`, PUBLIC_BASE_URL: `${PUBLIC}/`, ALLOWED_HOSTS: 'api.internal' });
    keyed = await startTestService({ ROLE: 'api', API_KEY: KEY, CORS_ORIGINS: APP });
  });
  afterAll(async () => {
    await open.stop();
    await keyed.stop();
  });
  const csv = `${SEED_HEADER}\n1,SKU1,${IMG('cors')}\n`;

  it('refuses a foreign Origin with 403 { detail } in open mode, storing nothing, and a preflight from it', async () => {
    const before = await storedCounts(open.dataDir);
    for (const origin of ['https://evil.example', 'null', 'http://app.test:5174', 'https://images.example.com:8443']) {
      const res = await upload(open.base, csv, { headers: { origin } });
      expect(res.status, origin).toBe(403);
      expect(res.body, origin).toEqual({ detail: expect.stringMatching(/origin/i) });
      expect(res.headers.get('access-control-allow-origin'), origin).toBeNull();
      expect((await getJson(`${open.base}/api/v1/requests-unknown`, { origin })).status, origin).toBe(403);
    }
    expect(await storedCounts(open.dataDir)).toEqual(before);
    const preflight = await rawRequest(open.base, '/api/v1/upload', {
      method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    // Only the API is guarded.
    expect((await getJson(`${open.base}/healthz`, { origin: 'https://evil.example' })).status).toBe(200);
  });

  it("accepts no Origin, the service's own (PUBLIC_BASE_URL's, or scheme + Host of the request)", async () => {
    expect((await upload(open.base, csv)).status).toBe(202);
    expect((await upload(open.base, csv, { headers: { origin: PUBLIC } })).status).toBe(202);
    expect((await upload(open.base, csv, { headers: { origin: open.base } })).status).toBe(202);
    const { port } = new URL(open.base);
    const via = (host: string, origin: string) => rawRequest(open.base, '/api/v1/webhooks', { headers: { host, origin } });
    expect((await via(`api.internal:${port}`, `http://api.internal:${port}`)).status).toBe(200);
    expect((await via('api.internal', 'http://api.internal:80')).status).toBe(200); // default port
    expect((await via(`api.internal:${port}`, open.base)).status).toBe(403); // not where this request came
    expect((await via(`api.internal:${port}`, `https://api.internal:${port}`)).status).toBe(403); // other scheme
  });

  it('answers a preflight from a listed origin with the methods and headers the API takes', async () => {
    const res = await rawRequest(open.base, '/api/v1/upload', {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key,idempotency-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(String(res.headers['access-control-allow-methods']).split(',')).toEqual(expect.arrayContaining(['GET', 'POST', 'DELETE']));
    expect(String(res.headers['access-control-allow-headers']).toLowerCase().split(','))
      .toEqual(expect.arrayContaining(['x-api-key', 'authorization', 'content-type', 'idempotency-key']));
    expect(Number(res.headers['access-control-max-age'])).toBeGreaterThan(0);
    expect(String(res.headers.vary)).toMatch(/origin/i);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined(); // keys go in headers, never cookies
  });

  it('lets a listed origin use the API with its key, and read the headers and errors it needs', async () => {
    const ok = await upload(keyed.base, csv, { headers: { origin: APP, 'x-api-key': KEY, 'idempotency-key': 'cors-1' } });
    expect(ok.status).toBe(202);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    expect(ok.headers.get('access-control-expose-headers')!.toLowerCase().split(','))
      .toEqual(expect.arrayContaining(['x-request-id', 'idempotent-replayed', 'etag']));
    const status = await fetch(`${keyed.base}/api/v1/status/${ok.body.request_id}`, { headers: { origin: APP, authorization: `Bearer ${KEY}` } });
    expect(status.status).toBe(200);
    expect(status.headers.get('access-control-allow-origin')).toBe(APP);
    // Without the key: the 401 is readable by the page (it carries the CORS headers too).
    const noKey = await fetch(`${keyed.base}/api/v1/status/${ok.body.request_id}`, { headers: { origin: APP } });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('access-control-allow-origin')).toBe(APP);
    expect(await noKey.json()).toEqual({ detail: expect.any(String) });
    // The key does not make a foreign origin acceptable.
    expect((await upload(keyed.base, csv, { headers: { origin: 'https://evil.example', 'x-api-key': KEY } })).status).toBe(403);
  });
});

describe('readiness', () => {
  it('names each check and its state, logging why one failed instead of answering it', async () => {
    const lines: string[] = [];
    const log = createLogger({ LOG_LEVEL: 'warn' }, { write: (line: string) => void lines.push(line) });
    const dataDir = tempDir();
    const svc = await startTestService({ ROLE: 'api' }, dataDir, log);
    try {
      expect(await getJson(`${svc.base}/readyz`)).toEqual({ status: 200, body: { status: 'ready', checks: { store: 'ok', storage: 'ok' } } });
      // Break the image storage: its directory becomes a plain file.
      const images = join(dataDir, 'images');
      rmSync(images, { recursive: true, force: true });
      writeFileSync(images, 'not a directory');
      const res = await fetch(`${svc.base}/readyz`);
      const text = await res.text();
      expect(res.status).toBe(503);
      expect(JSON.parse(text)).toEqual({ status: 'not ready', checks: { store: 'ok', storage: 'failed' } });
      expect(text).not.toContain(dataDir);
      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'readiness check failed');
      expect(logged).toMatchObject({ check: 'storage', err: { message: expect.stringContaining(images) } });
    } finally {
      await svc.stop();
    }
  });
});

describe('METRICS_TOKEN', () => {
  const TOKEN = 'metrics-token-for-tests-7c1d';
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', METRICS_TOKEN: TOKEN, API_KEY: 'an-api-key-for-tests' });
  });
  afterAll(async () => {
    await svc.stop();
  });

  it('answers /metrics only to the bearer of the token: 401 { detail } without it or with a wrong one', async () => {
    const metrics = (headers: Record<string, string> = {}) => fetch(`${svc.base}/metrics`, { headers });
    for (const [name, headers] of [
      ['no token', {}],
      ['a wrong token', { authorization: 'Bearer wrong-token' }],
      ['the token one character short', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
      ['the API key', { authorization: 'Bearer an-api-key-for-tests' }],
      ['the token as X-API-Key', { 'x-api-key': TOKEN }],
      ['the token as Basic', { authorization: `Basic ${TOKEN}` }],
    ] as Array<[string, Record<string, string>]>) {
      const res = await metrics(headers);
      expect(res.status, name).toBe(401);
      expect(res.headers.get('www-authenticate'), name).toMatch(/^Bearer realm="metrics"/);
      expect(await res.json(), name).toEqual({ detail: expect.any(String) });
    }
    const ok = await metrics({ authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('http_requests_total');
    // Health stays open for probes.
    expect((await fetch(`${svc.base}/readyz`)).status).toBe(200);
  });

  it('leaves /metrics open when METRICS_TOKEN is not set', async () => {
    const open = await startTestService({ ROLE: 'api' });
    try {
      expect((await fetch(`${open.base}/metrics`)).status).toBe(200);
    } finally {
      await open.stop();
    }
  });
});

describe('restart', () => {
  it('keeps every request and subscription', async () => {
    const dataDir = tempDir();
    const first = await startTestService({ ROLE: 'api', FETCH_ALLOWLIST: '127.0.0.9/32' }, dataDir);
    const res = await upload(first.base, `${SEED_HEADER}\n1,SKU1,${IMG('r')}\n`);
    const sub = await fetch(`${first.base}/api/v1/webhook/configure`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ webhook_url: 'http://127.0.0.9:8080/hook', events: ['processing.completed'] }),
    });
    expect(sub.status).toBeLessThan(300);
    const subId = (await sub.json()).id;
    await first.stop();

    const second = await startTestService({ ROLE: 'api', FETCH_ALLOWLIST: '127.0.0.9/32' }, dataDir);
    try {
      const status = await getJson(`${second.base}/api/v1/status/${res.body.request_id}`);
      expect(status.body).toMatchObject({ request_id: res.body.request_id, progress: { total: 1 } });
      const list = await getJson(`${second.base}/api/v1/webhooks`);
      const subs = Array.isArray(list.body) ? list.body : list.body.webhooks ?? list.body.items;
      expect(subs.map((s: any) => s.id)).toContain(subId);
    } finally {
      await second.stop();
    }
  });
});

describe('a 100 000-row upload', () => {
  it('is accepted with the server staying under 300 MB resident', async () => {
    const dataDir = tempDir();
    // A child process so that its memory is the server's alone; ROLE=api so it only ingests.
    const child = await spawnService({ ROLE: 'api' }, dataDir);
    try {
      const rows = Array.from({ length: 100_000 }, (_, i) => `${i + 1},Product ${i + 1},"https://cdn.example.com/p/${i + 1}/a.jpg,https://cdn.example.com/p/${i + 1}/b.jpg"`);
      const res = await upload(child.base, `${SEED_HEADER}\n${rows.join('\n')}\n`);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ products: 100_000, images: 200_000 });
      const peak = peakRssMb(child.proc.pid!);
      console.log(`100 000-row upload: server peak RSS ${peak.toFixed(1)} MB`);
      expect(peak).toBeLessThan(300);
      const last = await getJson(`${child.base}/api/v1/status/${res.body.request_id}?limit=1&cursor=${Buffer.from('[99999]').toString('base64url')}`);
      expect(last.body.products[0]).toMatchObject({ serial_number: 100_000, product_name: 'Product 100000' });
    } finally {
      await child.stop();
    }
  }, 120_000);
});
