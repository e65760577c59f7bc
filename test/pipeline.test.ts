// The image pipeline end to end: real service, real pool and codecs, real SQLite, and a local
// image server on loopback (127.0.0.9, the only address the fetch allowlist lets through).
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFormat, jpegHasExif, readDimensions } from '../src/codecs/sniff.js';
import { CODECS } from '../workers/codecs.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { CompressPool } from '../src/pipeline/pool.js';
import { PipelineRunner } from '../src/pipeline/runner.js';
import { LocalStorage } from '../src/storage/local.js';
import type { Store } from '../src/store/types.js';
import { concurrentWritersUnsupported, MONGODB_URI } from './helpers/mongo.js';
import { BUILTIN, startImageServer, startTrap, type ImageServer, type Trap } from './helpers/image-server.js';
import { spawnService, startTestService, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';
import { until } from './helpers/poll.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const SEED_HEADER = 'S. No.,Product Name,Input Image Urls';
const csvOf = (urls: string[][]) => `${SEED_HEADER}\n${urls.map((u, i) => `${i + 1},P${i + 1},"${u.join(',')}"`).join('\n')}\n`;

/** A PNG whose header declares width×height, followed by a little junk: never decodable. */
function hugePngHeader(width: number, height: number): Uint8Array {
  const b = Buffer.alloc(64);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b[24] = 8;
  b[25] = 2;
  return new Uint8Array(b);
}

async function fetchImage(url: string) {
  const res = await fetch(url);
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

describe('pipeline', () => {
  let images: ImageServer;
  let svc: TestService;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.9' });
    svc = await startTestService({
      FETCH_ALLOWLIST: images.cidr,
      WORKER_THREADS: '2',
      MAX_IMAGE_BYTES: String(2 * 1024 * 1024),
      FETCH_TIMEOUT_MS: '1500',
      FETCH_RETRIES: '2',
    });
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  it('compresses JPEG, PNG (RGB and RGBA) and WebP into smaller, clean images of the same format and size', async () => {
    const cases = [
      { file: 'rocket-small.jpg', format: 'jpeg', type: 'image/jpeg' },
      { file: 'coffee-orient6.jpg', format: 'jpeg', type: 'image/jpeg', rotated: true },
      { file: 'chelsea.png', format: 'png', type: 'image/png' },
      { file: 'astronaut-alpha.png', format: 'png', type: 'image/png' },
      { file: 'Kite.webp', format: 'webp', type: 'image/webp' },
    ] as const;
    // Served without extensions and with a misleading type: the format comes from the bytes.
    for (const c of cases) images.serve(`/corpus/${c.file}-x`, fixture(c.file), 'application/octet-stream');
    const res = await upload(svc.base, csvOf(cases.map((c) => [images.url(`/corpus/${c.file}-x`)])));
    expect(res.status).toBe(202);
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status).toMatchObject({ status: 'completed', progress: { total: 5, done: 5, failed: 0 } });

    let bytesIn = 0;
    let bytesOut = 0;
    for (const [i, c] of cases.entries()) {
      const product = status.products[i];
      expect(product.errors).toEqual([null]);
      const input = fixture(c.file);
      const { res: img, bytes } = await fetchImage(product.output_urls[0]);
      expect(img.status).toBe(200);
      // The sizes reported beside each output are the source's and the served output's.
      expect(product.input_bytes).toEqual([input.length]);
      expect(product.output_bytes).toEqual([bytes.length]);
      expect(product.outcomes).toEqual(['compressed']);
      bytesIn += input.length;
      bytesOut += bytes.length;
      expect(img.headers.get('content-type')).toBe(c.type);
      expect(img.headers.get('cache-control')).toContain('immutable');
      expect(detectFormat(bytes)).toBe(c.format);
      expect(bytes.length).toBeLessThan(input.length);
      const decoded = await CODECS[c.format].decode(bytes);
      const source = readDimensions(input, c.format)!;
      const expected = 'rotated' in c ? { width: source.height, height: source.width } : source;
      expect({ width: decoded.width, height: decoded.height }).toEqual(expected);
      if (c.format === 'jpeg') expect(jpegHasExif(bytes)).toBe(false);
      const etag = img.headers.get('etag')!;
      expect((await fetch(product.output_urls[0], { headers: { 'if-none-match': etag } })).status).toBe(304);
    }
    expect(status.bytes).toEqual({ in: bytesIn, out: bytesOut });
    const csv = await (await fetch(`${svc.base}/api/v1/status/${res.body.request_id}/output.csv`)).text();
    expect(csv).toContain(status.products[0].output_urls[0]);
  });

  it('charges each misbehaving source to its own image, with a reason', async () => {
    const jpeg = fixture('rocket-small.jpg');
    images.serve('/bad/truncated.jpg', jpeg.slice(0, Math.floor(jpeg.length / 2)), 'image/jpeg');
    images.serve('/bad/huge.png', hugePngHeader(30_000, 30_000), 'image/png');
    images.failThen('/flaky/ok.jpg', 1, { kind: 'bytes', body: jpeg, type: 'image/jpeg' });
    const cases: Array<[string, RegExp | null]> = [
      [images.url(BUILTIN.notFound), /HTTP 404/],
      [images.url(BUILTIN.htmlAsJpeg), /not an image: an HTML page arrived/],
      [images.url('/bad/truncated.jpg'), /truncated/],
      [images.url('/bad/huge.png'), /30000x30000.*exceeds/],
      [images.url(BUILTIN.endless), /too large/],
      [images.url(BUILTIN.hang), /timed out/],
      [images.url(BUILTIN.loop), /redirect/],
      [images.url('/flaky/ok.jpg'), null],
    ];
    const res = await upload(svc.base, csvOf(cases.map(([u]) => [u])));
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status).toMatchObject({ status: 'completed', progress: { total: 8, done: 1, failed: 7 } });
    for (const [i, [url, reason]] of cases.entries()) {
      const product = status.products[i];
      expect(product.input_urls).toEqual([url]);
      if (reason) {
        expect(product.errors[0]).toMatch(reason);
        expect(product.output_urls).toEqual([null]);
        expect(product.processing_status).toBe('failed');
        expect([product.outcomes, product.input_bytes, product.output_bytes]).toEqual([[null], [null], [null]]);
      } else {
        expect(product.errors).toEqual([null]);
        expect(product.output_urls[0]).toMatch(/\/images\/[0-9a-f]{64}\.jpg$/);
      }
    }
    expect(images.hits('/flaky/ok.jpg')).toBe(2); // 500, then the retry that worked
    expect(images.hits(BUILTIN.notFound)).toBe(1); // a 404 is not retried
    const csv = await (await fetch(`${svc.base}/api/v1/status/${res.body.request_id}/output.csv`)).text();
    expect(csv.split("\r\n")[1]).toMatch(/^"1","P1","[^"]*",""$/); // failed image: empty output entry
  });

  it('blocks every spelling of loopback and redirects to it, without a single connection', async () => {
    const trap = await startTrap({ host: '127.0.0.1' });
    let trap6: Trap | null = null;
    try {
      trap6 = await startTrap({ host: '::1', port: trap.port });
    } catch { /* no IPv6 loopback here: the v4 trap still counts */ }
    try {
      const p = trap.port;
      const urls = [
        `http://127.0.0.1:${p}/a.jpg`, `http://localhost:${p}/a.jpg`, `http://0.0.0.0:${p}/a.jpg`, `http://[::1]:${p}/a.jpg`,
        `http://[::ffff:127.0.0.1]:${p}/a.jpg`, `http://2130706433:${p}/a.jpg`, `http://0x7f.1:${p}/a.jpg`,
        images.redirectUrl(`http://127.0.0.1:${p}/a.jpg`),
      ];
      const res = await upload(svc.base, csvOf(urls.map((u) => [u])));
      expect(res.status).toBe(202);
      const status = await waitForStatus(svc.base, res.body.request_id);
      expect(status).toMatchObject({ status: 'failed', progress: { failed: urls.length } });
      for (const product of status.products) expect(product.errors[0]).toMatch(/blocked/);
      expect(trap.connections).toBe(0);
      expect(trap6?.connections ?? 0).toBe(0);
    } finally {
      await trap.close();
      await trap6?.close();
    }
  });
});

