// A status poll that already holds the current page (If-None-Match) is answered 304 from the
// request's version alone: the row with its options is not read. Real SQLite store, real HTTP on
// loopback; the store is wrapped only to count the reads the route makes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createApp } from '../src/http/app.js';
import { createLogger } from '../src/log.js';
import { LocalStorage } from '../src/storage/local.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { Store } from '../src/store/types.js';
import { serveOnLoopback, upload, type LoopbackServer } from './helpers/service.js';

const ADMIN = 'status-admin-key';
let dir: string;
let store: Store;
let server: LoopbackServer;
let base: string;
const calls = new Map<string, number>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'icp-status-304-'));
  store = await openSqliteStore(join(dir, 'store.db'));
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const config = loadConfig({ DATA_DIR: dir, API_KEY: ADMIN, LOG_LEVEL: 'silent' });
  const app = createApp({ config, store: counted, storage: new LocalStorage(join(dir, 'images')), log: createLogger({ LOG_LEVEL: 'silent' }), role: 'api' });
  server = await serveOnLoopback(app.fetch);
  base = server.base;
});

afterAll(async () => {
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => calls.clear());

const admin = { 'x-api-key': ADMIN };
const csv = 'S. No.,Product Name,Input Image Urls\n1,SKU1,"http://127.0.0.1:9/a.jpg,http://127.0.0.1:9/b.jpg"\n';

describe('status: If-None-Match', () => {
  it('answers 304 from the version alone while the request is unchanged, and the page again once it changes', async () => {
    const up = await upload(base, csv, { headers: admin });
    expect(up.status).toBe(202);
    const id = up.body.request_id as string;
    const first = await fetch(`${base}/api/v1/status/${id}?limit=1`, { headers: admin });
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"v\d+"$/);
    await first.json();

    calls.clear();
    const again = await fetch(`${base}/api/v1/status/${id}?limit=1`, { headers: { ...admin, 'if-none-match': `"v999999", ${etag}` } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    expect(calls.get('getRequestVersion')).toBe(1);
    expect(calls.get('getRequest')).toBeUndefined();
    expect(calls.get('listProducts')).toBeUndefined();

    // The request changes (a claim bumps its version): the same ETag now gets the new page.
    expect((await store.claimItems({ owner: 'test', limit: 1, leaseMs: 60_000, now: Date.now() })).length).toBe(1);
    calls.clear();
    const changed = await fetch(`${base}/api/v1/status/${id}?limit=1`, { headers: { ...admin, 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(await changed.json()).toMatchObject({ request_id: id, status: 'processing' });
    expect(calls.get('getRequest')).toBe(1);
  });

  it("answers another tenant's request, and an unknown one, 404 even with its current ETag", async () => {
    const made = await fetch(`${base}/api/v1/keys`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'other' }) });
    expect(made.status).toBe(201);
    const other = { 'x-api-key': ((await made.json()) as { key: string }).key };
    const id = (await upload(base, csv, { headers: admin })).body.request_id as string;
    const etag = (await fetch(`${base}/api/v1/status/${id}`, { headers: admin })).headers.get('etag')!;
    for (const [headers, url] of [[other, id], [admin, '00000000-0000-4000-8000-000000000000']] as const) {
      const res = await fetch(`${base}/api/v1/status/${url}`, { headers: { ...headers, 'if-none-match': etag } });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ detail: 'Request ID not found' });
    }
  });
});
