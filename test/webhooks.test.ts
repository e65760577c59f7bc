// Webhooks end to end on one machine: a real SQLite store in a temp dir, events produced by
// the store's own claim/complete steps, the real dispatcher and SSRF-guarded sender, and real
// receivers over loopback (127.0.0.9, allowlisted; 127.0.0.1 stays forbidden).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { createApp, type App } from '../src/http/app.js';
import { createLogger } from '../src/log.js';
import { LocalStorage } from '../src/storage/local.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { EventType, Store } from '../src/store/types.js';
import { MAX_ATTEMPTS, RETRY_SCHEDULE_MS, retryDelay } from '../src/webhooks/backoff.js';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { assertDeliverableUrl } from '../src/webhooks/receiver-url.js';
import { generateSecret, normalizeSecret, sign, verify } from '../src/webhooks/signing.js';
import { until } from './helpers/poll.js';

const RECEIVER_HOST = '127.0.0.9';
/** A second receiver host, for the one that hangs (the per-host send limit keys on host:port). */
const OTHER_HOST = '127.0.0.10';
/** 127.0.0.8-127.0.0.15 are allowed; 127.0.0.1 stays forbidden like any loopback address. */
const ALLOW = '127.0.0.8/29';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  base: string;
  received: Received[];
  on(path: string, handler: (res: ServerResponse, n: number) => void): void;
  close(): Promise<void>;
}

