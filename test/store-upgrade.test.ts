// Upgrades in place: data written by release 0.1.0 opens with this release, migrated, and
// reads as before. SQLite: test/fixtures/store-0.1.0.db, made by 0.1.0 itself (a completed
// request with one failed image, an idempotency key, a webhook subscription with two delivered
// events, and a request still waiting). MongoDB: documents in 0.1.0's shape, written raw.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createClient } from '@libsql/client';
import { MongoClient, ObjectId } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { openMongoStore } from '../src/store/mongo/store.js';
import { MONGO_SCHEMA_VERSION } from '../src/store/mongo/migrations.js';
import { openSqliteStore, SQLITE_SCHEMA_VERSION } from '../src/store/sqlite/store.js';
import type { Store } from '../src/store/types.js';
import { renderEventBody } from '../src/webhooks/payload.js';
import { dropDatabase, freshDatabaseName, MONGODB_URI } from './helpers/mongo.js';
import { ROOT, startTestService, tempDir } from './helpers/service.js';

const latestVersion = (store: Store) => (store.backend === 'sqlite' ? SQLITE_SCHEMA_VERSION : MONGO_SCHEMA_VERSION);

const FIXTURE = join(ROOT, 'test', 'fixtures', 'store-0.1.0.db');
const COMPLETED = 'cf0d649d-b700-40da-8dfa-b6b34a363568';
const WAITING = '3b42790f-0be1-400b-b124-b818d6285877';

function fixtureCopy(): { dataDir: string; file: string } {
  const dataDir = tempDir('icp-upgrade-');
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'store.db');
  copyFileSync(FIXTURE, file);
  return { dataDir, file };
}

/** What both backends must show after the upgrade of the same 0.1.0 data. */
async function expectUpgraded(store: Store, ids: { completed: string; waiting: string; subscription: string }) {
  expect(await store.schemaVersion()).toBe(latestVersion(store));
  expect(await store.getRequest(ids.completed)).toMatchObject({
    status: 'completed', tenantId: 'admin', total: 3, done: 2, failed: 1, productCount: 2, run: 0,
    fileName: null, // requests made before file names were kept
  });
  const products = await store.listProducts(ids.completed, { limit: 10 });
  expect(products.items.map((p) => p.name)).toEqual(['Rocket', 'Cat']);
  const items = await store.getItemsByUrl(ids.completed, products.items.flatMap((p) => p.inputUrls));
  expect(items.filter((i) => i.state === 'done').every((i) => /^[0-9a-f]{64}\.(jpg|png)$/.test(i.outputKey!))).toBe(true);
  expect(items.find((i) => i.state === 'failed')).toMatchObject({ error: 'HTTP 404' });
  // images done before notes existed have nothing to say
  expect(items.map((i) => i.note)).toEqual(items.map(() => null));
  // Items from before renditions have none, and their outputs are still referenced.
  expect(items.every((i) => i.renditionKeys === null)).toBe(true);
  const doneKeys = items.filter((i) => i.state === 'done').map((i) => i.outputKey!);
  expect(await store.referencedOutputs(doneKeys)).toEqual(new Set(doneKeys));
  // images made before qualities and scores were kept (quality=auto) read null for both
  expect(items.map((i) => [i.quality, i.score])).toEqual(items.map(() => [null, null]));
  // and the content cache keeps them from now on
  const entry = { outputKey: 'k.jpg', format: 'jpeg', bytesOut: 10, renditionKeys: { thumb: 'k-thumb.webp' }, quality: 57, score: 71.25 };
  await store.putCachedOutput('admin', 'f'.repeat(64), '["jpeg","auto",null,null,70]', entry, Date.now());
  expect(await store.getCachedOutput('admin', 'f'.repeat(64), '["jpeg","auto",null,null,70]')).toEqual(entry);

  const subs = await store.listSubscriptions(null);
  expect(subs.map((s) => [s.id, s.tenantId])).toEqual([[ids.subscription, 'admin']]);
  const log = await store.listDeliveries(ids.subscription, { limit: 10 });
  expect(log.items.map((d) => [d.eventType, d.state, d.attemptLog.length])).toEqual([
    ['processing.completed', 'delivered', 1], ['processing.started', 'delivered', 1],
  ]);
  // An event body 0.1.0 stored is sent as this release sends it.
  expect(JSON.parse(renderEventBody(log.items[0]!.payload, 'https://new.example'))).toMatchObject({
    type: 'processing.completed', data: { request_id: ids.completed, status: 'completed', output_csv_url: `https://new.example/api/v1/status/${ids.completed}/output.csv` },
  });

  // The idempotency key belongs to the admin now, and replays as before.
  const replay = await store.beginRequest({ id: 'x', tenantId: 'admin', idempotencyKey: 'fixture-key-1', webhookUrl: null, webhookSecret: null, now: Date.now() });
  expect(replay).toMatchObject({ created: false, existing: { id: ids.completed }, fingerprint: null });
  expect((await store.beginRequest({ id: `new-${Date.now()}`, tenantId: 'key_other', idempotencyKey: 'fixture-key-1', webhookUrl: null, webhookSecret: null, now: Date.now() })).created).toBe(true);

  // The waiting request resumes: its item is claimed and it starts, with the new event ids.
  expect(await store.getRequest(ids.waiting)).toMatchObject({ status: 'received', total: 1 });
  const claimed = await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: Date.now() });
  expect(claimed.map((i) => [i.requestId, i.attempts])).toEqual([[ids.waiting, 0]]);
  expect((await store.listEvents(ids.waiting)).map((e) => e.id)).toEqual([`evt_${ids.waiting}_started`]);

  // The migrated data takes renditions: an old item completes with one, and it reads back.
  const [resumed] = claimed;
  // (and a quality and score beside them, quality=auto)
  await store.completeItems([{ itemId: resumed!.id, owner: 'r', now: Date.now(), outcome: {
    ok: true, outputKey: `${'c'.repeat(64)}.jpg`, renditionKeys: { thumb: `${'d'.repeat(64)}.webp` }, format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed',
    quality: 62, score: 70.5,
  } }]);
  expect((await store.getItemsByUrl(ids.waiting, [resumed!.url]))[0]).toMatchObject({ renditionKeys: { thumb: `${'d'.repeat(64)}.webp` }, quality: 62, score: 70.5 });
  expect(await store.referencedOutputs([`${'d'.repeat(64)}.webp`])).toEqual(new Set([`${'d'.repeat(64)}.webp`]));
}

