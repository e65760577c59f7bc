// Operating the data through the HTTP API with real images: cancel, retry the failed images,
// delete (outputs removed after BLOB_GRACE_SECONDS unless another request refers to them, even
// one racing the deletion), the orphan sweep, retention by one runner, per-tenant quotas, and a
// kill -9 in the middle of a delete.
import { execFile } from 'node:child_process';
import { readFileSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/log.js';
import { OutputCleanup } from '../src/operations/output-cleanup.js';
import { RequestActions } from '../src/operations/request-actions.js';
import { Retention } from '../src/operations/retention.js';
import { LocalStorage } from '../src/storage/local.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { getJson, ROOT, sleep, spawnService, startTestService, storedCounts, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';
import { MONGODB_URI } from './helpers/mongo.js';
import { until } from './helpers/poll.js';

const jpeg = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg')));
const png = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/chelsea.png')));
const silent = createLogger({ LOG_LEVEL: 'silent' });
/** Images in each probe request of the cancel test: enough claims to give a cancelled request its turns. */
const PROBE_IMAGES = 8;

async function call(base: string, method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { method, headers });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

describe('operating requests over HTTP', () => {
  let images: ImageServer;
  let svc: TestService;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.16' });
    images.serve('/a.jpg', jpeg, 'image/jpeg');
    images.serve('/b.png', png, 'image/png');
    // Slow images keep a request running long enough to cancel it.
    for (let i = 0; i < 40; i++) images.set(`/slow/${i}.jpg`, { kind: 'slow-drip', body: jpeg, intervalMs: 10, bytesPerTick: 4_000, type: 'image/jpeg' });
    for (let round = 0; round < 2; round++) for (let i = 0; i < PROBE_IMAGES; i++) images.serve(`/probe/${round}/${i}.jpg`, jpeg, 'image/jpeg');
    svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, FETCH_RETRIES: '0', BLOB_GRACE_SECONDS: '1', DOWNLOAD_CONCURRENCY: '2' }, tempDir());
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  it('cancels a running request: nothing more is started, the event goes out, a second cancel is 409', async () => {
    const hook = await startImageServer({ host: '127.0.0.17' });
    hook.serve('/hook', 'ok', 'text/plain');
    const hooked = await startTestService({ FETCH_ALLOWLIST: `${images.cidr},${hook.cidr}`, DOWNLOAD_CONCURRENCY: '2' }, tempDir());
    try {
      const sub = await fetch(`${hooked.base}/api/v1/webhook/configure`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhook_url: hook.url('/hook'), events: ['processing.cancelled'] }),
      });
      expect(sub.status).toBe(201);
      const res = await upload(hooked.base, `product_name,image_url\n${Array.from({ length: 40 }, (_, i) => `P${i},${images.url(`/slow/${i}.jpg`)}`).join('\n')}\n`);
      await waitForStatus(hooked.base, res.body.request_id, { until: (b) => b.status === 'processing' });
      const cancelled = await call(hooked.base, 'POST', `/api/v1/requests/${res.body.request_id}/cancel`);
      expect(cancelled.status).toBe(202);
      expect(cancelled.body).toMatchObject({ request_id: res.body.request_id, status: 'cancelled' });
      const started = () => Array.from({ length: 40 }, (_, i) => images.hits(`/slow/${i}.jpg`)).reduce((a, b) => a + b, 0);
      const atCancel = started();
      // Images the runner had claimed (at most its DOWNLOAD_CONCURRENCY + 2 × threads = 4 slots)
      // may still finish; nothing unclaimed is ever started. The clock for "nothing more" is a
      // probe request of the same tenant: the fair claim order alternates between its requests,
      // so while the probe's images are claimed one by one, every other slot would go to the
      // cancelled request if any of its images could still be claimed. The probe's images are
      // claimed after the ones the runner held at the cancel, so those have started by its end.
      const probe = async (round: number) => {
        const csv = `product_name,image_url\n${Array.from({ length: PROBE_IMAGES }, (_, i) => `Probe${i},${images.url(`/probe/${round}/${i}.jpg`)}`).join('\n')}\n`;
        const sent = await upload(hooked.base, csv);
        expect(sent.status).toBe(202);
        expect(await waitForStatus(hooked.base, sent.body.request_id)).toMatchObject({ status: 'completed', progress: { done: PROBE_IMAGES } });
      };
      await probe(0);
      const settled = started();
      await probe(1);
      expect(started()).toBe(settled);
      expect(settled).toBeLessThanOrEqual(atCancel + 4);
      expect(settled).toBeLessThan(40);
      const status = (await getJson(`${hooked.base}/api/v1/status/${res.body.request_id}`)).body;
      expect(status.status).toBe('cancelled');
      expect((await call(hooked.base, 'POST', `/api/v1/requests/${res.body.request_id}/cancel`)).status).toBe(409);
      await until(() => hook.hits('/hook') > 0, 'the cancelled event', { timeoutMs: 10_000 });
      const body = JSON.parse(hook.requests.find((r) => r.path === '/hook')!.body.toString());
      expect(body).toMatchObject({ type: 'processing.cancelled', data: { request_id: res.body.request_id, status: 'cancelled' } });
      expect(hook.requests[0]!.headers['webhook-signature']).toMatch(/^v1,/);
    } finally {
      await hooked.stop();
      await hook.close();
    }
  });

  it('retries only the failed images once the supplier has fixed them', async () => {
    images.failThen('/flaky.jpg', 1, { kind: 'bytes', body: jpeg, type: 'image/jpeg' }, 503);
    const res = await upload(svc.base, `product_name,image_url\nOK,${images.url('/a.jpg')}\nFlaky,${images.url('/flaky.jpg')}\n`);
    const first = await waitForStatus(svc.base, res.body.request_id);
    expect(first).toMatchObject({ status: 'completed', progress: { total: 2, done: 1, failed: 1 } });
    const okOutput = first.products[0].output_urls[0];
    expect((await call(svc.base, 'POST', `/api/v1/requests/${res.body.request_id}/retry`)).status).toBe(202);
    const second = await waitForStatus(svc.base, res.body.request_id, { until: (b) => b.status === 'completed' && b.progress.failed === 0 });
    expect(second.progress).toEqual({ total: 2, done: 2, failed: 0 });
    expect(second.products[0].output_urls[0]).toBe(okOutput); // untouched
    expect(images.hits('/a.jpg')).toBe(1);
    expect(images.hits('/flaky.jpg')).toBe(2);
    const none = await call(svc.base, 'POST', `/api/v1/requests/${res.body.request_id}/retry`);
    expect(none.status).toBe(409);
    expect(none.body.detail).toMatch(/no failed images/);
    expect((await call(svc.base, 'POST', '/api/v1/requests/unknown/retry')).status).toBe(404);
  });

  it('deletes a request at once, and its outputs after the grace unless another request uses them', async () => {
    const keep = await upload(svc.base, `product_name,image_url\nShared,${images.url('/a.jpg')}\n`);
    const gone = await upload(svc.base, `product_name,image_url\nShared,${images.url('/a.jpg')}\nOwn,${images.url('/b.png')}\n`);
    await waitForStatus(svc.base, keep.body.request_id);
    const done = await waitForStatus(svc.base, gone.body.request_id);
    const [shared, own] = [done.products[0].output_urls[0], done.products[1].output_urls[0]];
    expect((await fetch(own)).status).toBe(200);
    expect((await call(svc.base, 'DELETE', `/api/v1/requests/${gone.body.request_id}`)).status).toBe(204);
    expect((await call(svc.base, 'GET', `/api/v1/status/${gone.body.request_id}`)).status).toBe(404);
    expect((await call(svc.base, 'GET', `/api/v1/status/${gone.body.request_id}/output.csv`)).status).toBe(404);
    expect((await call(svc.base, 'DELETE', `/api/v1/requests/${gone.body.request_id}`)).status).toBe(404);
    // Grace 1 s, checked about a second after it.
    await until(async () => (await fetch(own)).status === 404, 'the orphaned output to be swept', { timeoutMs: 10_000 });
    expect((await fetch(shared)).status).toBe(200); // the other request still refers to it
  });

  it('removes rendition outputs like the others: kept by the sweep while referenced, gone after a delete', async () => {
    const res = await upload(svc.base, `product_name,image_url\nPng,${images.url('/b.png')}\n`, {
      fields: { renditions: JSON.stringify([{ name: 'tiny', max_width: 77, format: 'webp' }]) },
    });
    const done = await waitForStatus(svc.base, res.body.request_id);
    const tiny: string = done.products[0].renditions.tiny[0];
    expect((await fetch(tiny)).status).toBe(200);
    const storage = new LocalStorage(svc.config.IMAGE_STORAGE_PATH);
    const key = tiny.split('/').pop()!;
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(storage.pathOf(key), hourAgo, hourAgo); // old, but referenced
    const cleanup = new OutputCleanup({ store: svc.service.store, storage, log: silent, graceMs: 60_000 });
    await cleanup.sweep();
    cleanup.stop();
    expect(await storage.modifiedAt(key)).not.toBeNull();
    expect((await call(svc.base, 'DELETE', `/api/v1/requests/${res.body.request_id}`)).status).toBe(204);
    // grace 1 s, checked about a second after it
    await vi.waitFor(async () => expect((await fetch(tiny)).status).toBe(404), { timeout: 10_000, interval: 100 });
  });

  it('keeps an output that a new request produces while its old owner is being deleted', async () => {
    const old = await upload(svc.base, `product_name,image_url\nPng,${images.url('/b.png')}\n`);
    const output = (await waitForStatus(svc.base, old.body.request_id)).products[0].output_urls[0];
    // Race: delete, and at the same moment a new request that makes the same output.
    const [deleted, fresh] = await Promise.all([
      call(svc.base, 'DELETE', `/api/v1/requests/${old.body.request_id}`),
      upload(svc.base, `product_name,image_url\nPngAgain,${images.url('/b.png')}\n`),
    ]);
    expect(deleted.status).toBe(204);
    const again = await waitForStatus(svc.base, fresh.body.request_id);
    expect(again.products[0].output_urls[0]).toBe(output);
    // The rule under test is a time: wait out the configured grace (and the check after it) and look.
    await sleep(svc.config.BLOB_GRACE_SECONDS * 1_000 * 3);
    expect((await fetch(output)).status).toBe(200);
  });

  it('sweeps orphaned outputs after the grace, and retention deletes old requests by one runner', async () => {
    const storage = new LocalStorage(svc.config.IMAGE_STORAGE_PATH);
    const store = svc.service.store;
    const orphan = `${'e'.repeat(64)}.jpg`;
    const freshOrphan = `${'f'.repeat(64)}.jpg`;
    for (const key of [orphan, freshOrphan]) {
      mkdirSync(join(svc.config.IMAGE_STORAGE_PATH, key.slice(0, 2)), { recursive: true });
      writeFileSync(storage.pathOf(key), jpeg);
    }
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(storage.pathOf(orphan), hourAgo, hourAgo);
    const res = await upload(svc.base, `product_name,image_url\nOld,${images.url('/a.jpg')}\n`);
    const output = (await waitForStatus(svc.base, res.body.request_id)).products[0].output_urls[0];
    const key = output.split('/').pop()!;
    utimesSync(storage.pathOf(key), hourAgo, hourAgo); // old, but referenced

    const cleanup = new OutputCleanup({ store, storage, log: silent, graceMs: 60_000 });
    expect(await cleanup.sweep()).toBe(1);
    expect(await storage.modifiedAt(orphan)).toBeNull();
    expect(await storage.modifiedAt(freshOrphan)).not.toBeNull(); // still within its grace
    expect(await storage.modifiedAt(key)).not.toBeNull();

    const actions = new RequestActions({ store, cleanup });
    const runner = (owner: string) => new Retention({ store, actions, cleanup, log: silent, owner, retentionDays: 1, sweepEveryMs: Number.MAX_SAFE_INTEGER });
    const inTwoDays = Date.now() + 2 * 86_400_000;
    const [a, b] = [runner('upkeep-a'), runner('upkeep-b')];
    const deleted = await a.runOnce(inTwoDays);
    expect(deleted).toBeGreaterThan(0);
    expect(await b.runOnce(inTwoDays)).toBe(0); // the lock is a's for this interval
    expect((await call(svc.base, 'GET', `/api/v1/status/${res.body.request_id}`)).status).toBe(404);
    expect((await getJson(`${svc.base}/api/v1/requests`)).body.requests).toEqual([]);
    cleanup.stop();
  });
});

