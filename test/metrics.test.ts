// Metrics and logs of the real service, in process: SQLite in a temp dir, the real pool and
// codecs, a local image server and a webhook receiver on 127.0.0.9 (allowlisted). One upload of
// three images (a JPEG, a PNG, a 404) runs to completion; then /metrics must show counters moved
// by exactly the right amounts, and the captured log lines must carry request ids and no secret.
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startService, type RunningService } from '../src/service.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { tempDir } from './helpers/service.js';
import { until } from './helpers/poll.js';

const HOST = '127.0.0.9';
const API_KEY = 'metrics-test-api-key-4f1c9a';
const SERVER_SECRET = 'whsec_c2VydmVyLXNlY3JldC1mb3ItbWV0cmljcy10ZXN0cw==';
const SUB_SECRET = 'whsec_c3Vic2NyaXB0aW9uLXNlY3JldC1mb3ItdGhlLXRlc3Q=';
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const JPEG = fixture('rocket-small.jpg');
const PNG = fixture('chelsea.png');

// ---- Prometheus text, parsed ---------------------------------------------------------------

type Samples = Map<string, number>;

function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)$/);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels = [...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}=${v}`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[4]));
  }
  return out;
}

/** The value of one series (0 when absent, as for a counter never incremented). */
function value(s: Samples, name: string, labels: Record<string, string> = {}): number {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort().join(',')}}`;
  return s.get(key) ?? 0;
}

// ---- the setup -------------------------------------------------------------------------------

let images: ImageServer;
let receiver: Server;
let receiverUrl: string;
const received: { type: string; headers: Record<string, unknown> }[] = [];
let service: RunningService;
let base: string;
let dataDir: string;
const logLines: string[] = [];
const auth = { 'X-API-Key': API_KEY };

async function scrape(): Promise<Samples> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}


beforeAll(async () => {
  images = await startImageServer({ host: HOST });
  images.serve('/a.jpg', JPEG, 'image/jpeg');
  images.serve('/b.png', PNG, 'image/png');
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ type: JSON.parse(Buffer.concat(chunks).toString('utf8')).type, headers: req.headers });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, HOST, resolve));
  receiverUrl = `http://${HOST}:${(receiver.address() as AddressInfo).port}/hook`;

  dataDir = tempDir('icp-metrics-');
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, WORKER_THREADS: '1', LOG_LEVEL: 'debug',
    API_KEY, WEBHOOK_SECRET: SERVER_SECRET, FETCH_ALLOWLIST: `${HOST}/32`, FETCH_RETRIES: '0',
  });
  const log = createLogger(config, { write: (s: string) => void logLines.push(s) });
  service = await startService(config, log);
  base = `http://127.0.0.1:${service.server.port}`;
});

