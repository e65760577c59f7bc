// Live progress over real HTTP on loopback: GET /api/v1/status/{id}/events and
// GET /api/v1/requests/events, read as text/event-stream with fetch(). Images come from a local
// server that holds chosen responses until the test lets them go, so each step is the test's.
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { startTestService, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';
import { openEvents, type SseEvent, type SseStream } from './helpers/sse.js';
import { until } from './helpers/poll.js';

const jpeg = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg')));
const csvOf = (urls: string[]) => `product_name,image_url\n${urls.map((u, i) => `P${i},${u}`).join('\n')}\n`;
const done = (e: SseEvent) => e.data.progress.done + e.data.progress.failed;
const ids = (s: SseStream) => s.events.map((e) => Number(e.id));

describe('event streams', () => {
  let images: ImageServer;
  let svc: TestService;
  /** Responses held by the gate, in arrival order. */
  const held: ServerResponse[] = [];
  const gate = (path: string) => images.set(path, { kind: 'handler', fn: (_req, res) => held.push(res) });
  const release = () => held.shift()!.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(jpeg.length) }).end(jpeg);
  const heldCount = (n: number) => until(() => held.length >= n, `${n} held image requests`);

  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.12' });
    svc = await startTestService({
      FETCH_ALLOWLIST: images.cidr, FETCH_TIMEOUT_MS: '60000', DOWNLOAD_CONCURRENCY: '1',
      // The watcher polls far more often than 4 times a second: only the stream keeps events apart.
      EVENTS_POLL_MS: '20', EVENTS_KEEPALIVE_MS: '200',
    });
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  it('sends the state first, a progress event per change, the final event, then ends; ids increase', async () => {
    const urls = [1, 2, 3].map((i) => images.url(`/gated/${i}.jpg`));
    urls.forEach((u) => gate(new URL(u).pathname));
    const { body } = await upload(svc.base, csvOf(urls));
    const s = await openEvents(`${svc.base}/api/v1/status/${body.request_id}/events`);
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const first = await s.next();
    expect(first.event).toBe('progress');
    expect(first.data).toEqual({ request_id: body.request_id, status: expect.stringMatching(/^(received|processing)$/), progress: { total: 3, done: 0, failed: 0 } });
    // Nothing moves while the images are held; the stream stays open, kept alive by comments.
    await s.comment('keep-alive');
    for (let n = 1; n <= 2; n++) {
      await heldCount(1);
      release();
      const e = await s.next((x) => x.event === 'progress' && done(x) === n);
      expect(e.data).toEqual({ request_id: body.request_id, status: 'processing', progress: { total: 3, done: n, failed: 0 } });
    }
    await heldCount(1);
    release();
    await s.ended; // the server closes the stream after the final event
    const last = s.events.at(-1)!;
    expect(last).toMatchObject({ event: 'completed', data: { request_id: body.request_id, status: 'completed', progress: { total: 3, done: 3, failed: 0 } } });
    expect(s.events.slice(0, -1).every((e) => e.event === 'progress')).toBe(true);
    expect(ids(s)[0]).toBe(1);
    ids(s).slice(1).forEach((id, i) => expect(id).toBeGreaterThan(ids(s)[i]!));
    // Progress never goes back.
    s.events.slice(1).forEach((e, i) => expect(done(e)).toBeGreaterThanOrEqual(done(s.events[i]!)));
  });

  it('coalesces progress to at most 4 events a second, however often the state changes', async () => {
    const urls = Array.from({ length: 60 }, (_, i) => images.url(`/fast/${i}.jpg`));
    urls.forEach((u) => images.serve(new URL(u).pathname, jpeg, 'image/jpeg'));
    const { body } = await upload(svc.base, csvOf(urls));
    const opened = performance.now();
    const s = await openEvents(`${svc.base}/api/v1/status/${body.request_id}/events`);
    await s.ended;
    const elapsedS = (s.events.at(-1)!.at - opened) / 1000;
    const progress = s.events.filter((e) => e.event === 'progress');
    expect(s.events.at(-1)!.event).toBe('completed');
    expect(progress.length).toBeGreaterThan(0);
    // 60 completions, each one a change the watcher (polling every 20 ms) sees.
    expect(progress.length).toBeLessThanOrEqual(Math.floor(elapsedS * 4) + 2);
    const status = await waitForStatus(svc.base, body.request_id);
    expect(s.events.at(-1)!.data.progress).toEqual(status.progress);
  });

  it('answers a request that is already final with its final event alone, then ends', async () => {
    const ok = await upload(svc.base, csvOf([images.url('/fast/0.jpg')]));
    const bad = await upload(svc.base, csvOf([images.url('/_/404')]));
    await waitForStatus(svc.base, ok.body.request_id);
    await waitForStatus(svc.base, bad.body.request_id);
    for (const [id, final] of [[ok.body.request_id, 'completed'], [bad.body.request_id, 'failed']] as const) {
      const s = await openEvents(`${svc.base}/api/v1/status/${id}/events`);
      await s.ended;
      expect(s.events.map((e) => [e.id, e.event, e.data.status])).toEqual([['1', final, final]]);
    }
  });

  it('answers 404 { detail } for an unknown request', async () => {
    const s = await openEvents(`${svc.base}/api/v1/status/no-such-request/events`);
    expect(s.status).toBe(404);
    expect(s.body).toEqual({ detail: 'Request ID not found' });
  });

  it('ends every stream cleanly when the service stops', async () => {
    // An API-only server runs no pipeline: its request stays open, and so does the stream.
    const own = await startTestService({ ROLE: 'api' });
    const { body } = await upload(own.base, csvOf([images.url('/never.jpg')]));
    const status = await openEvents(`${own.base}/api/v1/status/${body.request_id}/events`);
    const list = await openEvents(`${own.base}/api/v1/requests/events`);
    await status.next();
    await list.comment('connected');
    await own.stop();
    await expect(status.ended).resolves.toBeUndefined(); // ended by the server, not broken off
    await expect(list.ended).resolves.toBeUndefined();
  });

  it('refuses streams beyond EVENTS_MAX_STREAMS with 503 and Retry-After, and takes new ones once some close', async () => {
    const own = await startTestService({ ROLE: 'api', EVENTS_MAX_STREAMS: '2' });
    try {
      const a = await openEvents(`${own.base}/api/v1/requests/events`);
      const b = await openEvents(`${own.base}/api/v1/requests/events`);
      expect([a.status, b.status]).toEqual([200, 200]);
      const c = await openEvents(`${own.base}/api/v1/requests/events`);
      expect(c.status).toBe(503);
      expect(c.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(c.body).toEqual({ detail: expect.stringMatching(/too many event streams/i) });
      expect(await (await fetch(`${own.base}/metrics`)).text()).toMatch(/^event_streams_open 2$/m);
      a.close();
      let again: SseStream;
      do again = await openEvents(`${own.base}/api/v1/requests/events`);
      while (again.status === 503);
      expect(again.status).toBe(200);
      again.close();
      b.close();
    } finally {
      await own.stop();
    }
  });
});

