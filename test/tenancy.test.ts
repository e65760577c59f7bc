// Tenancy through the HTTP API: two tenant keys and the admin (API_KEY), every route that reads
// or changes a request, subscription, delivery or key; how deliveries are signed per tenant;
// and that the operator's WEBHOOK_SECRET never appears in any response.
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSecret } from '../src/webhooks/signing.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { ROOT, startTestService, tempDir, waitForStatus, type TestService } from './helpers/service.js';
import { KEY_CACHE_MS } from '../src/http/caller.js';
import { until } from './helpers/poll.js';

const ADMIN = 'admin-key-for-tenancy-tests';
const OPERATOR_SECRET = 'operator-webhook-secret-value';
const OPERATOR_WHSEC = normalizeSecret(OPERATOR_SECRET);

interface Received { path: string; headers: IncomingMessage['headers']; body: string }

describe('tenancy over HTTP', () => {
  let images: ImageServer;
  let hooks: { server: Server; base: string; received: Received[] };
  let svc: TestService;
  /** Every response body the server sent in this file. */
  const bodies: string[] = [];

  async function call(key: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const init: RequestInit = { method, headers: { ...(key ? { 'x-api-key': key } : {}), ...headers } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const res = await fetch(`${svc.base}${path}`, init);
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, text, json: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null };
  }

  /**
   * A revoked key is refused within KEY_CACHE_MS (the rule under test): polls until it is, and
   * fails if that takes longer than the rule allows (plus room for a slow machine).
   */
  async function refusedWithinTheCache(key: string): Promise<void> {
    const revokedAt = Date.now();
    await until(async () => (await call(key, 'GET', '/api/v1/requests')).status === 401, 'the revoked key to be refused', { timeoutMs: KEY_CACHE_MS + 2_000 });
    expect(Date.now() - revokedAt).toBeLessThan(KEY_CACHE_MS + 2_000);
  }

  const form = (csv: string, fields: Record<string, string> = {}) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    f.append('file', new Blob([csv], { type: 'text/csv' }), 'p.csv');
    return f;
  };
  const csvOf = (...paths: string[]) => `product_name,image_url\n${paths.map((p, i) => `P${i},${images.url(p)}`).join('\n')}\n`;

  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.11' });
    const jpeg = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg')));
    for (const p of ['/a.jpg', '/b.jpg', '/c.jpg']) images.serve(p, jpeg, 'image/jpeg');
    const received: Received[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.12', () => r()));
    hooks = { server, base: `http://127.0.0.12:${(server.address() as { port: number }).port}`, received };
    svc = await startTestService({ API_KEY: ADMIN, WEBHOOK_SECRET: OPERATOR_SECRET, FETCH_ALLOWLIST: `${images.cidr},127.0.0.12/32` }, tempDir());
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
    hooks?.server.closeAllConnections();
    await new Promise((r) => hooks?.server.close(r));
  });

  it('keeps every tenant to its own requests, subscriptions, deliveries and keys', async () => {
    // ---- keys: admin only --------------------------------------------------------------
    const made = await call(ADMIN, 'POST', '/api/v1/keys', { name: 'shop-a' });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ name: 'shop-a', id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^icp_/), created_at: expect.any(String) });
    const A = made.json.key as string;
    const madeB = await call(ADMIN, 'POST', '/api/v1/keys', { name: 'shop-b' });
    const B = madeB.json.key as string;
    expect((await call(A, 'POST', '/api/v1/keys', { name: 'sneaky' })).status).toBe(403);
    expect((await call(A, 'GET', '/api/v1/keys')).status).toBe(403);
    expect((await call(B, 'DELETE', `/api/v1/keys/${made.json.id}`)).status).toBe(403);
    const list = await call(ADMIN, 'GET', '/api/v1/keys');
    expect(list.json.keys.map((k: { name: string }) => k.name)).toEqual(['shop-a', 'shop-b']);
    expect(list.text).not.toContain(A);
    expect(list.text).not.toContain('hash');
    expect((await call(ADMIN, 'DELETE', '/api/v1/keys/key_unknown')).status).toBe(404);
    expect((await call('icp_not-a-key', 'GET', '/api/v1/requests')).status).toBe(401);
    expect((await call(null, 'GET', '/api/v1/requests')).status).toBe(401);

    // ---- subscriptions -----------------------------------------------------------------
    const subA = (await call(A, 'POST', '/api/v1/webhook/configure', { webhook_url: `${hooks.base}/a` })).json;
    const subB = (await call(B, 'POST', '/api/v1/webhook/configure', { webhook_url: `${hooks.base}/b` })).json;
    const subAdmin = (await call(ADMIN, 'POST', '/api/v1/webhook/configure', { webhook_url: `${hooks.base}/admin` })).json;
    for (const s of [subA, subB, subAdmin]) expect(s.secret).toMatch(/^whsec_/);
    expect(subAdmin.secret).not.toBe(OPERATOR_WHSEC); // never the operator's secret
    const ids = (r: { json: { webhooks: Array<{ id: string }> } }) => r.json.webhooks.map((w) => w.id).sort();
    expect(ids(await call(B, 'GET', '/api/v1/webhooks'))).toEqual([subB.id]);
    expect(ids(await call(ADMIN, 'GET', '/api/v1/webhooks'))).toEqual([subA.id, subB.id, subAdmin.id].sort());
    for (const [method, path] of [
      ['DELETE', `/api/v1/webhooks/${subA.id}`], ['POST', `/api/v1/webhooks/${subA.id}/rotate-secret`],
      ['GET', `/api/v1/webhooks/${subA.id}/deliveries`], ['POST', `/api/v1/webhooks/${subA.id}/deliveries/dlv_x/retry`],
    ] as const) {
      expect((await call(B, method, path)).status, `${method} ${path} by another tenant`).toBe(404);
    }

    // ---- requests ----------------------------------------------------------------------
    const upA = await call(A, 'POST', '/api/v1/upload', form(csvOf('/a.jpg'), { webhook_url: `${hooks.base}/a-own` }), { 'idempotency-key': 'same-key' });
    expect(upA.status).toBe(202);
    expect(upA.json.webhook_secret).toMatch(/^whsec_/);
    const ra = upA.json.request_id as string;
    const replay = await call(A, 'POST', '/api/v1/upload', form(csvOf('/a.jpg'), { webhook_url: `${hooks.base}/a-own` }), { 'idempotency-key': 'same-key' });
    expect(replay.status).toBe(202);
    expect(replay.json).toEqual(upA.json); // the same 202, secret included
    const other = await call(A, 'POST', '/api/v1/upload', form(csvOf('/b.jpg')), { 'idempotency-key': 'same-key' });
    expect(other.status).toBe(422);
    expect(other.json.detail).toMatch(/Idempotency-Key/);
    const upB = await call(B, 'POST', '/api/v1/upload', form(csvOf('/c.jpg')), { 'idempotency-key': 'same-key' });
    expect(upB.status).toBe(202);
    const rb = upB.json.request_id as string;
    expect(rb).not.toBe(ra);

    await waitForStatus(svc.base, ra, { headers: { 'x-api-key': A } });
    await waitForStatus(svc.base, rb, { headers: { 'x-api-key': B } });
    expect((await call(B, 'GET', `/api/v1/status/${ra}`)).status).toBe(404);
    expect((await call(B, 'GET', `/api/v1/status/${ra}/output.csv`)).status).toBe(404);
    expect((await call(A, 'GET', `/api/v1/status/${ra}`)).status).toBe(200);
    expect((await call(ADMIN, 'GET', `/api/v1/status/${ra}`)).status).toBe(200);
    const listed = async (key: string) => (await call(key, 'GET', '/api/v1/requests')).json.requests.map((r: { request_id: string }) => r.request_id);
    expect(await listed(A)).toEqual([ra]);
    expect(await listed(B)).toEqual([rb]);
    expect((await listed(ADMIN)).sort()).toEqual([ra, rb].sort());

    // ---- deliveries: each tenant's events to its own receivers, the admin's to every one ----
    const completedFor = (path: string, id: string) => hooks.received.filter((r) => r.path === path && JSON.parse(r.body).data.request_id === id && JSON.parse(r.body).type === 'processing.completed');
    await until(() => completedFor('/a', ra).length > 0 && completedFor('/admin', rb).length > 0 && completedFor('/a-own', ra).length > 0, 'the completed deliveries');
    expect(completedFor('/a', ra)).toHaveLength(1);
    expect(completedFor('/admin', ra)).toHaveLength(1);
    expect(completedFor('/admin', rb)).toHaveLength(1);
    expect(completedFor('/b', rb)).toHaveLength(1);
    expect(hooks.received.filter((r) => r.path === '/b' && r.body.includes(ra))).toEqual([]);
    expect(hooks.received.filter((r) => r.path === '/a' && r.body.includes(rb))).toEqual([]);

    const verify = (secret: string, r: Received) => {
      try {
        new Webhook(secret).verify(r.body, r.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    };
    const [toA] = completedFor('/a', ra);
    expect(verify(subA.secret, toA!)).toBe(true);
    expect(verify(OPERATOR_WHSEC, toA!)).toBe(false); // a tenant's deliveries carry only its own secrets
    expect(String(toA!.headers['webhook-signature']).split(' ')).toHaveLength(1);
    const [ownA] = completedFor('/a-own', ra);
    expect(verify(upA.json.webhook_secret, ownA!)).toBe(true);
    expect(verify(OPERATOR_WHSEC, ownA!)).toBe(false);
    const [toAdmin] = completedFor('/admin', ra);
    expect(verify(subAdmin.secret, toAdmin!)).toBe(true);
    expect(verify(OPERATOR_WHSEC, toAdmin!)).toBe(true); // receivers set up the seed's way keep verifying

    const log = await call(A, 'GET', `/api/v1/webhooks/${subA.id}/deliveries`);
    expect(log.json.deliveries.map((d: { request_id: string }) => d.request_id)).toEqual([ra, ra]);
    const delivery = log.json.deliveries[0].id as string;
    expect((await call(B, 'POST', `/api/v1/webhooks/${subA.id}/deliveries/${delivery}/retry`)).status).toBe(404);
    expect((await call(A, 'POST', `/api/v1/webhooks/${subA.id}/deliveries/${delivery}/retry`)).status).toBe(202);
    expect((await call(ADMIN, 'GET', `/api/v1/webhooks/${subB.id}/deliveries`)).status).toBe(200);
    expect((await call(A, 'POST', `/api/v1/webhooks/${subA.id}/rotate-secret`)).status).toBe(200);
    expect((await call(A, 'DELETE', `/api/v1/webhooks/${subA.id}`)).status).toBe(204);

    // ---- revocation: refused like an unknown key within a second ---------------------------
    expect((await call(ADMIN, 'DELETE', `/api/v1/keys/${madeB.json.id}`)).status).toBe(204);
    await refusedWithinTheCache(B);
    expect((await call(ADMIN, 'GET', '/api/v1/keys')).json.keys.map((k: { name: string }) => k.name)).toEqual(['shop-a']);
  });

  it('manages keys from the CLI on the same store as the running server', async () => {
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], {
      env: { ...process.env, DATA_DIR: svc.dataDir, MONGODB_URI: svc.config.MONGODB_URI ?? '', DATABASE_NAME: svc.config.DATABASE_NAME, LOG_LEVEL: 'silent' },
    });
    const created = await cli('keys', 'create', '--name', 'from-cli');
    const key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^icp_/);
    expect((await call(key, 'GET', '/api/v1/requests')).status).toBe(200);
    const listed = await cli('keys', 'list');
    const id = listed.stdout.split('\n').find((l) => l.includes('from-cli'))!.split('\t')[0]!;
    expect(listed.stdout).not.toContain(key);
    await cli('keys', 'revoke', id);
    await refusedWithinTheCache(key);
    await expect(cli('keys', 'revoke', id)).rejects.toMatchObject({ code: 1 });
  });

  it('never sends the operator’s WEBHOOK_SECRET in a response body', () => {
    expect(bodies.length).toBeGreaterThan(30);
    for (const body of bodies) {
      expect(body).not.toContain(OPERATOR_SECRET);
      expect(body).not.toContain(OPERATOR_WHSEC);
    }
  });
});

describe('key routes in open mode', () => {
  it('answer 403 saying API_KEY must be set', async () => {
    const svc = await startTestService({}, tempDir());
    try {
      const res = await fetch(`${svc.base}/api/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/API_KEY/);
      expect((await fetch(`${svc.base}/api/v1/keys`)).status).toBe(403);
    } finally {
      await svc.stop();
    }
  });
});