afterAll(async () => {
  await service?.stop();
  await images?.close();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('metrics and logs after a processed upload', () => {
  let requestId: string;
  let before: Samples;
  let after: Samples;
  let statusPolls = 0;
  let outputBytes = 0;

  beforeAll(async () => {
    before = await scrape();
    const sub = await fetch(`${base}/api/v1/webhook/configure`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ webhook_url: receiverUrl, secret: SUB_SECRET }),
    });
    expect(sub.status).toBe(201);

    const csv = `S. No.,Product Name,Input Image Urls\n1,Rocket,"${images.url('/a.jpg')},${images.url('/b.png')}"\n2,Gone,${images.url('/missing.jpg')}\n`;
    const form = new FormData();
    form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
    const up = await fetch(`${base}/api/v1/upload`, { method: 'POST', body: form, headers: auth });
    expect(up.status).toBe(202);
    requestId = ((await up.json()) as { request_id: string }).request_id;

    let status: any;
    await until(async () => {
      statusPolls++;
      const res = await fetch(`${base}/api/v1/status/${requestId}`, { headers: { ...auth, 'X-Request-Id': 'poll-req-1' } });
      status = await res.json();
      return status.status === 'completed' || status.status === 'failed';
    }, 'the request to finish');
    expect(status.status).toBe('completed');
    expect(status.progress).toEqual({ total: 3, done: 2, failed: 1 });
    await until(() => received.length >= 2, 'processing.started and processing.completed deliveries');

    for (const url of status.products[0].output_urls as string[]) {
      const key = url.split('/images/')[1]!;
      const img = await fetch(`${base}/images/${key}`);
      expect(img.status).toBe(200);
      outputBytes += (await img.arrayBuffer()).byteLength;
    }
    // the delivery is recorded just after the receiver answers: wait for the counter
    await until(async () => value(await scrape(), 'webhook_deliveries_total', { event: 'processing.completed', outcome: 'delivered' }) === 1, 'the delivery to be recorded');
    after = await scrape();
  });

  const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);

  it('counts images by format and outcome, and their bytes in and out', () => {
    expect(delta('images_processed_total', { format: 'jpeg', outcome: 'succeeded' })).toBe(1);
    expect(delta('images_processed_total', { format: 'png', outcome: 'succeeded' })).toBe(1);
    expect(delta('images_processed_total', { format: 'unknown', outcome: 'failed' })).toBe(1);
    expect(delta('image_bytes_in_total', { format: 'jpeg' })).toBe(JPEG.byteLength);
    expect(delta('image_bytes_in_total', { format: 'png' })).toBe(PNG.byteLength);
    expect(delta('image_bytes_out_total', { format: 'jpeg' }) + delta('image_bytes_out_total', { format: 'png' })).toBe(outputBytes);
    expect(delta('image_processing_duration_seconds_count', { outcome: 'succeeded' })).toBe(2);
    expect(delta('image_processing_duration_seconds_count', { outcome: 'failed' })).toBe(1);
    // the 404 never reached a codec
    expect(delta('image_compress_duration_seconds_count', { format: 'jpeg', outcome: 'succeeded' })).toBe(1);
    expect(delta('image_compress_duration_seconds_count', { format: 'png', outcome: 'succeeded' })).toBe(1);
    expect(delta('image_compress_duration_seconds_count', { format: 'unknown', outcome: 'failed' })).toBe(0);
    expect(delta('image_compress_duration_seconds_sum', { format: 'jpeg', outcome: 'succeeded' })).toBeGreaterThan(0);
  });

  it('counts HTTP requests by route pattern and status, with latency histograms', () => {
    expect(delta('http_requests_total', { method: 'POST', route: '/api/v1/upload', status: '202' })).toBe(1);
    expect(delta('http_requests_total', { method: 'POST', route: '/api/v1/webhook/configure', status: '201' })).toBe(1);
    expect(delta('http_requests_total', { method: 'GET', route: '/api/v1/status/{request_id}', status: '200' })).toBe(statusPolls);
    expect(delta('http_requests_total', { method: 'GET', route: '/images/{key}', status: '200' })).toBe(2);
    expect(delta('http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/upload', status: '202' })).toBe(1);
    expect(value(after, 'http_request_duration_seconds_bucket', { method: 'POST', route: '/api/v1/upload', status: '202', le: '+Inf' })).toBe(1);
    // no raw ids in labels
    expect([...after.keys()].filter((k) => k.includes(requestId))).toEqual([]);
  });

  it('counts webhook deliveries by event and outcome', () => {
    expect(delta('webhook_deliveries_total', { event: 'processing.started', outcome: 'delivered' })).toBe(1);
    expect(delta('webhook_deliveries_total', { event: 'processing.completed', outcome: 'delivered' })).toBe(1);
    expect(delta('webhook_delivery_duration_seconds_count', { outcome: 'delivered' })).toBe(2);
    expect(received.map((r) => r.type).sort()).toEqual(['processing.completed', 'processing.started']);
  });

  it('reports queue depths, pool state and the oldest pending age', () => {
    expect(value(after, 'pipeline_items', { state: 'pending' })).toBe(0);
    expect(value(after, 'pipeline_items', { state: 'running' })).toBe(0);
    expect(value(after, 'pipeline_oldest_pending_age_seconds')).toBe(0);
    expect(value(after, 'pipeline_in_flight')).toBe(0);
    expect(value(after, 'compress_pool_threads')).toBe(1);
    expect(value(after, 'compress_pool_queue_depth')).toBe(0);
    const util = value(after, 'compress_pool_utilization');
    expect(util).toBeGreaterThanOrEqual(0);
    expect(util).toBeLessThanOrEqual(1);
    expect(after.has('webhook_deliveries_in_flight{}')).toBe(true);
    expect(after.has('process_resident_memory_bytes{}')).toBe(true);
  });

  it('logs one line per request with route pattern, status, duration and request id', () => {
    const lines = logLines.map((l) => JSON.parse(l));
    const http = lines.filter((l) => l.msg === 'http request');
    const polls = http.filter((l) => l.req_id === 'poll-req-1');
    expect(polls.length).toBe(statusPolls);
    expect(polls[0]).toMatchObject({ method: 'GET', path: '/api/v1/status/{request_id}', status: 200, request_id: requestId });
    expect(typeof polls[0].duration_ms).toBe('number');
    const upload = http.find((l) => l.path === '/api/v1/upload');
    expect(upload).toMatchObject({ method: 'POST', status: 202, request_id: requestId, req_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });

  it('logs pipeline and webhook events with the request_id they belong to', () => {
    const lines = logLines.map((l) => JSON.parse(l));
    expect(lines.find((l) => l.msg === 'image failed')).toMatchObject({ request_id: requestId, error: expect.stringContaining('404') });
    expect(lines.filter((l) => l.msg === 'image processed' && l.request_id === requestId)).toHaveLength(2);
    expect(lines.find((l) => l.msg === 'request finished')).toMatchObject({ request_id: requestId, status: 'completed' });
    expect(lines.filter((l) => l.msg === 'webhook delivered' && l.request_id === requestId)).toHaveLength(2);
  });

  it('never logs the API key or a webhook secret', () => {
    const all = logLines.join('');
    expect(all.length).toBeGreaterThan(1000);
    for (const secret of [API_KEY, SERVER_SECRET, SUB_SECRET, SERVER_SECRET.slice(6), SUB_SECRET.slice(6)]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe('X-Request-Id', () => {
  it('echoes a sane incoming id and replaces anything else', async () => {
    const mine = await fetch(`${base}/healthz`, { headers: { 'X-Request-Id': 'abc-123_DEF.4' } });
    expect(mine.headers.get('x-request-id')).toBe('abc-123_DEF.4');
    for (const bad of ['has spaces in it', 'x'.repeat(129), '<script>']) {
      const res = await fetch(`${base}/healthz`, { headers: { 'X-Request-Id': bad } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
    const none = await fetch(`${base}/nope`);
    expect(none.status).toBe(404);
    expect(none.headers.get('x-request-id')).toBeTruthy();
  });

  it('is on error answers too, which are counted under their route', async () => {
    const before = await scrape();
    const res = await fetch(`${base}/api/v1/status/some-id`, { headers: { 'X-Request-Id': 'unauth-1' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-request-id')).toBe('unauth-1');
    const after = await scrape();
    const labels = { method: 'GET', route: '/api/v1/status/{request_id}', status: '401' };
    expect(value(after, 'http_requests_total', labels) - value(before, 'http_requests_total', labels)).toBe(1);
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.req_id === 'unauth-1');
    expect(line).toMatchObject({ status: 401, path: '/api/v1/status/{request_id}' });
  });
});