describe('event streams with API keys', () => {
  const ADMIN = 'events-admin-key';
  let svc: TestService;
  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${svc.base}${path}`, {
      method, headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
  };
  // Images at a closed loopback port: they fail at once, so each request ends quickly.
  const csv = csvOf(['http://127.0.0.1:9/x.jpg']);

  beforeAll(async () => {
    svc = await startTestService({ API_KEY: ADMIN, EVENTS_POLL_MS: '20' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it("follows a tenant's request for that tenant and the admin only; 401 without a key", async () => {
    const a = (await call(ADMIN, 'POST', '/api/v1/keys', { name: 'a' })).body.key as string;
    const b = (await call(ADMIN, 'POST', '/api/v1/keys', { name: 'b' })).body.key as string;
    const { body } = await upload(svc.base, csv, { headers: { 'x-api-key': a } });
    const url = `${svc.base}/api/v1/status/${body.request_id}/events`;
    const foreign = await openEvents(url, { 'x-api-key': b });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ detail: 'Request ID not found' });
    expect((await openEvents(url)).status).toBe(401);
    expect((await openEvents(`${svc.base}/api/v1/requests/events`)).status).toBe(401);
    for (const key of [a, ADMIN]) {
      const s = await openEvents(url, { 'x-api-key': key });
      expect(s.status).toBe(200);
      await s.ended;
      expect(s.events.at(-1)!.data).toMatchObject({ request_id: body.request_id, status: 'failed' });
    }
  });

  it("streams each tenant its own requests, the admin everyone's, and ends a stream when its key is revoked", async () => {
    const keyA = (await call(ADMIN, 'POST', '/api/v1/keys', { name: 'list-a' })).body;
    const keyB = (await call(ADMIN, 'POST', '/api/v1/keys', { name: 'list-b' })).body;
    const open = (key: string) => openEvents(`${svc.base}/api/v1/requests/events`, { 'x-api-key': key });
    const [sa, sb, admin] = [await open(keyA.key), await open(keyB.key), await open(ADMIN)];
    const ra = (await upload(svc.base, csv, { headers: { 'x-api-key': keyA.key } })).body.request_id;
    await admin.next((e) => e.data.request_id === ra); // A's request is out before B's exists
    const rb = (await upload(svc.base, csv, { headers: { 'x-api-key': keyB.key } })).body.request_id;
    const finalOf = (id: string) => (e: SseEvent) => e.event === 'request' && e.data.request_id === id && e.data.status === 'failed';
    await sa.next(finalOf(ra));
    await admin.next(finalOf(rb));
    // B's first event is its own request: A's were streamed before it and never reached B.
    expect((await sb.next()).data.request_id).toBe(rb);
    await sb.next(finalOf(rb));
    expect(sa.events.every((e) => e.data.request_id === ra)).toBe(true);
    expect(sb.events.every((e) => e.data.request_id === rb)).toBe(true);
    expect(sa.events[0]!.data).toEqual({ request_id: ra, status: expect.any(String), file_name: 'products.csv', progress: { total: 1, done: 0, failed: expect.any(Number) }, bytes: { in: expect.any(Number), out: expect.any(Number) }, created_at: expect.any(String), updated_at: expect.any(String) });

    expect((await call(ADMIN, 'DELETE', `/api/v1/keys/${keyB.id}`)).status).toBe(204);
    await sb.ended; // B's stream ends; A's and the admin's go on
    const rc = (await upload(svc.base, csv, { headers: { 'x-api-key': keyA.key } })).body.request_id;
    await sa.next(finalOf(rc));
    await admin.next(finalOf(rc));
    sa.close();
    admin.close();
  });
});

describe('event streams across servers sharing a store', () => {
  let images: ImageServer;
  let all: TestService;
  let api: TestService;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.13' });
    images.serve('/a.jpg', jpeg, 'image/jpeg');
    images.serve('/b.jpg', jpeg, 'image/jpeg');
    const dataDir = tempDir();
    const env = { FETCH_ALLOWLIST: images.cidr, EVENTS_POLL_MS: '50' };
    all = await startTestService(env, dataDir);
    api = await startTestService({ ...env, ROLE: 'api' }, dataDir);
  });
  afterAll(async () => {
    await api?.stop();
    await all?.stop();
    await images?.close();
  });

  it('streams on one server the requests uploaded through, and processed by, another', async () => {
    const list = await openEvents(`${api.base}/api/v1/requests/events`);
    await list.comment('connected');
    const { body } = await upload(all.base, csvOf([images.url('/a.jpg'), images.url('/b.jpg')]));
    const status = await openEvents(`${api.base}/api/v1/status/${body.request_id}/events`);
    expect((await list.next((e) => e.event === 'request' && e.data.request_id === body.request_id)).data.progress.total).toBe(2);
    await status.ended;
    expect(status.events.at(-1)!.data).toEqual({ request_id: body.request_id, status: 'completed', progress: { total: 2, done: 2, failed: 0 } });
    await list.next((e) => e.data.request_id === body.request_id && e.data.status === 'completed');
    list.close();

    // And the other way round: uploaded through the API-only server, seen by the other one.
    const back = await openEvents(`${all.base}/api/v1/requests/events`);
    await back.comment('connected');
    const second = await upload(api.base, csvOf([images.url('/a.jpg')]));
    await back.next((e) => e.data.request_id === second.body.request_id && e.data.status === 'completed');
    back.close();
  });
});
