// What the OpenAPI document promises about the HTTP edge itself, over real HTTP on loopback:
// a known path asked with another method is 405 with Allow (HEAD and CORS preflight still
// work), both JSON routes answer a wrong Content-Type with 415, an empty auth header counts as
// absent, and the document's server is relative so "Try it out" works by any address.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createApp } from '../src/http/app.js';
import { createLogger } from '../src/log.js';
import { LocalStorage } from '../src/storage/local.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { Store } from '../src/store/types.js';
import { serveOnLoopback, type LoopbackServer } from './helpers/service.js';

const ADMIN = 'contract-admin-key';
let dir: string;
let store: Store;
let server: LoopbackServer;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'icp-http-contract-'));
  store = await openSqliteStore(join(dir, 'store.db'));
  const config = loadConfig({
    DATA_DIR: dir, PUBLIC_BASE_URL: 'https://images.example.com', API_KEY: ADMIN, LOG_LEVEL: 'silent',
    CORS_ORIGINS: 'https://shop.example',
  });
  const app = createApp({ config, store, storage: new LocalStorage(join(dir, 'images')), log: createLogger({ LOG_LEVEL: 'silent' }), role: 'api' });
  server = await serveOnLoopback(app.fetch);
  base = server.base;
});

afterAll(async () => {
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const admin = { 'x-api-key': ADMIN };

describe('405 and Allow', () => {
  it.each([
    ['PUT', '/api/v1/upload', 'POST'],
    ['POST', '/api/v1/status/abc', 'GET, HEAD'],
    ['PATCH', '/api/v1/keys', 'GET, HEAD, POST'],
    ['GET', '/api/v1/requests/abc/cancel', 'POST'],
    ['POST', '/api/v1/webhooks/wh_1', 'DELETE'],
    ['DELETE', '/healthz', 'GET, HEAD'],
    ['POST', '/openapi.json', 'GET, HEAD'],
    ['PUT', '/images/abc.jpg', 'GET, HEAD'],
  ])('%s %s is 405 with Allow: %s', async (method, path, allow) => {
    const res = await fetch(`${base}${path}`, { method, headers: admin });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expect(await res.json()).toEqual({ detail: expect.stringContaining(`Method ${method} is not allowed`) });
  });

  it('joins the methods of every route a path matches', async () => {
    // /api/v1/requests/events (GET) and /api/v1/requests/{request_id} (DELETE) both match.
    const res = await fetch(`${base}/api/v1/requests/events`, { method: 'POST', headers: admin });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('DELETE, GET, HEAD');
  });

  it('still answers 404 for an unknown path, and HEAD where GET is served', async () => {
    const unknown = await fetch(`${base}/api/v1/nope`, { method: 'POST', headers: admin });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('allow')).toBeNull();
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await fetch(`${base}/api/v1/requests`, { method: 'HEAD', headers: admin })).status).toBe(200);
  });

  it('keeps CORS preflight working for an allowed origin', async () => {
    const res = await fetch(`${base}/api/v1/upload`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
  });

  it('checks the key before the method on /api/v1', async () => {
    expect((await fetch(`${base}/api/v1/upload`, { method: 'PUT' })).status).toBe(401);
  });
});

describe('415 on both JSON routes', () => {
  it.each([
    ['/api/v1/keys', JSON.stringify({ name: 'k' })],
    ['/api/v1/webhook/configure', JSON.stringify({ webhook_url: 'http://127.0.0.9:9/h' })],
  ])('%s refuses a body that is not application/json', async (path, body) => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { ...admin, 'content-type': type }, body });
      expect(res.status, type).toBe(415);
      expect(await res.json()).toEqual({ detail: 'The body must be JSON (Content-Type: application/json)' });
    }
    const bad = await fetch(`${base}${path}`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: '{"name":' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ detail: 'The body is not valid JSON' });
  });

  it('still takes a JSON body (with a charset) on the keys route', async () => {
    const res = await fetch(`${base}/api/v1/keys`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ name: 'k' }) });
    expect(res.status).toBe(201);
  });
});

describe('an empty auth header counts as absent', () => {
  it('an empty X-API-Key does not hide a valid bearer token', async () => {
    const res = await fetch(`${base}/api/v1/requests`, { headers: { 'x-api-key': '', authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
  });

  it('a blank X-API-Key alone is a missing key: 401 with WWW-Authenticate', async () => {
    for (const headers of [{ 'x-api-key': '' }, { 'x-api-key': '  ' }, { authorization: 'Bearer ' }, {}] as Record<string, string>[]) {
      const res = await fetch(`${base}/api/v1/requests`, { headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="api"');
      expect((await res.json()).detail).toMatch(/^Missing API key/);
    }
  });

  it('a wrong key is 401, not 403', async () => {
    const res = await fetch(`${base}/api/v1/requests`, { headers: { 'x-api-key': 'wrong' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ detail: 'Invalid API key' });
  });
});

describe('the document\'s server', () => {
  it('is relative, so "Try it out" calls whatever address served the document', async () => {
    const doc = await (await fetch(`${base}/openapi.json`)).json();
    expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    const csp = (await fetch(`${base}/docs`)).headers.get('content-security-policy')!;
    expect(csp).toMatch(/connect-src 'self'(;|$)/);
  });
});
