// The defences from the security review (issue 23): the Host check against DNS rebinding in
// open mode, nosniff on every response, per-tenant caps on event streams, the in-flight image
// limit decided at commit, and output names that cannot be computed from the content.
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixture, independentDecode } from './helpers/decode.js';
import { startImageServer } from './helpers/image-server.js';
import { MONGODB_URI } from './helpers/mongo.js';
import { openEvents, type SseStream } from './helpers/sse.js';
import { freePort, getJson, ROOT, startTestService, storedCounts, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';

/** A raw HTTP/1.1 request with a Host header of our choosing (fetch would send the real one). */
function rawGet(base: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Host check (DNS rebinding) in open mode', () => {
  let svc: TestService;
  let port: string;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', ALLOWED_HOSTS: 'box.lan, other.lan:1234' });
    port = new URL(svc.base).port;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('refuses a rebinding-shaped request with 421 naming ALLOWED_HOSTS, on the API, the dashboard and images', async () => {
    const attacker = { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}` };
    for (const path of ['/api/v1/requests', '/', '/docs', '/openapi.json', `/images/${'ab'.repeat(32)}.jpg`]) {
      const res = await rawGet(svc.base, path, attacker);
      expect(res.status, path).toBe(421);
      expect(JSON.parse(res.body).detail, path).toMatch(/ALLOWED_HOSTS/);
    }
    const post = await rawGet(svc.base, '/api/v1/webhook/configure', { ...attacker, 'content-type': 'application/json' }, 'POST');
    expect(post.status).toBe(421);
  });

  it('keeps answering probes for any host', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      expect((await rawGet(svc.base, path, { host: `attacker.example:${port}` })).status, path).toBe(200);
    }
  });

  it('answers the loopback names, PUBLIC_BASE_URL and ALLOWED_HOSTS', async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `127.1.2.3:${port}`, `[::1]:${port}`, 'LOCALHOST', 'box.lan', `box.lan:${port}`, 'other.lan:1234']) {
      expect((await rawGet(svc.base, '/api/v1/requests', { host })).status, host).toBe(200);
    }
    for (const host of ['other.lan', `other.lan:${port}`, '127.0.0.1.attacker.example', 'localhost.attacker.example', `evil-box.lan:${port}`]) {
      expect((await rawGet(svc.base, '/api/v1/requests', { host })).status, host).toBe(421);
    }
  });

  it('changes nothing with API_KEY set: the key is what stops a rebinding page', async () => {
    const keyed = await startTestService({ ROLE: 'api', API_KEY: 'host-check-admin' });
    try {
      const p = new URL(keyed.base).port;
      expect((await rawGet(keyed.base, '/api/v1/requests', { host: `attacker.example:${p}` })).status).toBe(401);
      expect((await rawGet(keyed.base, '/api/v1/requests', { host: `any.example:${p}`, 'x-api-key': 'host-check-admin' })).status).toBe(200);
    } finally {
      await keyed.stop();
    }
  });
});

describe('nosniff on every response', () => {
  let svc: TestService;
  const key = `${'cd'.repeat(32)}.jpg`;
  beforeAll(async () => {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, 'images', key.slice(0, 2)), { recursive: true });
    writeFileSync(join(dataDir, 'images', key.slice(0, 2), key), new Uint8Array([0xff, 0xd8, 0xff, 0xd9]));
    svc = await startTestService({ ROLE: 'api' }, dataDir);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('is sent on JSON, images, errors, event streams, HTML and probes', async () => {
    const accepted = await upload(svc.base, 'product_name,image_url\nA,http://127.0.0.1:9/a.jpg\n');
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('x-content-type-options')).toBe('nosniff');
    for (const path of ['/api/v1/requests', `/images/${key}`, '/api/v1/status/unknown', `/images/${'ef'.repeat(32)}.png`, '/nowhere', '/', '/healthz', '/metrics', '/openapi.json']) {
      const res = await fetch(`${svc.base}${path}`);
      await res.arrayBuffer();
      expect(res.headers.get('x-content-type-options'), `${path} (${res.status})`).toBe('nosniff');
    }
    const bad = await upload(svc.base, 'no,header\n');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-content-type-options')).toBe('nosniff');
    const stream = await openEvents(`${svc.base}/api/v1/requests/events`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('x-content-type-options')).toBe('nosniff');
    stream.close();
  });
});

describe('event streams per tenant', () => {
  const ADMIN = 'stream-caps-admin';
  let svc: TestService;
  const open: SseStream[] = [];
  const events = async (key: string) => {
    const s = await openEvents(`${svc.base}/api/v1/requests/events`, { 'x-api-key': key });
    if (s.status === 200) open.push(s);
    return s;
  };
  const newKey = async (name: string) => {
    const res = await fetch(`${svc.base}/api/v1/keys`, { method: 'POST', headers: { 'x-api-key': ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    return (await res.json()).key as string;
  };
  beforeAll(async () => {
    // 10 per process, the last 1 (10 %) kept for the admin; 3 per tenant.
    svc = await startTestService({ ROLE: 'api', API_KEY: ADMIN, EVENTS_MAX_STREAMS: '10', EVENTS_MAX_STREAMS_PER_TENANT: '3' });
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await svc?.stop();
  });

  it('refuses a tenant over its cap with 429 while other tenants and the admin connect; the admin keeps the last 10 %', async () => {
    const [a, b, c, d] = [await newKey('a'), await newKey('b'), await newKey('c'), await newKey('d')];
    for (let i = 0; i < 3; i++) expect((await events(a)).status).toBe(200);
    const over = await events(a);
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(over.body.detail).toMatch(/EVENTS_MAX_STREAMS_PER_TENANT is 3/);
    // Tenant a at its cap: another tenant and the admin still connect.
    expect((await events(b)).status).toBe(200);
    expect((await events(ADMIN)).status).toBe(200);
    // Fill the tenants' share (9 of 10, the admin's one counted): the rest is the admin's.
    expect((await events(b)).status).toBe(200);
    expect((await events(c)).status).toBe(200);
    expect((await events(c)).status).toBe(200);
    expect(open.length).toBe(8);
    expect((await events(d)).status).toBe(200);
    const full = await events(d);
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await events(ADMIN)).status).toBe(200);
    expect((await events(ADMIN)).status).toBe(503); // the process cap holds for the admin too
  });
});

describe('MAX_IMAGES_IN_FLIGHT_PER_TENANT is a hard limit', () => {
  let svc: TestService;
  // ROLE api: nothing is processed, so accepted images stay queued for the whole test.
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', MAX_IMAGES_IN_FLIGHT_PER_TENANT: '5' });
  });
  afterAll(async () => {
    await svc?.stop();
  });
  const csvOf = (tag: string, n: number) => `product_name,image_url\n${Array.from({ length: n }, (_, i) => `P${i},http://127.0.0.1:9/${tag}-${i}.jpg`).join('\n')}\n`;
  const counts = async () => {
    const listed = (await getJson(`${svc.base}/api/v1/requests`)).body.requests.length as number;
    return MONGODB_URI ? { requests: listed } : { ...(await storedCounts(svc.dataDir)), listed };
  };

  it('answers 413 naming the limit to an upload that alone holds more images, and stores nothing', async () => {
    const res = await upload(svc.base, csvOf('big', 6));
    expect(res.status).toBe(413);
    expect(res.body.detail).toMatch(/holds 6 .*MAX_IMAGES_IN_FLIGHT_PER_TENANT.* is 5/);
    expect(await counts()).toEqual(MONGODB_URI ? { requests: 0 } : { requests: 0, products: 0, items: 0, listed: 0 });
  });

  it('lets one of two concurrent uploads through when only together they pass it; the other gets 429 and leaves nothing', async () => {
    const [a, b] = await Promise.all([upload(svc.base, csvOf('a', 3)), upload(svc.base, csvOf('b', 3))]);
    expect([a.status, b.status].sort()).toEqual([202, 429]);
    const refused = a.status === 429 ? a : b;
    expect(refused.body.detail).toMatch(/MAX_IMAGES_IN_FLIGHT_PER_TENANT.* is 5/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await counts()).toEqual(MONGODB_URI ? { requests: 1 } : { requests: 1, products: 3, items: 3, listed: 1 });
    // Exactly up to the limit still fits.
    expect((await upload(svc.base, csvOf('c', 2))).status).toBe(202);
    expect((await upload(svc.base, csvOf('d', 1))).status).toBe(429);
  });
});

describe('output names', () => {
  it('are an HMAC under the deployment secret, not the SHA-256 of the bytes; the same content is reused under its name', async () => {
    const images = await startImageServer({ host: '127.0.0.31' });
    const jpeg = fixture('rocket-small.jpg');
    images.serve('/rocket.jpg', jpeg, 'image/jpeg');
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr });
    try {
      const run = async () => {
        const res = await upload(svc.base, `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\n`);
        expect(res.status).toBe(202);
        return (await waitForStatus(svc.base, res.body.request_id)).products[0].output_urls[0] as string;
      };
      const url = await run();
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const decoded = await independentDecode(bytes);
      expect([decoded.width, decoded.height]).toEqual([640, 427]);
      const name = url.slice(url.lastIndexOf('/') + 1, url.lastIndexOf('.'));
      expect(name).not.toBe(createHash('sha256').update(bytes).digest('hex'));
      const secret = await svc.service.store.outputNameSecret();
      expect(name).toBe(createHmac('sha256', Buffer.from(secret, 'hex')).update(bytes).digest('hex'));
      expect(await run()).toBe(url); // reuse within the tenant: the same output, the same URL
    } finally {
      await svc.stop();
      await images.close();
    }
  });
});

describe('private files', () => {
  it('creates DATA_DIR and IMAGE_STORAGE_PATH content 0600/0700 under a umask of 022, and tightens looser ones at start with one log line', async () => {
    const images = await startImageServer({ host: '127.0.0.32' });
    images.serve('/rocket.jpg', fixture('rocket-small.jpg'), 'image/jpeg');
    // A data dir as an older release left it: folders 0755, files 0644.
    const dataDir = tempDir();
    const oldKey = `${'ab'.repeat(32)}.jpg`;
    mkdirSync(join(dataDir, 'images', 'ab'), { recursive: true, mode: 0o755 });
    writeFileSync(join(dataDir, 'images', 'ab', oldKey), fixture('rocket-small.jpg'), { mode: 0o644 });
    for (const dir of [dataDir, join(dataDir, 'images'), join(dataDir, 'images', 'ab')]) chmodSync(dir, 0o755);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // umask is per process (not settable in a worker thread): the real service, started by a shell that sets it.
    const proc = spawn('/bin/sh', ['-c', `umask 022 && exec "${process.execPath}" dist/src/main.js`], {
      cwd: ROOT,
      env: {
        ...process.env, MONGODB_URI: '', PORT: String(port), HOST: '127.0.0.1', PUBLIC_BASE_URL: base, DATA_DIR: dataDir,
        LOG_LEVEL: 'info', WORKER_THREADS: '1', FETCH_ALLOWLIST: images.cidr,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    try {
      await vi.waitFor(async () => expect((await fetch(`${base}/healthz`)).ok).toBe(true), { timeout: 30_000, interval: 100 });
      const res = await upload(base, `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\n`);
      expect(res.status).toBe(202);
      expect((await waitForStatus(base, res.body.request_id)).status).toBe('completed');
      const modes: Record<string, string> = {};
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const path = join(dir, name);
          const info = statSync(path);
          modes[path.slice(dataDir.length)] = (info.mode & 0o777).toString(8);
          if (info.isDirectory()) walk(path);
        }
      };
      modes['/'] = (statSync(dataDir).mode & 0o777).toString(8);
      walk(dataDir);
      // The store's WAL files exist while it runs; a new output's folder and file, and the old ones.
      expect(Object.keys(modes)).toEqual(expect.arrayContaining(['/store.db', '/store.db-wal', '/store.db-shm', `/images/ab/${oldKey}`]));
      expect(Object.keys(modes).filter((p) => /^\/images\/[0-9a-f]{2}\/[0-9a-f]{64}\.jpg$/.test(p)).length).toBe(2);
      for (const [path, mode] of Object.entries(modes)) {
        expect(mode, path).toBe(statSync(join(dataDir, path)).isDirectory() ? '700' : '600');
      }
      expect(out.split('\n').filter((l) => l.includes('tightened')).length).toBe(1);
      expect(out).toMatch(/"msg":"tightened 4 files and folders/);
    } finally {
      proc.kill('SIGTERM');
      await exited;
      await images.close();
    }
  });
});