describe('requests from the CLI', () => {
  it('cancels, retries and deletes on the server’s store', async () => {
    const images = await startImageServer({ host: '127.0.0.21' });
    images.serve('/a.jpg', jpeg, 'image/jpeg');
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr }, tempDir());
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), 'requests', ...args], {
      env: { ...process.env, DATA_DIR: svc.dataDir, MONGODB_URI: svc.config.MONGODB_URI ?? '', DATABASE_NAME: svc.config.DATABASE_NAME, LOG_LEVEL: 'silent' },
    });
    try {
      const res = await upload(svc.base, `product_name,image_url\nA,${images.url('/a.jpg')}\n`);
      await waitForStatus(svc.base, res.body.request_id);
      await expect(cli('cancel', res.body.request_id)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/already finished/) });
      await expect(cli('retry', res.body.request_id)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/no failed images/) });
      expect((await cli('delete', res.body.request_id)).stdout).toContain(`deleted ${res.body.request_id}`);
      expect((await call(svc.base, 'GET', `/api/v1/status/${res.body.request_id}`)).status).toBe(404);
      await expect(cli('delete', res.body.request_id)).rejects.toMatchObject({ code: 1 });
    } finally {
      await svc.stop();
      await images.close();
    }
  });
});

describe('per-tenant quotas', () => {
  it('answers 429 with Retry-After and a detail naming the limit, and never drops accepted work', async () => {
    const images = await startImageServer({ host: '127.0.0.18' });
    images.set('/slow.jpg', { kind: 'slow-drip', body: jpeg, intervalMs: 20, bytesPerTick: 2_000, type: 'image/jpeg' });
    images.serve('/a.jpg', jpeg, 'image/jpeg');
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, MAX_UPLOADS_PER_MINUTE: '2', MAX_IMAGES_IN_FLIGHT_PER_TENANT: '1' }, tempDir());
    try {
      const first = await upload(svc.base, `product_name,image_url\nSlow,${images.url('/slow.jpg')}\n`);
      expect(first.status).toBe(202);
      const queued = await upload(svc.base, `product_name,image_url\nA,${images.url('/a.jpg')}\n`);
      expect(queued.status).toBe(429);
      expect(queued.body.detail).toMatch(/MAX_IMAGES_IN_FLIGHT_PER_TENANT/);
      expect(Number(queued.headers.get('retry-after'))).toBeGreaterThan(0);
      await waitForStatus(svc.base, first.body.request_id);
      const second = await upload(svc.base, `product_name,image_url\nA,${images.url('/a.jpg')}\n`);
      expect(second.status).toBe(202);
      const third = await upload(svc.base, `product_name,image_url\nA,${images.url('/a.jpg')}\n`);
      expect(third.status).toBe(429);
      expect(third.body.detail).toMatch(/MAX_UPLOADS_PER_MINUTE/);
      const wait = Number(third.headers.get('retry-after'));
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(60);
      expect((await waitForStatus(svc.base, second.body.request_id)).status).toBe('completed');
      expect((await getJson(`${svc.base}/api/v1/requests`)).body.requests).toHaveLength(2);
    } finally {
      await svc.stop();
      await images.close();
    }
  });
});