const noConcurrentWriters = MONGODB_URI ? await concurrentWritersUnsupported(MONGODB_URI) : null;
if (noConcurrentWriters) console.log(`pipeline: two-process test skipped: ${noConcurrentWriters}`);

describe('pipeline across processes', () => {
  let images: ImageServer;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.9' });
    const jpeg = fixture('rocket-small.jpg');
    // Distinct bytes per URL (the photo plus bytes after its end-of-image marker): identical
    // bytes would be made once and reused, and these tests count codec runs per image.
    for (let i = 0; i < 100; i++) images.serve(`/many/${i}.jpg`, new Uint8Array([...jpeg, ...new Uint8Array(i + 1)]), 'image/jpeg');
  });
  afterAll(async () => {
    await images?.close();
  });
  const manyCsv = () => csvOf(Array.from({ length: 50 }, (_, i) => [images.url(`/many/${2 * i}.jpg`), images.url(`/many/${2 * i + 1}.jpg`)]));
  const codecRuns = (log: string) => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);

  it('finishes a request after kill -9 half-way, with one output per image and nothing stuck', async () => {
    const dataDir = tempDir();
    const env = { FETCH_ALLOWLIST: images.cidr, LEASE_MS: '2000', CODEC_RUN_LOG: join(dataDir, 'codec-runs.log') };
    const first = await spawnService(env, dataDir);
    const res = await upload(first.base, manyCsv());
    expect(res.status).toBe(202);
    await waitForStatus(first.base, res.body.request_id, { until: (b) => b.progress.done >= 25 });
    first.proc.kill('SIGKILL');
    await first.exited;

    const second = await spawnService(env, dataDir);
    try {
      const status = await waitForStatus(second.base, res.body.request_id, { timeoutMs: 90_000 });
      expect(status).toMatchObject({ status: 'completed', progress: { total: 100, done: 100, failed: 0 } });
      const outputs = status.products.flatMap((p: any) => p.output_urls);
      expect(outputs).toHaveLength(100);
      expect(outputs.every((u: string | null) => typeof u === 'string')).toBe(true);
      expect(status.products.every((p: any) => p.processing_status === 'completed')).toBe(true);
      // Work cut off by the kill may run again (at least once), never more than once after it.
      expect(codecRuns(env.CODEC_RUN_LOG).length).toBeGreaterThanOrEqual(100);
      expect(codecRuns(env.CODEC_RUN_LOG).length).toBeLessThan(100 + 20);
    } finally {
      await second.stop();
    }
  }, 120_000);

  it.skipIf(noConcurrentWriters)('lets two processes on one store share a request with no image processed twice', async () => {
    images.reset();
    const dataDir = tempDir();
    const log = join(dataDir, 'codec-runs.log');
    appendFileSync(log, '');
    const env = { FETCH_ALLOWLIST: images.cidr, CODEC_RUN_LOG: log };
    const [a, b] = await Promise.all([spawnService(env, dataDir), spawnService(env, dataDir)]);
    try {
      const res = await upload(a.base, manyCsv());
      const status = await waitForStatus(b.base, res.body.request_id, { timeoutMs: 90_000 });
      expect(status).toMatchObject({ status: 'completed', progress: { total: 100, done: 100, failed: 0 } });
      const runs = codecRuns(log);
      expect(runs).toHaveLength(100);
      for (let i = 0; i < 100; i++) expect(images.hits(`/many/${i}.jpg`)).toBe(1);
      const pids = new Set(runs.map((line) => line.split(' ')[0]));
      expect(pids).toEqual(new Set([String(a.proc.pid), String(b.proc.pid)]));
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 120_000);
});