/** An HTTP receiver recording every POST; per-path handlers decide the answer (default 200). */
async function startReceiver(host = RECEIVER_HOST): Promise<Receiver> {
  const received: Received[] = [];
  const handlers = new Map<string, (res: ServerResponse, n: number) => void>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const h = handlers.get(path);
      if (h) h(res, n);
      else res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://${host}:${port}`,
    received,
    on: (path, handler) => handlers.set(path, handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}


const headersOf = (r: Received) => ({
  'webhook-id': String(r.headers['webhook-id']),
  'webhook-timestamp': String(r.headers['webhook-timestamp']),
  'webhook-signature': String(r.headers['webhook-signature']),
});

interface Ctx {
  dir: string;
  store: Store;
  config: Config;
  app: App;
  receiver: Receiver;
  dispatchers: WebhookDispatcher[];
}

let ctx: Ctx;

async function setup(env: Record<string, string> = {}): Promise<Ctx> {
  const dir = mkdtempSync(join(tmpdir(), 'icp-webhooks-'));
  const config = loadConfig({
    DATA_DIR: dir,
    FETCH_ALLOWLIST: ALLOW,
    LOG_LEVEL: 'silent',
    PUBLIC_BASE_URL: 'http://images.test:8000',
    WEBHOOK_BACKOFF_SCALE: '0.001',
    WEBHOOK_TIMEOUT_MS: '1500',
    ...env,
  });
  const store = await openSqliteStore(join(dir, 'store.db'));
  const log = createLogger({ LOG_LEVEL: 'silent' });
  const app = createApp({ config, store, storage: new LocalStorage(config.IMAGE_STORAGE_PATH), log });
  return { dir, store, config, app, receiver: await startReceiver(), dispatchers: [] };
}

function dispatcher(opts: Partial<ConstructorParameters<typeof WebhookDispatcher>[0]> = {}): WebhookDispatcher {
  const d = new WebhookDispatcher({
    store: ctx.store,
    publicBaseUrl: ctx.config.PUBLIC_BASE_URL,
    timeoutMs: ctx.config.WEBHOOK_TIMEOUT_MS,
    backoffScale: ctx.config.WEBHOOK_BACKOFF_SCALE,
    allowlist: ctx.config.FETCH_ALLOWLIST,
    pollIntervalMs: 25,
    ...opts,
  });
  ctx.dispatchers.push(d);
  d.start();
  return d;
}

async function configure(body: unknown): Promise<Response> {
  return ctx.app.request('/api/v1/webhook/configure', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function subscribe(path: string, events?: EventType[]): Promise<{ id: string; secret: string }> {
  const res = await configure({ webhook_url: ctx.receiver.base + path, ...(events ? { events } : {}) });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; secret: string };
}

/** A committed request with `images` work items. */
async function newRequest(opts: { webhookUrl?: string; webhookSecret?: string; images?: number } = {}): Promise<string> {
  const id = randomUUID();
  const now = Date.now();
  await ctx.store.beginRequest({ id, tenantId: 'admin', idempotencyKey: null, webhookUrl: opts.webhookUrl ?? null, webhookSecret: opts.webhookSecret ?? null, now });
  const urls = Array.from({ length: opts.images ?? 1 }, (_, i) => `https://img.example/${id}/${i}.jpg`);
  await ctx.store.appendBatch(id, [{ serial: 1, name: 'Product', inputUrls: urls }]);
  await ctx.store.commitRequest(id, now);
  return id;
}

/** Claims and completes every pending item the way the pipeline does (events come from the store). */
async function processAll(ok = true): Promise<number> {
  const started = performance.now();
  const items = await ctx.store.claimItems({ owner: 'runner-1', limit: 100, leaseMs: 60_000, now: Date.now() });
  for (const item of items) {
    (await ctx.store.completeItems([{
      itemId: item.id,
      owner: 'runner-1',
      outcome: ok ? { ok: true, outputKey: 'out', format: 'jpeg', bytesIn: 10, bytesOut: 5, outcome: 'compressed' } : { ok: false, error: 'broken image' },
      now: Date.now(),
    }]))[0]!;
  }
  return performance.now() - started;
}

/**
 * Stops the dispatchers (each finishes and records the sends it has under way) and checks that
 * the outbox holds nothing that could still be sent, whenever due: no retry, no lease to run
 * out. After this no delivery can arrive, so "nothing more arrived" is a plain count, no wait.
 */
async function outboxSettled(): Promise<void> {
  for (const d of ctx.dispatchers) await d.stop();
  const left = await ctx.store.claimDeliveries({ owner: 'outbox-probe', limit: 100, leaseMs: 1, now: Date.now() + 365 * 86_400_000 });
  expect(left.map((d) => `${d.url} ${d.eventType}`), 'deliveries still to send').toEqual([]);
}

beforeEach(async () => {
  ctx = await setup();
});

afterEach(async () => {
  vi.useRealTimers();
  for (const d of ctx.dispatchers) await d.stop();
  await ctx.receiver.close();
  await ctx.store.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

describe('signing', () => {
  it('generates whsec_ secrets that standardwebhooks accepts, and signs one v1 per secret', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(a.slice(6), 'base64')).toHaveLength(32);
    const ts = Math.floor(Date.now() / 1000);
    const header = sign([a, b], 'msg_1', ts, '{"x":1}');
    expect(header.split(' ')).toHaveLength(2);
    expect(header.split(' ')[0]).toBe(new Webhook(a).sign('msg_1', new Date(ts * 1000), '{"x":1}'));
    for (const s of [a, b]) {
      expect(verify(s, { id: 'msg_1', timestamp: String(ts), signature: header }, '{"x":1}')).toBe(true);
    }
    expect(verify(generateSecret(), { id: 'msg_1', timestamp: String(ts), signature: header }, '{"x":1}')).toBe(false);
  });

  it('uses a WEBHOOK_SECRET without the prefix as raw key bytes, exposed as whsec_<base64>', () => {
    const secret = normalizeSecret('my operator secret');
    expect(secret).toBe(`whsec_${Buffer.from('my operator secret').toString('base64')}`);
    expect(normalizeSecret(secret)).toBe(secret);
    const ts = Math.floor(Date.now() / 1000);
    const headers = { 'webhook-id': 'm', 'webhook-timestamp': String(ts), 'webhook-signature': sign([secret], 'm', ts, '{}') };
    expect(() => new Webhook(secret).verify('{}', headers)).not.toThrow();
  });
});

describe('backoff', () => {
  it('follows ~5s, 5min, 30min, 2h, 5h, 10h, 10h with jitter, then gives up', () => {
    expect(MAX_ATTEMPTS).toBe(8);
    expect(retryDelay(1, 1, () => 0.5)).toBe(5_000);
    expect(retryDelay(7, 1, () => 0.5)).toBe(10 * 3600_000);
    expect(retryDelay(8)).toBeNull();
    for (let n = 1; n <= RETRY_SCHEDULE_MS.length; n++) {
      const d = retryDelay(n)!;
      expect(d).toBeGreaterThanOrEqual(RETRY_SCHEDULE_MS[n - 1]! * 0.8);
      expect(d).toBeLessThanOrEqual(RETRY_SCHEDULE_MS[n - 1]! * 1.2);
    }
    expect(retryDelay(2, 0.001, () => 0.5)).toBe(300);
  });
});

describe('webhook delivery', () => {
  it('signs every delivery so standardwebhooks verifies it, and rejects tampering, wrong secrets and old timestamps', async () => {
    const { secret } = await subscribe('/all');
    dispatcher();
    const requestId = await newRequest();
    await processAll();
    await until(() => ctx.receiver.received.length >= 2, 'two deliveries', { timeoutMs: 10_000 });

    const events = await ctx.store.listEvents(requestId);
    expect(events.map((e) => e.type)).toEqual(['processing.started', 'processing.completed']);
    const wh = new Webhook(secret);
    for (const [i, r] of ctx.receiver.received.entries()) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['webhook-id']).toBe(events[i]!.id);
      expect(() => wh.verify(r.body, headersOf(r))).not.toThrow();
      expect(() => new Webhook(generateSecret()).verify(r.body, headersOf(r))).toThrow();
      expect(() => wh.verify(r.body.replace('"status"', '"Status"'), headersOf(r))).toThrow();
    }
    const done = JSON.parse(ctx.receiver.received[1]!.body);
    expect(done).toEqual({
      type: 'processing.completed',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: {
        request_id: requestId,
        status: 'completed',
        progress: { total: 1, done: 1, failed: 0 },
        output_csv_url: `http://images.test:8000/api/v1/status/${requestId}/output.csv`,
      },
    });

    // The same genuine delivery, checked six minutes later, is refused as a replay.
    const r = ctx.receiver.received[0]!;
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 6 * 60_000);
    expect(() => wh.verify(r.body, headersOf(r))).toThrow(/timestamp/i);
    vi.useRealTimers();
    // And a correctly signed message whose timestamp is over 5 minutes old fails too.
    const oldTs = Math.floor(Date.now() / 1000) - 301;
    const old = { 'webhook-id': 'evt_x', 'webhook-timestamp': String(oldTs), 'webhook-signature': sign([secret], 'evt_x', oldTs, r.body) };
    expect(() => wh.verify(r.body, old)).toThrow(/timestamp/i);
  });

  it('sends a subscription only the event types it asked for, and the per-upload URL only its request', async () => {
    await subscribe('/all');
    await subscribe('/completed', ['processing.completed']);
    const uploadSecret = generateSecret();
    dispatcher();
    const mine = await newRequest({ webhookUrl: `${ctx.receiver.base}/upload`, webhookSecret: uploadSecret });
    await processAll(true);
    const other = await newRequest();
    await processAll(false);
    await until(() => ctx.receiver.received.length >= 4 + 1 + 2, 'seven deliveries', { timeoutMs: 10_000 });
    await outboxSettled();

    const at = (path: string) => ctx.receiver.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body));
    expect(at('/all').map((b) => `${b.data.request_id}:${b.type}`).sort()).toEqual(
      [`${mine}:processing.started`, `${mine}:processing.completed`, `${other}:processing.started`, `${other}:processing.failed`].sort(),
    );
    expect(at('/completed').map((b) => `${b.data.request_id}:${b.type}`)).toEqual([`${mine}:processing.completed`]);
    expect(at('/upload').map((b) => `${b.data.request_id}:${b.type}`)).toEqual([`${mine}:processing.started`, `${mine}:processing.completed`]);
    for (const r of ctx.receiver.received.filter((x) => x.path === '/upload')) {
      expect(() => new Webhook(uploadSecret).verify(r.body, headersOf(r))).not.toThrow();
    }
    expect(ctx.receiver.received).toHaveLength(7);
  });

  it('retries a receiver that answers 500 twice and delivers on the third attempt, logging all three', async () => {
    ctx.receiver.on('/flaky', (res, n) => res.writeHead(n <= 2 ? 500 : 200).end());
    const { id } = await subscribe('/flaky', ['processing.completed']);
    dispatcher();
    await newRequest();
    await processAll();
    await until(async () => {
      const page = await ctx.store.listDeliveries(id, { limit: 10 });
      return page.items[0]?.state === 'delivered';
    }, 'delivered state', { timeoutMs: 15_000 });

    const flaky = ctx.receiver.received.filter((r) => r.path === '/flaky');
    expect(flaky).toHaveLength(3);
    expect(new Set(flaky.map((r) => r.headers['webhook-id'])).size).toBe(1); // same id on every retry

    const res = await ctx.app.request(`/api/v1/webhooks/${id}/deliveries`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { deliveries: Array<{ state: string; attempts: number; attempt_log: Array<{ attempt: number; status_code: number; duration_ms: number; at: string }> }> };
    expect(body.deliveries).toHaveLength(1);
    const d = body.deliveries[0]!;
    expect(d.state).toBe('delivered');
    expect(d.attempts).toBe(3);
    expect(d.attempt_log.map((a) => [a.attempt, a.status_code])).toEqual([[1, 500], [2, 500], [3, 200]]);
    for (const a of d.attempt_log) expect(a.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('marks a delivery failed after the last scheduled attempt', async () => {
    ctx.receiver.on('/down', (res) => res.writeHead(503).end());
    const { id } = await subscribe('/down', ['processing.started']);
    dispatcher({ backoffScale: 0.00001 });
    await newRequest();
    await processAll();
    await until(async () => (await ctx.store.listDeliveries(id, { limit: 1 })).items[0]?.state === 'failed', 'failed state', { timeoutMs: 20_000 });
    const d = (await ctx.store.listDeliveries(id, { limit: 1 })).items[0]!;
    expect(d.attempts).toBe(MAX_ATTEMPTS);
    expect(d.attemptLog).toHaveLength(MAX_ATTEMPTS);
    expect(d.lastError).toBe('HTTP 503');
  });

  it('a receiver that never answers delays neither processing nor other receivers', async () => {
    const hanging = await startReceiver(OTHER_HOST);
    try {
      hanging.on('/hang', () => {}); // never answers
      const subscribeAt = async (base: string) => {
        const res = await configure({ webhook_url: `${base}/hang` });
        expect(res.status).toBe(201);
        return (await res.json()) as { id: string };
      };
      const hang = await subscribeAt(hanging.base);
      await subscribeAt(hanging.base);
      await subscribeAt(hanging.base);
      await subscribe('/ok');
      // 6 deliveries to the hanging host, 2 to the healthy one; only 2 sends per host at once.
      dispatcher({ concurrency: 4, perHost: 2, maxQueuedPerHost: 1 });
      await newRequest({ images: 3 });
      const t0 = performance.now();
      const processingMs = await processAll();
      // The store path (claim + complete, which write the events) never waits on a receiver.
      expect(processingMs).toBeLessThan(1000);
      await until(() => ctx.receiver.received.filter((r) => r.path === '/ok').length === 2, 'ok deliveries', { timeoutMs: 5000 });
      // Both events reached the healthy receiver well before the hanging sends time out.
      expect(performance.now() - t0).toBeLessThan(ctx.config.WEBHOOK_TIMEOUT_MS);
      expect(hanging.received.length).toBeLessThanOrEqual(2);
      // The hung attempts end with a timeout and are scheduled for retry.
      await until(async () => (await ctx.store.listDeliveries(hang.id, { limit: 10 })).items.some((d) => d.attempts > 0), 'timeout recorded', { timeoutMs: 5000 });
      const d = (await ctx.store.listDeliveries(hang.id, { limit: 10 })).items.find((x) => x.attempts > 0)!;
      expect(d.state).toBe('pending');
      expect(d.attemptLog[0]!.statusCode).toBeNull();
      expect(d.attemptLog[0]!.error).toMatch(/timed out/);
      expect(d.attemptLog[0]!.durationMs).toBeGreaterThanOrEqual(ctx.config.WEBHOOK_TIMEOUT_MS - 50);
    } finally {
      await hanging.close();
    }
  });

  it('refuses a loopback webhook URL at configure time, and a listener there receives nothing', async () => {
    const listener = await startReceiver('127.0.0.1');
    try {
      const port = new URL(listener.base).port;
      for (const url of [`http://127.0.0.1:${port}/hook`, `http://localhost:${port}/hook`, `http://2130706433:${port}/hook`, `http://[::1]:${port}/`]) {
        const res = await configure({ webhook_url: url });
        expect(res.status, url).toBe(400);
        const { detail } = (await res.json()) as { detail: string };
        expect(detail, url).toMatch(/^webhook_url: refused, blocked: (a non-public address|a loopback host name) \(.*FETCH_ALLOWLIST/);
        expect(detail, url).not.toMatch(/127\.0\.0\.1|::1/);
      }
      // A name that resolves to an internal address: the answer does not say which.
      const internal = async () => [{ address: '10.20.30.40', family: 4 }];
      await expect(assertDeliverableUrl('http://hooks.test/x', ctx.config.FETCH_ALLOWLIST, { resolve: internal })).rejects.toMatchObject({
        status: 400,
        detail: 'webhook_url: refused, blocked: resolves to a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)',
      });
      for (const url of ['ftp://example.com/x', 'not a url', '/relative']) {
        const res = await configure({ webhook_url: url });
        expect(res.status, url).toBe(400);
      }
      const list = (await (await ctx.app.request('/api/v1/webhooks')).json()) as { webhooks: unknown[] };
      expect(list.webhooks).toEqual([]);
      dispatcher();
      await newRequest();
      await processAll();
      await outboxSettled();
      expect(listener.received).toHaveLength(0);
      // Even a delivery that reached the outbox some other way is blocked at send time.
      await expect(assertDeliverableUrl(`http://127.0.0.1:${port}/`, ctx.config.FETCH_ALLOWLIST)).rejects.toMatchObject({ status: 400 });
    } finally {
      await listener.close();
    }
  });

  it('after a secret rotation, deliveries carry two signatures and verify with either secret', async () => {
    const { id, secret: oldSecret } = await subscribe('/rot', ['processing.started']);
    const res = await ctx.app.request(`/api/v1/webhooks/${id}/rotate-secret`, { method: 'POST' });
    expect(res.status).toBe(200);
    const rotated = (await res.json()) as { secret: string; previous_secret_expires_at: string };
    expect(rotated.secret).not.toBe(oldSecret);
    const overlap = Date.parse(rotated.previous_secret_expires_at) - Date.now();
    expect(overlap).toBeGreaterThan(23.9 * 3600_000);
    dispatcher();
    await newRequest();
    await processAll();
    await until(() => ctx.receiver.received.length === 1, 'delivery', { timeoutMs: 5000 });
    const r = ctx.receiver.received[0]!;
    expect(String(r.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(r.body, headersOf(r))).not.toThrow();
    expect(() => new Webhook(rotated.secret).verify(r.body, headersOf(r))).not.toThrow();

    // Once the overlap is over, only the new secret signs.
    await ctx.store.rotateSecret({ id, newSecret: generateSecret(), previousSecretExpiresAt: Date.now() - 1 });
    await newRequest();
    await processAll();
    await until(() => ctx.receiver.received.length === 2, 'second delivery', { timeoutMs: 5000 });
    expect(String(ctx.receiver.received[1]!.headers['webhook-signature']).split(' ')).toHaveLength(1);
  });

  it('delivers events written before a restart (store closed, reopened, dispatcher started)', async () => {
    const { secret } = await subscribe('/durable');
    const requestId = await newRequest();
    await processAll(); // events are in the outbox; no dispatcher ran
    const file = join(ctx.dir, 'store.db');
    await ctx.store.close();
    ctx.store = await openSqliteStore(file);
    dispatcher();
    await until(() => ctx.receiver.received.length === 2, 'deliveries after restart', { timeoutMs: 5000 });
    const types = ctx.receiver.received.map((r) => (JSON.parse(r.body) as { type: string; data: { request_id: string } }));
    expect(types.map((t) => t.type)).toEqual(['processing.started', 'processing.completed']);
    expect(types.every((t) => t.data.request_id === requestId)).toBe(true);
    for (const r of ctx.receiver.received) expect(() => new Webhook(secret).verify(r.body, headersOf(r))).not.toThrow();
  });

  it('wake() sends the first attempt without waiting for the next poll', async () => {
    await subscribe('/fast', ['processing.started']);
    // Counts finished claims, so the test knows when the first (empty) poll is done.
    let polls = 0;
    const claim = ctx.store.claimDeliveries.bind(ctx.store);
    const spy = vi.spyOn(ctx.store, 'claimDeliveries').mockImplementation(async (input) => {
      const claimed = await claim(input);
      polls++;
      return claimed;
    });
    const d = dispatcher({ pollIntervalMs: 60_000 });
    await until(() => polls === 1, 'the first poll'); // the next one is a minute away
    await newRequest();
    await processAll();
    d.wake();
    await until(() => ctx.receiver.received.length === 1, 'woken delivery', { timeoutMs: 2000 });
    spy.mockRestore();
  });

  it('stop() waits for sends in flight, bounded, and leaves unsent claims to their lease', async () => {
    // A receiver that answers late on purpose: stop() must find the send still in flight.
    ctx.receiver.on('/slow', (res) => setTimeout(() => res.writeHead(200).end(), 200));
    const { id } = await subscribe('/slow', ['processing.started']);
    const d = dispatcher();
    await newRequest();
    await processAll();
    await until(() => ctx.receiver.received.length === 1, 'send started', { timeoutMs: 5000 });
    await d.stop();
    const [delivery] = (await ctx.store.listDeliveries(id, { limit: 1 })).items;
    expect(delivery!.state).toBe('delivered'); // the in-flight send was allowed to finish and be recorded
    expect(d.inFlight).toBe(0);
  });
});

describe('webhook routes', () => {
  it('configures (201, a fresh secret even when WEBHOOK_SECRET is set), lists without secrets, deletes', async () => {
    await ctx.store.close();
    await ctx.receiver.close();
    rmSync(ctx.dir, { recursive: true, force: true });
    ctx = await setup({ WEBHOOK_SECRET: 'operator-chosen' });

    const res = await configure({ webhook_url: `${ctx.receiver.base}/x`, events: ['processing.failed', 'processing.failed'] });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Record<string, unknown>;
    expect(created).toMatchObject({ message: 'Webhook configured successfully', events: ['processing.failed'] });
    expect(created.secret).toMatch(/^whsec_/);
    expect(created.secret).not.toBe(normalizeSecret('operator-chosen'));
    expect(created.id).toMatch(/^wh_/);

    const own = generateSecret();
    const res2 = await configure({ webhook_url: `${ctx.receiver.base}/y`, secret: own });
    expect(((await res2.json()) as { secret: string; events: string[] })).toMatchObject({
      secret: own,
      events: ['processing.started', 'processing.completed', 'processing.failed', 'processing.cancelled'],
    });
    expect((await configure({ webhook_url: `${ctx.receiver.base}/z`, secret: 'whsec_short' })).status).toBe(400);
    expect((await configure({ webhook_url: `${ctx.receiver.base}/z`, events: ['nope'] })).status).toBe(400);
    expect((await configure({ events: ['processing.failed'] })).status).toBe(400);
    expect((await configure({ webhook_url: `${ctx.receiver.base}/z`, events: [] })).status).toBe(400);
    // A body that is not JSON is 415, as on every JSON route; JSON that is not the object, 400.
    for (const [type, body, status] of [['application/json', '{not json', 400], ['text/plain', '{}', 415], ['application/json', 'null', 400]] as const) {
      const bad = await ctx.app.request('/api/v1/webhook/configure', { method: 'POST', headers: { 'content-type': type }, body });
      expect(bad.status, `${type} ${body}`).toBe(status);
      expect(((await bad.json()) as { detail: string }).detail).toBeTruthy();
    }

    const list = await ctx.app.request('/api/v1/webhooks');
    const text = await list.text();
    expect(text).not.toContain('whsec_');
    const { webhooks } = JSON.parse(text) as { webhooks: Array<{ id: string; webhook_url: string }> };
    expect(webhooks.map((w) => w.webhook_url)).toEqual([`${ctx.receiver.base}/x`, `${ctx.receiver.base}/y`]);

    expect((await ctx.app.request(`/api/v1/webhooks/${String(created.id)}`, { method: 'DELETE' })).status).toBe(204);
    expect((await ctx.app.request(`/api/v1/webhooks/${String(created.id)}`, { method: 'DELETE' })).status).toBe(404);
    expect((await ctx.app.request('/api/v1/webhooks/wh_nope/rotate-secret', { method: 'POST' })).status).toBe(404);
    expect((await ctx.app.request('/api/v1/webhooks/wh_nope/deliveries')).status).toBe(404);
    const after = (await (await ctx.app.request('/api/v1/webhooks')).json()) as { webhooks: unknown[] };
    expect(after.webhooks).toHaveLength(1);
  });

  it('pages the delivery log newest first and retries a delivery on request (same webhook-id)', async () => {
    const { id } = await subscribe('/log');
    const d = dispatcher();
    await newRequest();
    await processAll();
    await until(() => ctx.receiver.received.length === 2, 'deliveries', { timeoutMs: 5000 });
    await until(async () => (await ctx.store.listDeliveries(id, { limit: 10 })).items.every((x) => x.state === 'delivered'));

    const p1 = (await (await ctx.app.request(`/api/v1/webhooks/${id}/deliveries?limit=1`)).json()) as {
      deliveries: Array<{ id: string; event_type: string; event_id: string }>;
      next_cursor: string | null;
    };
    expect(p1.deliveries).toHaveLength(1);
    expect(p1.next_cursor).not.toBeNull();
    const p2 = (await (await ctx.app.request(`/api/v1/webhooks/${id}/deliveries?limit=1&cursor=${p1.next_cursor}`)).json()) as typeof p1;
    expect(p2.deliveries).toHaveLength(1);
    expect(p2.next_cursor).toBeNull();
    expect([p1.deliveries[0]!.event_type, p2.deliveries[0]!.event_type].sort()).toEqual(['processing.completed', 'processing.started']);
    expect((await ctx.app.request(`/api/v1/webhooks/${id}/deliveries?limit=0`)).status).toBe(400);

    const target = p2.deliveries[0]!;
    const res = await ctx.app.request(`/api/v1/webhooks/${id}/deliveries/${target.id}/retry`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { state: string }).state).toBe('pending');
    d.wake();
    await until(() => ctx.receiver.received.length === 3, 'redelivery', { timeoutMs: 5000 });
    expect(ctx.receiver.received[2]!.headers['webhook-id']).toBe(target.event_id);
    expect((await ctx.app.request(`/api/v1/webhooks/${id}/deliveries/dlv_nope/retry`, { method: 'POST' })).status).toBe(404);
  });

  it('does not re-queue a delivery of a removed subscription (404, as its log)', async () => {
    const { id } = await subscribe('/gone', ['processing.started']);
    await newRequest();
    await processAll();
    const [delivery] = (await ctx.store.listDeliveries(id, { limit: 1 })).items;
    expect(delivery!.state).toBe('pending');
    expect((await ctx.app.request(`/api/v1/webhooks/${id}`, { method: 'DELETE' })).status).toBe(204);
    const res = await ctx.app.request(`/api/v1/webhooks/${id}/deliveries/${delivery!.id}/retry`, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toBe('Webhook not found');
    expect((await ctx.store.claimDeliveries({ owner: 'x', limit: 10, leaseMs: 1000, now: Date.now() })).map((d) => d.id)).not.toContain(delivery!.id);
  });
});
