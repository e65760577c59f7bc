// The one store poller behind the event streams, counted: the app runs in process on a real
// SQLite store whose reads are tallied, and streams are opened through app.request().
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createApp, type App } from '../src/http/app.js';
import { LiveEvents } from '../src/live/live-events.js';
import { RequestWatcher } from '../src/live/request-watcher.js';
import { createLogger } from '../src/log.js';
import { LocalStorage } from '../src/storage/local.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import { ADMIN_TENANT, type Store } from '../src/store/types.js';
import { tempDir } from './helpers/service.js';
import { until } from './helpers/poll.js';

const POLL_MS = 20;
const reads = { listRequests: 0, getRequest: 0 };

/** The store with its two reads counted (into `reads` unless told otherwise). */
function counted(store: Store, tally = reads): Store {
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (key in tally) tally[key as keyof typeof tally]++;
        return value.apply(target, args);
      };
    },
  });
}

async function addRequest(store: Store, id: string, now: number): Promise<void> {
  await store.beginRequest({ id, tenantId: ADMIN_TENANT, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now });
  await store.appendBatch(id, [{ serial: 1, name: 'P', inputUrls: [`http://127.0.0.1:9/${id}.jpg`] }]);
  await store.commitRequest(id, now);
}

/** Resolves after `n` more polls have started (each poll reads the recent list once). */
async function polls(n: number): Promise<void> {
  const target = reads.listRequests + n;
  await until(() => reads.listRequests >= target, `${n} more polls`, { intervalMs: 5 });
}

describe('the request watcher', () => {
  let raw: Store;
  let store: Store;
  let live: LiveEvents;
  let app: App;
  beforeAll(async () => {
    const dir = tempDir();
    raw = await openSqliteStore(join(dir, 'store.db'));
    // The oldest request is outside the window of recent ones the watcher reads each time.
    await addRequest(raw, 'old', 1_000);
    for (let i = 0; i < 3; i++) await addRequest(raw, `new-${i}`, 2_000 + i);
    store = counted(raw);
    const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', EVENTS_POLL_MS: String(POLL_MS), EVENTS_RECENT_REQUESTS: '2' });
    const log = createLogger({ LOG_LEVEL: 'silent' });
    live = new LiveEvents({ config, store, log });
    app = createApp({ config, store, storage: new LocalStorage(join(dir, 'images')), log, live });
  });
  afterAll(async () => {
    await live.close();
    await store.close();
  });

  it('serves any number of streams with one read of the recent list and one per followed request per poll, and stops with the last stream', async () => {
    expect(live.watcher.running).toBe(false);
    const before = { ...reads };
    const bodies: ReadableStream<Uint8Array>[] = [];
    for (let i = 0; i < 50; i++) {
      for (const path of ['/api/v1/status/old/events', '/api/v1/status/new-2/events', '/api/v1/requests/events']) {
        const res = await app.request(path);
        expect(res.status, path).toBe(200);
        bodies.push(res.body!);
      }
    }
    expect(live.streams.size).toBe(150);
    // Opening a status stream reads its request once (ownership, first event); a list stream reads nothing.
    expect(reads.getRequest - before.getRequest).toBe(100);

    await polls(1);
    const start = { ...reads };
    await polls(10);
    const ticks = reads.listRequests - start.listRequests;
    const followed = reads.getRequest - start.getRequest;
    // 'old' is read once a poll for its 50 streams; 'new-2' is in the recent list and costs nothing.
    expect(followed).toBeGreaterThanOrEqual(ticks - 1);
    expect(followed).toBeLessThanOrEqual(ticks + 1);

    await Promise.all(bodies.map((b) => b.cancel()));
    expect(live.streams.size).toBe(0);
    await live.watcher.idle();
    expect(live.watcher.running).toBe(false);
    const idle = { ...reads };
    // The clock for "no more polls": a second watcher on the same store and interval, kept
    // running by a watch of its own. Its ten polls are ten chances the stopped one had to poll.
    const referenceReads = { listRequests: 0, getRequest: 0 };
    const reference = new RequestWatcher({ store: counted(raw, referenceReads), pollMs: POLL_MS, recent: 2, summary: (r) => r.status });
    const unwatch = await reference.add({ requestId: null, tenantKey: null, changed: () => {}, revoked: () => {} });
    await until(() => referenceReads.listRequests >= 10, 'ten polls of the reference watcher', { intervalMs: 5 });
    unwatch();
    await reference.stop();
    expect(reads).toEqual(idle);
  });

  it('starts again with the next stream', async () => {
    const res = await app.request('/api/v1/requests/events');
    expect(live.watcher.running).toBe(true);
    await polls(2);
    await res.body!.cancel();
    await live.watcher.idle();
    expect(live.watcher.running).toBe(false);
  });
});