describe('per-key quota overrides', () => {
  it('holds a tenant to the quotas given with its key, and others to the settings', async () => {
    const images = await startImageServer({ host: '127.0.0.22' });
    images.serve('/a.jpg', jpeg, 'image/jpeg');
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, API_KEY: 'admin-quota' }, tempDir());
    try {
      const made = await fetch(`${svc.base}/api/v1/keys`, {
        method: 'POST', headers: { 'x-api-key': 'admin-quota', 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'limited', max_uploads_per_minute: 1 }),
      });
      const key = (await made.json()) as { key: string; max_uploads_per_minute: number; max_images_in_flight: number | null };
      expect(key).toMatchObject({ max_uploads_per_minute: 1, max_images_in_flight: null });
      const csv = `product_name,image_url\nA,${images.url('/a.jpg')}\n`;
      expect((await upload(svc.base, csv, { headers: { 'x-api-key': key.key } })).status).toBe(202);
      const over = await upload(svc.base, csv, { headers: { 'x-api-key': key.key } });
      expect(over.status).toBe(429);
      expect(over.body.detail).toMatch(/max_uploads_per_minute\) is 1 /);
      for (let i = 0; i < 3; i++) expect((await upload(svc.base, csv, { headers: { 'x-api-key': 'admin-quota' } })).status).toBe(202);
      const listed = await (await fetch(`${svc.base}/api/v1/keys`, { headers: { 'x-api-key': 'admin-quota' } })).json() as { keys: Array<{ max_uploads_per_minute: number }> };
      expect(listed.keys[0]!.max_uploads_per_minute).toBe(1);
    } finally {
      await svc.stop();
      await images.close();
    }
  });
});