describe('upgrade from 0.1.0: SQLite', () => {
  it('migrates the file 0.1.0 wrote, and everything in it reads as before', async () => {
    const { file } = fixtureCopy();
    const store = await openSqliteStore(file);
    try {
      await expectUpgraded(store, { completed: COMPLETED, waiting: WAITING, subscription: 'wh_7e0df853-11a1-4567-964d-aec57c8b5821' });
    } finally {
      await store.close();
    }
    const again = await openSqliteStore(file); // a second start: nothing left to migrate
    expect(await again.schemaVersion()).toBe(SQLITE_SCHEMA_VERSION);
    await again.close();
  });

  it('adds qualities and scores to a file that already has renditions, keeping them', async () => {
    // The file as the release before qualities and scores (version 10) left it: the fixture
    // upgraded, a rendition output in the cache and on an item, then the columns of versions 10
    // and 11 taken away again and the version set back to 9, so those two run on the next open.
    const { file } = fixtureCopy();
    const store = await openSqliteStore(file);
    const cached = { outputKey: 'k.jpg', format: 'jpeg', bytesOut: 10, renditionKeys: { thumb: 'k-thumb.webp' } };
    await store.putCachedOutput('admin', 'e'.repeat(64), '["jpeg",50,null,null]', cached, Date.now());
    const [item] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: Date.now() });
    await store.completeItems([{ itemId: item!.id, owner: 'r', now: Date.now(), outcome: {
      ok: true, outputKey: 'o.jpg', renditionKeys: { thumb: 'o-thumb.webp' }, format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed',
    } }]);
    await store.close();
    const raw = createClient({ url: pathToFileURL(file).href });
    await raw.executeMultiple(`
      ALTER TABLE items DROP COLUMN quality; ALTER TABLE items DROP COLUMN score;
      ALTER TABLE content_cache DROP COLUMN quality; ALTER TABLE content_cache DROP COLUMN score;
      ALTER TABLE url_validators DROP COLUMN quality; ALTER TABLE url_validators DROP COLUMN score;
      ALTER TABLE content_cache DROP COLUMN note; ALTER TABLE url_validators DROP COLUMN note;
      PRAGMA user_version = 9;
    `);
    raw.close();
    const upgraded = await openSqliteStore(file);
    try {
      expect(await upgraded.schemaVersion()).toBe(SQLITE_SCHEMA_VERSION);
      expect(await upgraded.getCachedOutput('admin', 'e'.repeat(64), '["jpeg",50,null,null]')).toEqual({ ...cached, quality: null, score: null });
      expect((await upgraded.getItemsByUrl(item!.requestId, [item!.url]))[0]).toMatchObject({ renditionKeys: { thumb: 'o-thumb.webp' }, quality: null, score: null });
    } finally {
      await upgraded.close();
    }
  });

  it('is migrated once when several processes start on it at the same moment', async () => {
    const { file } = fixtureCopy();
    const script = `import(${JSON.stringify(join(ROOT, 'dist', 'src', 'store', 'sqlite', 'store.js'))}).then(async (m) => {
      const s = await m.openSqliteStore(${JSON.stringify(file)}); console.log(await s.schemaVersion()); await s.close(); })`;
    const run = () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    const outs = await Promise.all([run(), run(), run()]);
    expect(outs.map((o) => o.stdout.trim())).toEqual(Array(3).fill(String(SQLITE_SCHEMA_VERSION)));
    const store = await openSqliteStore(file);
    expect(await store.getRequest(COMPLETED)).toMatchObject({ status: 'completed', done: 2, failed: 1 });
    await store.close();
  });

  it('version 11: content-cache and URL-validator entries take the note of the item their output was made for', async () => {
    const { file } = fixtureCopy();
    await (await openSqliteStore(file)).close();
    // Back to version 10's shape, with what a version-10 release left: a noted item (notes came
    // in 8) and cache entries for its output and for another one.
    const db = createClient({ url: `file:${file}` });
    const noted = String((await db.execute("SELECT output_key FROM items WHERE state = 'done' ORDER BY id LIMIT 1")).rows[0]!.output_key);
    await db.executeMultiple(`
      ALTER TABLE content_cache DROP COLUMN note;
      ALTER TABLE url_validators DROP COLUMN note;
      UPDATE items SET note = 'converted from HEIC' WHERE output_key = '${noted}';
      INSERT INTO content_cache (tenant_id, source_sha256, settings, output_key, format, bytes_out, updated_at) VALUES ('admin', 'sha-noted', 's', '${noted}', 'jpeg', 1, 1);
      INSERT INTO content_cache (tenant_id, source_sha256, settings, output_key, format, bytes_out, updated_at) VALUES ('admin', 'sha-plain', 's', 'other.jpg', 'jpeg', 1, 1);
      INSERT INTO url_validators (tenant_id, url, settings, etag, output_key, format, bytes_in, bytes_out, updated_at) VALUES ('admin', 'http://img.test/a.heic', 's', '"e"', '${noted}', 'jpeg', 2, 1, 1);
      PRAGMA user_version = 10;
    `);
    db.close();
    const store = await openSqliteStore(file);
    try {
      expect(await store.schemaVersion()).toBe(SQLITE_SCHEMA_VERSION);
      expect(await store.getCachedOutput('admin', 'sha-noted', 's')).toMatchObject({ outputKey: noted, note: 'converted from HEIC' });
      expect(await store.getCachedOutput('admin', 'sha-plain', 's')).toEqual({ outputKey: 'other.jpg', format: 'jpeg', bytesOut: 1, quality: null, score: null });
      expect(await store.getValidators('admin', 'http://img.test/a.heic', 's')).toMatchObject({ etag: '"e"', note: 'converted from HEIC' });
    } finally {
      await store.close();
    }
  });

  it('serves the old requests over HTTP after the upgrade', async () => {
    const { dataDir } = fixtureCopy();
    const svc = await startTestService({ ROLE: 'api', MONGODB_URI: '' }, dataDir); // the SQLite fixture, whatever the suite runs on
    try {
      const res = await fetch(`${svc.base}/api/v1/status/${COMPLETED}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string; file_name: string | null; products: Array<{ output_urls: Array<string | null>; errors: Array<string | null>; notes: Array<string | null> }> };
      expect(body.status).toBe('completed');
      expect(body.file_name).toBeNull();
      const list = (await (await fetch(`${svc.base}/api/v1/requests`)).json()) as { requests: Array<{ request_id: string; file_name: string | null; bytes: object }> };
      expect(list.requests.find((r) => r.request_id === COMPLETED)).toMatchObject({ file_name: null, bytes: { in: expect.any(Number), out: expect.any(Number) } });
      const oldUrl = body.products[0]!.output_urls[0]!;
      expect(oldUrl).toMatch(new RegExp(`^${svc.base}/images/[0-9a-f]{64}\\.jpg$`));
      // An output 0.1.0 stored under its plain-SHA-256 name stays reachable at its old URL.
      const key = oldUrl.slice(oldUrl.lastIndexOf('/') + 1);
      const bytes = new Uint8Array(readFileSync(join(ROOT, 'test', 'fixtures', 'rocket-small.jpg')));
      mkdirSync(join(dataDir, 'images', key.slice(0, 2)), { recursive: true });
      writeFileSync(join(dataDir, 'images', key.slice(0, 2), key), bytes);
      const image = await fetch(oldUrl);
      expect(image.status).toBe(200);
      expect(new Uint8Array(await image.arrayBuffer())).toEqual(bytes);
      expect(body.products[0]!.errors).toEqual([null, 'HTTP 404']);
      expect(body.products[0]!.notes).toEqual([null, null]);
      const csv = await (await fetch(`${svc.base}/api/v1/status/${COMPLETED}/output.csv`)).text();
      expect(csv.split('\n')[1]).toContain('Rocket');
    } finally {
      await svc.stop();
    }
  });
});

if (!MONGODB_URI) console.log('upgrade from 0.1.0: mongodb skipped: MONGODB_URI is not set (npm run test:mongo starts FerretDB and sets it)');
describe.skipIf(!MONGODB_URI)('upgrade from 0.1.0: MongoDB', () => {
  it('migrates documents in 0.1.0’s shape, and everything reads as before', async () => {
    const uri = MONGODB_URI!;
    const dbName = freshDatabaseName('icp_upgrade');
    const client = new MongoClient(uri);
    const completed = 'c0000000-0000-4000-8000-000000000001';
    const waiting = 'c0000000-0000-4000-8000-000000000002';
    const interrupted = 'c0000000-0000-4000-8000-000000000003';
    const sub = 'wh_00000000-0000-4000-8000-0000000000aa';
    const t = 1_764_000_000_000;
    try {
      const db = client.db(dbName);
      const v1Request = (id: string, status: string, counts: { total: number; done: number; failed: number }, extra: object = {}) => ({
        _id: id, status, webhookUrl: null, webhookSecret: null, productCount: 1, ...counts, createdAt: t, updatedAt: t + 10, version: 3, ...extra,
      });
      await db.collection('requests').insertMany([
        v1Request(completed, 'completed', { total: 3, done: 2, failed: 1 }, { idempotencyKey: 'fixture-key-1', productCount: 2 }) as never,
        v1Request(waiting, 'received', { total: 1, done: 0, failed: 0 }, { createdAt: t + 1 }) as never,
        // 0.1.0 without transactions: a transition whose event was not written before a crash.
        v1Request(interrupted, 'failed', { total: 1, done: 0, failed: 1 }, { createdAt: t + 2, pendingEvents: [{ type: 'processing.failed', at: t + 5 }] }) as never,
      ]);
      await db.collection('products').insertMany([
        { requestId: completed, serial: 1, name: 'Rocket', inputUrls: ['http://img.test/a.jpg', 'http://img.test/missing.jpg'] },
        { requestId: completed, serial: 2, name: 'Cat', inputUrls: ['http://img.test/b.png'] },
        { requestId: waiting, serial: 1, name: 'Pending', inputUrls: ['http://img.test/a.jpg'] },
        { requestId: interrupted, serial: 1, name: 'Broken', inputUrls: ['http://img.test/x.jpg'] },
      ]);
      const item = (requestId: string, url: string, state: string, extra: object = {}) => ({
        _id: new ObjectId(), requestId, url, state, attempts: 1, leaseOwner: null, leaseUntil: null, outputKey: null, error: null, createdAt: t, ...extra,
      });
      await db.collection('items').insertMany([
        item(completed, 'http://img.test/a.jpg', 'done', { outputKey: `${'a'.repeat(64)}.jpg` }),
        item(completed, 'http://img.test/missing.jpg', 'failed', { error: 'HTTP 404', attempts: 2 }),
        item(completed, 'http://img.test/b.png', 'done', { outputKey: `${'b'.repeat(64)}.png` }),
        // A commit 0.1.0 interrupted between making the request visible and releasing its items.
        item(waiting, 'http://img.test/a.jpg', 'staged', { attempts: 0 }),
        item(interrupted, 'http://img.test/x.jpg', 'failed', { error: 'boom' }),
      ] as never[]);
      await db.collection('subscriptions').insertOne({
        _id: sub, url: 'https://hooks.test/x', events: ['processing.started', 'processing.completed', 'processing.failed'],
        secret: 'whsec_x', previousSecret: null, previousSecretExpiresAt: null, createdAt: t,
      } as never);
      const body = (type: string, status: string) => JSON.stringify({
        type, timestamp: new Date(t).toISOString(),
        data: { request_id: completed, status, progress: { total: 3, done: 2, failed: 1 }, output_csv_url: `http://old/api/v1/status/${completed}/output.csv` },
      });
      for (const [i, [type, status]] of [['processing.started', 'processing'], ['processing.completed', 'completed']].entries()) {
        const eventId = `evt_${completed}_${type!.slice(11)}`;
        await db.collection('events').insertOne({ _id: eventId, requestId: completed, type, payload: body(type!, status!), createdAt: t + i, order: i } as never);
        const deliveryId = `dlv_${completed}_${type!.slice(11)}_${sub}`;
        await db.collection('deliveries').insertOne({
          _id: deliveryId, eventId, subscriptionId: sub, requestId: completed, url: 'https://hooks.test/x', eventType: type, payload: body(type!, status!),
          state: 'delivered', attempts: 1, nextAttemptAt: t + i, leaseOwner: null, leaseUntil: null, lastError: null, createdAt: t + i, updatedAt: t + i,
        } as never);
        await db.collection('delivery_attempts').insertOne({ deliveryId, attempt: 1, at: t + i, statusCode: 200, error: null, durationMs: 3 });
      }

      const store = await openMongoStore(uri, dbName, { connectTimeoutMs: 10_000 });
      try {
        await expectUpgraded(store, { completed, waiting, subscription: sub });
        expect(await store.listEvents(interrupted)).toEqual([]); // not yet relayed: the relay runs with the dispatcher
        await store.claimDeliveries({ owner: 'd', limit: 10, leaseMs: 1000, now: Date.now() + 60_000 });
        expect((await store.listEvents(interrupted)).map((e) => e.id)).toEqual([`evt_${interrupted}_failed`]);
        expect(await db.collection('requests').findOne({ _id: completed as never })).toMatchObject({ fileName: null });
        const raw = await db.collection('items').findOne({ requestId: completed, url: 'http://img.test/missing.jpg' });
        expect(raw).toMatchObject({ claims: 2, attempts: 0 });
        expect(raw).toMatchObject({ quality: null, score: null });
      } finally {
        await store.close();
      }
    } finally {
      await client.close();
      await dropDatabase(uri, dbName);
    }
  });

  it('version 11: content-cache and URL-validator entries take the note of the item their output was made for', async () => {
    const uri = MONGODB_URI!;
    const dbName = freshDatabaseName('icp_upgrade11');
    const client = new MongoClient(uri);
    try {
      await (await openMongoStore(uri, dbName, { connectTimeoutMs: 10_000 })).close();
      // Back to version 10's shape, with what a version-10 release left: a noted item (notes
      // came in 8) and cache entries, without notes, for its output and for another one.
      const db = client.db(dbName);
      const noted = `${'e'.repeat(64)}.jpg`;
      await db.collection('items').insertOne({ _id: new ObjectId(), requestId: 'r10', url: 'http://img.test/a.heic', state: 'done', outputKey: noted, note: 'converted from HEIC' } as never);
      await db.collection('content_cache').insertMany([
        { _id: JSON.stringify(['admin', 'sha-noted', 's']), outputKey: noted, format: 'jpeg', bytesOut: 1, renditionKeys: null, updatedAt: 1 },
        { _id: JSON.stringify(['admin', 'sha-plain', 's']), outputKey: 'other.jpg', format: 'jpeg', bytesOut: 1, renditionKeys: null, updatedAt: 1 },
      ] as never[]);
      await db.collection('url_validators').insertOne({ _id: JSON.stringify(['admin', 'http://img.test/a.heic', 's']), etag: '"e"', lastModified: null, outputKey: noted, format: 'jpeg', bytesIn: 2, bytesOut: 1, renditionKeys: null, updatedAt: 1 } as never);
      await db.collection('meta').updateOne({ _id: 'schema' as never }, { $set: { version: 10 } });
      const store = await openMongoStore(uri, dbName, { connectTimeoutMs: 10_000 });
      try {
        expect(await store.schemaVersion()).toBe(MONGO_SCHEMA_VERSION);
        expect(await store.getCachedOutput('admin', 'sha-noted', 's')).toMatchObject({ outputKey: noted, note: 'converted from HEIC' });
        expect(await store.getCachedOutput('admin', 'sha-plain', 's')).toEqual({ outputKey: 'other.jpg', format: 'jpeg', bytesOut: 1, quality: null, score: null });
        expect(await store.getValidators('admin', 'http://img.test/a.heic', 's')).toMatchObject({ etag: '"e"', note: 'converted from HEIC' });
        expect(await db.collection('content_cache').findOne({ _id: JSON.stringify(['admin', 'sha-plain', 's']) as never })).toMatchObject({ note: null });
      } finally {
        await store.close();
      }
    } finally {
      await client.close();
      await dropDatabase(uri, dbName);
    }
  });
});