describe('status of a large request', () => {
  it('pages 10 000 products correctly', async () => {
    const svc = await startTestService({ ROLE: 'api' });
    try {
      const rows = Array.from({ length: 10_000 }, (_, i) => `${i + 1},Item ${i + 1},https://cdn.example.com/${i}.jpg`);
      const res = await upload(svc.base, `${SEED_HEADER}\n${rows.join('\n')}\n`);
      expect(res.body).toMatchObject({ products: 10_000, images: 10_000 });
      const serials: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      const started = performance.now();
      do {
        const url = `${svc.base}/api/v1/status/${res.body.request_id}?limit=1000${cursor ? `&cursor=${cursor}` : ''}`;
        const body: any = await (await fetch(url)).json();
        expect(body.progress.total).toBe(10_000);
        serials.push(...body.products.map((p: any) => p.serial_number));
        cursor = body.next_cursor;
        pages++;
      } while (cursor);
      console.log(`status paging: 10 pages of 1000 products in ${(performance.now() - started).toFixed(0)} ms`);
      expect(pages).toBe(10);
      expect(serials).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    } finally {
      await svc.stop();
    }
  }, 60_000);
});

describe('runner shutdown', () => {
  it('stop() during a claim hands the claimed items back instead of starting them', async () => {
    const images = await startImageServer({ host: '127.0.0.9' });
    const api = await startTestService({ ROLE: 'api' }); // stores the request; runs nothing
    const pool = new CompressPool({ threads: 1, maxPixels: 50_000_000 });
    try {
      const res = await upload(api.base, csvOf([[images.url(BUILTIN.hang)]]));
      expect(res.status).toBe(202);
      const config = loadConfig({
        DATA_DIR: api.dataDir, LOG_LEVEL: 'silent', FETCH_ALLOWLIST: images.cidr, FETCH_TIMEOUT_MS: '2000', FETCH_RETRIES: '2', FETCH_RETRY_BASE_MS: '20',
      });
      // The real store, with its claim held back until stop() has begun.
      const store = api.service.store;
      let claimStarted!: () => void;
      const claiming = new Promise<void>((r) => (claimStarted = r));
      let letClaimFinish!: () => void;
      const gate = new Promise<void>((r) => (letClaimFinish = r));
      const slowStore = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'claimItems') {
            return async (input: Parameters<Store['claimItems']>[0]) => {
              claimStarted();
              await gate;
              return target.claimItems(input);
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      const runner = new PipelineRunner({
        config, store: slowStore, storage: new LocalStorage(join(api.dataDir, 'images')), pool,
        log: createLogger(config),
      });
      runner.start();
      await claiming;
      const t0 = performance.now();
      const stopped = runner.stop(100);
      letClaimFinish();
      await stopped;
      expect(performance.now() - t0).toBeLessThan(1500); // not the 3 attempts x 2 s of the hanging download
      expect(images.hits(BUILTIN.hang)).toBe(0);
      const [item] = await store.getItemsByUrl(res.body.request_id, [images.url(BUILTIN.hang)]);
      expect(item).toMatchObject({ state: 'pending', leaseOwner: null });
    } finally {
      await pool.close();
      await api.stop();
      await images.close();
    }
  }, 30_000);
});

describe('runner leases', () => {
  it('stops working on an item when its lease cannot be renewed, before another runner may claim it', async () => {
    const images = await startImageServer({ host: '127.0.0.9' });
    const api = await startTestService({ ROLE: 'api' });
    const pool = new CompressPool({ threads: 1, maxPixels: 50_000_000 });
    try {
      const res = await upload(api.base, csvOf([[images.url(BUILTIN.hang)]]));
      expect(res.status).toBe(202);
      const config = loadConfig({
        DATA_DIR: api.dataDir, LOG_LEVEL: 'silent', FETCH_ALLOWLIST: images.cidr, LEASE_MS: '1000', FETCH_TIMEOUT_MS: '8000', FETCH_RETRIES: '0',
      });
      // The real store, except that renewing leases fails (store unreachable from this runner).
      const store = api.service.store;
      const failingRenewals = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'renewLeases') return async () => { throw new Error('store unreachable'); };
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      const runner = new PipelineRunner({
        config, store: failingRenewals, storage: new LocalStorage(join(api.dataDir, 'images')), pool,
        log: createLogger(config), idlePollMs: 60_000,
      });
      runner.start();
      await until(() => runner.inFlight > 0, 'the claim', { timeoutMs: 5_000, intervalMs: 10 });
      expect(runner.inFlight).toBe(1);
      const claimedAt = performance.now();
      // The lease (1 s) runs out long before the hanging download's 8 s timeout.
      await until(() => runner.inFlight === 0, 'the item to be given up', { timeoutMs: 4_000, intervalMs: 10 });
      expect(performance.now() - claimedAt).toBeLessThan(1000);
      await runner.stop(0);
    } finally {
      await pool.close();
      await api.stop();
      await images.close();
    }
  }, 30_000);
});