describe('kill -9 in the middle of a delete', () => {
  it('leaves the request either whole or gone, never half-deleted to a reader', async () => {
    const images = await startImageServer({ host: '127.0.0.19' });
    const dataDir = tempDir();
    let svc = await spawnService({ FETCH_ALLOWLIST: images.cidr, ROLE: 'api' }, dataDir);
    try {
      const rows = 5_000;
      const res = await upload(svc.base, `product_name,image_url\n${Array.from({ length: rows }, (_, i) => `P${i},${images.url(`/x/${i}.jpg`)}`).join('\n')}\n`);
      expect(res.status).toBe(202);
      const deleting = fetch(`${svc.base}/api/v1/requests/${res.body.request_id}`, { method: 'DELETE' }).catch(() => null);
      await sleep(15); // the kill race under test: let the delete begin, then kill the process mid-way
      svc.proc.kill('SIGKILL');
      await svc.exited;
      await deleting;
      svc = await spawnService({ FETCH_ALLOWLIST: images.cidr, ROLE: 'api' }, dataDir);
      // No wait for the start-up upkeep: a reader must see the request whole or gone at every
      // moment, also while the upkeep is finishing an interrupted delete.
      const status = await call(svc.base, 'GET', `/api/v1/status/${res.body.request_id}?limit=1000`);
      const listed = (await getJson(`${svc.base}/api/v1/requests`)).body.requests.map((r: { request_id: string }) => r.request_id);
      if (status.status === 200) {
        // Not deleted: whole.
        expect(status.body.progress.total).toBe(rows);
        expect(listed).toContain(res.body.request_id);
        let products = 0;
        let cursor: string | null = null;
        do {
          const page = await getJson(`${svc.base}/api/v1/status/${res.body.request_id}?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
          products += page.body.products.length;
          cursor = page.body.next_cursor;
        } while (cursor);
        expect(products).toBe(rows);
      } else {
        expect(status.status).toBe(404);
        expect((await call(svc.base, 'GET', `/api/v1/status/${res.body.request_id}/output.csv`)).status).toBe(404);
        expect(listed).not.toContain(res.body.request_id);
        // And the upkeep run at start-up removes what the interrupted delete left (SQLite rows read directly).
        if (!MONGODB_URI) await until(async () => (await storedCounts(dataDir)).requests === 0, 'the start-up upkeep to purge the interrupted delete');
      }
      console.log(`kill -9 mid-delete: the request was ${status.status === 200 ? 'kept whole' : 'gone'} after restart`);
    } finally {
      await svc.stop();
      await images.close();
    }
  }, 60_000);
});
