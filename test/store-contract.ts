// The store contract: the same tests for every backend (SQLite always, MongoDB when
// MONGODB_URI is set). A backend passes these or it is not a store.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InFlightLimitError, type BeginInput, type ProductRecord, type Store } from '../src/store/types.js';
import { MONGO_SCHEMA_VERSION } from '../src/store/mongo/migrations.js';
import { SQLITE_SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';

export interface StoreHarness {
  store: Store;
  /** Closes the store and opens the same database again (a restart). */
  reopen(): Promise<Store>;
  /** Opens a second, independent connection to the same database (another process). */
  openAnother(): Promise<Store>;
  cleanup(): Promise<void>;
}

/** A beginRequest input with the defaults filled in. */
function begin(input: Partial<BeginInput> & { id: string; now: number }): BeginInput {
  return { tenantId: 'admin', idempotencyKey: null, webhookUrl: null, webhookSecret: null, ...input };
}

function products(n: number, urlsPer = 2, prefix = 'http://img.test/'): ProductRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    serial: i + 1,
    name: `Product ${i + 1}`,
    inputUrls: Array.from({ length: urlsPer }, (_, j) => `${prefix}${i + 1}-${j}.jpg`),
  }));
}

async function ingest(store: Store, list: ProductRecord[], opts: { key?: string; webhookUrl?: string; now?: number } = {}) {
  const id = randomUUID();
  const now = opts.now ?? Date.now();
  const begun = await store.beginRequest(begin({ id, idempotencyKey: opts.key ?? null, webhookUrl: opts.webhookUrl ?? null, webhookSecret: opts.webhookUrl ? 'whsec_x' : null, now }));
  expect(begun.created).toBe(true);
  for (let i = 0; i < list.length; i += 7) await store.appendBatch(id, list.slice(i, i + 7));
  return store.commitRequest(id, now);
}

/** A committed request of `tenantId` with n images of its own, made at `at`; returns its id. */
async function committed(store: Store, tenantId: string, n: number, at: number): Promise<string> {
  const id = randomUUID();
  await store.beginRequest(begin({ id, tenantId, now: at }));
  await store.appendBatch(id, products(n, 1, `http://${id}.test/`));
  await store.commitRequest(id, at);
  return id;
}

export interface ContractOptions {
  /**
   * Why tests with several connections writing one document at once cannot hold on this
   * server (null: they run). FerretDB 1.24 applies update operators as read, modify, rewrite.
   */
  noConcurrentWriters?: string | null;
}

export function defineStoreContract(name: string, open: () => Promise<StoreHarness>, opts: ContractOptions = {}) {
  const concurrent = opts.noConcurrentWriters ? it.skip : it;
  if (opts.noConcurrentWriters) console.log(`store contract: ${name}: concurrent-writer tests skipped: ${opts.noConcurrentWriters}`);
  describe(`store contract: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;
    beforeEach(async () => {
      h = await open();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('creates a request in batches, counting distinct URLs once, invisible until committed', async () => {
      const id = randomUUID();
      await store.beginRequest(begin({ id, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: 1000 }));
      const list = products(10);
      list[3]!.inputUrls.push(list[0]!.inputUrls[0]!); // same URL in two products
      await store.appendBatch(id, list.slice(0, 4));
      expect(await store.getRequest(id)).toBeNull();
      expect(await store.claimItems({ owner: 'r', limit: 100, leaseMs: 1000, now: 1000 })).toEqual([]);
      await store.appendBatch(id, list.slice(4));
      const req = await store.commitRequest(id, 2000);
      expect(req).toMatchObject({ id, status: 'received', productCount: 10, total: 20, done: 0, failed: 0 });
      expect(await store.getRequest(id)).toMatchObject({ status: 'received', total: 20 });
    });

    it('reads a request\'s owner and version alone, and follows the version as the request changes', async () => {
      const id = randomUUID();
      await store.beginRequest(begin({ id, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: 1000 }));
      await store.appendBatch(id, products(1, 1));
      expect(await store.getRequestVersion(id)).toBeNull(); // still ingesting: not visible
      await store.commitRequest(id, 2000);
      const committed = (await store.getRequest(id))!;
      expect(await store.getRequestVersion(id)).toEqual({ tenantId: committed.tenantId, version: committed.version });
      const [item] = await store.claimItems({ owner: 'v', limit: 5, leaseMs: 1000, now: 3000 });
      expect(item?.requestId).toBe(id);
      const claimed = await store.getRequestVersion(id);
      expect(claimed!.version).toBeGreaterThan(committed.version);
      expect(claimed!.version).toBe((await store.getRequest(id))!.version);
      expect(await store.getRequestVersion(randomUUID())).toBeNull();
    });

    it('abort and crash cleanup leave nothing behind', async () => {
      const id = randomUUID();
      await store.beginRequest(begin({ id, idempotencyKey: 'k-abort', webhookUrl: null, webhookSecret: null, now: 1000 }));
      await store.appendBatch(id, products(5));
      await store.abortRequest(id);
      expect(await store.getRequest(id)).toBeNull();
      expect((await store.listProducts(id, { limit: 10 })).items).toEqual([]);
      expect(await store.claimItems({ owner: 'r', limit: 100, leaseMs: 1000, now: 1000 })).toEqual([]);
      // the key is free again
      expect((await store.beginRequest(begin({ id: randomUUID(), idempotencyKey: 'k-abort', webhookUrl: null, webhookSecret: null, now: 1000 }))).created).toBe(true);

      const stale = randomUUID();
      await store.beginRequest(begin({ id: stale, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: 500 }));
      await store.appendBatch(stale, products(3));
      const fresh = randomUUID();
      await store.beginRequest(begin({ id: fresh, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: 5000 }));
      expect(await store.cleanupIngesting(4000)).toBeGreaterThanOrEqual(1);
      expect((await store.listProducts(stale, { limit: 10 })).items).toEqual([]);
      await store.appendBatch(fresh, products(1));
      expect((await store.commitRequest(fresh, 6000)).total).toBe(2);
    });

    it('answers a reused idempotency key with the first request', async () => {
      const first = await ingest(store, products(2), { key: 'key-1' });
      const again = await store.beginRequest(begin({ id: randomUUID(), idempotencyKey: 'key-1', webhookUrl: null, webhookSecret: null, now: Date.now() }));
      expect(again).toMatchObject({ created: false, existing: { id: first.id, status: 'received' } });
    });

    it('pages products in serial order with an opaque cursor', async () => {
      const req = await ingest(store, products(25, 1));
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await store.listProducts(req.id, { limit: 10, cursor });
        seen.push(...page.items.map((p) => p.serial));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      const first = (await store.listProducts(req.id, { limit: 1 })).items[0]!;
      expect(first).toEqual({ serial: 1, name: 'Product 1', inputUrls: ['http://img.test/1-0.jpg'] });
      const items = await store.getItemsByUrl(req.id, first.inputUrls);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ url: 'http://img.test/1-0.jpg', state: 'pending' });
    });

    concurrent('never hands one item to two concurrent claimers, and emits started exactly once', async () => {
      const req = await ingest(store, products(30, 2));
      const other = await h.openAnother();
      try {
        const now = Date.now();
        const claims = await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 ? other : store).claimItems({ owner: `runner-${i}`, limit: 7, leaseMs: 60_000, now })),
        );
        const ids = claims.flat().map((i) => i.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(60);
        expect(claims.flat().every((i) => i.state === 'running' && i.claims === 1 && i.attempts === 0)).toBe(true);
        const events = await store.listEvents(req.id);
        expect(events.map((e) => e.type)).toEqual(['processing.started']);
        expect((await store.getRequest(req.id))!.status).toBe('processing');
      } finally {
        await other.close();
      }
    });

    it('re-claims items whose lease expired, and fences the old owner out', async () => {
      await ingest(store, products(1, 1));
      const [item] = await store.claimItems({ owner: 'dead', limit: 5, leaseMs: 1000, now: 10_000 });
      expect(item).toBeDefined();
      expect(await store.claimItems({ owner: 'live', limit: 5, leaseMs: 1000, now: 10_500 })).toEqual([]);
      expect(await store.renewLeases({ owner: 'dead', itemIds: [item!.id], leaseMs: 1000, now: 10_600 })).toEqual([item!.id]);
      const [again] = await store.claimItems({ owner: 'live', limit: 5, leaseMs: 1000, now: 12_000 });
      expect(again).toMatchObject({ id: item!.id, claims: 2, leaseOwner: 'live' });
      expect(await store.renewLeases({ owner: 'dead', itemIds: [item!.id], leaseMs: 1000, now: 12_001 })).toEqual([]);
      const late = (await store.completeItems([{ itemId: item!.id, owner: 'dead', outcome: { ok: false, error: 'x' }, now: 12_100 }]))[0]!;
      expect(late.applied).toBe(false);
      const done = (await store.completeItems([{
        itemId: item!.id, owner: 'live', outcome: { ok: true, outputKey: 'abc.jpg', format: 'jpeg', bytesIn: 10, bytesOut: 5, outcome: 'compressed' as const }, now: 12_200,
      }]))[0]!;
      expect(done).toEqual({ applied: true, finalStatus: 'completed' });
    });

    it('counts progress exactly and finishes once with the right status and event', async () => {
      const ok = await ingest(store, products(3, 1));
      const items = await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: Date.now() });
      expect(items).toHaveLength(3);
      const results = [];
      for (const [i, item] of items.entries()) {
        const outcome = i === 0 ? { ok: false as const, error: 'HTTP 404' } : { ok: true as const, outputKey: `k${i}.jpg`, format: 'jpeg', bytesIn: 9, bytesOut: 3, outcome: 'compressed' as const };
        results.push((await store.completeItems([{ itemId: item.id, owner: 'r', outcome, now: Date.now() }]))[0]!);
      }
      expect(results.map((r) => r.finalStatus)).toEqual([undefined, undefined, 'completed']);
      expect(await store.getRequest(ok.id)).toMatchObject({ status: 'completed', done: 2, failed: 1, total: 3 });
      expect((await store.listEvents(ok.id)).map((e) => e.type)).toEqual(['processing.started', 'processing.completed']);
      const failedItem = (await store.getItemsByUrl(ok.id, [items[0]!.url]))[0];
      expect(failedItem).toMatchObject({ state: 'failed', error: 'HTTP 404', outputKey: null });
      // a second completion of a finished item changes nothing
      expect(((await store.completeItems([{ itemId: items[1]!.id, owner: 'r', outcome: { ok: false, error: 'late' }, now: Date.now() }]))[0]!).applied).toBe(false);
      expect(await store.getRequest(ok.id)).toMatchObject({ done: 2, failed: 1 });

      const bad = await ingest(store, products(2, 1, 'http://bad.test/'));
      for (const item of await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: Date.now() })) {
        (await store.completeItems([{ itemId: item.id, owner: 'r', outcome: { ok: false, error: 'boom' }, now: Date.now() }]))[0]!;
      }
      expect(await store.getRequest(bad.id)).toMatchObject({ status: 'failed', done: 0, failed: 2 });
      expect((await store.listEvents(bad.id)).map((e) => e.type)).toEqual(['processing.started', 'processing.failed']);
      const payloadBody = JSON.parse((await store.listEvents(bad.id))[1]!.payload);
      expect(payloadBody).toMatchObject({ type: 'processing.failed', data: { request_id: bad.id, status: 'failed' } });
    });

    it('moves the request version on every change a status reader could see', async () => {
      const req = await ingest(store, products(2, 1));
      const version = async () => (await store.getRequest(req.id))!.version;
      const v0 = await version();
      const [a, b] = await store.claimItems({ owner: 'r', limit: 2, leaseMs: 60_000, now: Date.now() });
      const v1 = await version();
      expect(v1).toBeGreaterThan(v0);
      expect(await store.renewLeases({ owner: 'r', itemIds: [a!.id, b!.id], leaseMs: 60_000, now: Date.now() })).toHaveLength(2);
      expect(await version()).toBe(v1); // a renewal changes nothing visible
      (await store.completeItems([{ itemId: a!.id, owner: 'r', outcome: { ok: false, error: 'x' }, now: Date.now() }]))[0]!;
      const v2 = await version();
      expect(v2).toBeGreaterThan(v1);
      await store.releaseItems('r');
      expect(await version()).toBeGreaterThan(v2);
    });

    it('sets the per-upload receiver at commit when it came after the file', async () => {
      const id = randomUUID();
      await store.beginRequest(begin({ id, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: 1000 }));
      await store.appendBatch(id, products(1));
      const req = await store.commitRequest(id, 2000, { webhook: { url: 'https://hooks.test/late', secret: 'whsec_late' } });
      expect(req).toMatchObject({ webhookUrl: 'https://hooks.test/late', webhookSecret: 'whsec_late' });
      expect(await store.getRequest(id)).toMatchObject({ webhookUrl: 'https://hooks.test/late', webhookSecret: 'whsec_late' });
    });

    it('releases an owner’s items back to pending on shutdown', async () => {
      await ingest(store, products(2, 1));
      const claimed = await store.claimItems({ owner: 'stopping', limit: 10, leaseMs: 60_000, now: Date.now() });
      expect(claimed).toHaveLength(2);
      expect(await store.releaseItems('stopping')).toBe(2);
      const again = await store.claimItems({ owner: 'next', limit: 10, leaseMs: 60_000, now: Date.now() });
      expect(again.map((i) => i.id).sort()).toEqual(claimed.map((i) => i.id).sort());
      expect((await store.pendingStats(Date.now())).running).toBe(2);
    });

    it('stores subscriptions, rotates secrets and removes them', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/a', events: ['processing.completed' as const], secret: 'whsec_one', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      expect(await store.getSubscription(sub.id)).toEqual(sub);
      expect((await store.listSubscriptions(null)).map((s) => s.id)).toContain(sub.id);
      const rotated = await store.rotateSecret({ id: sub.id, newSecret: 'whsec_two', previousSecretExpiresAt: 99 });
      expect(rotated).toMatchObject({ secret: 'whsec_two', previousSecret: 'whsec_one', previousSecretExpiresAt: 99 });
      expect(await store.rotateSecret({ id: 'nope', newSecret: 'x', previousSecretExpiresAt: 1 })).toBeNull();
      expect(await store.deleteSubscription(sub.id)).toBe(true);
      expect(await store.deleteSubscription(sub.id)).toBe(false);
      expect(await store.getSubscription(sub.id)).toBeNull();
    });

    concurrent('fans each event out to interested receivers and leases deliveries exclusively', async () => {
      const completedOnly = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/done', events: ['processing.completed' as const], secret: 'whsec_a', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(completedOnly);
      const req = await ingest(store, products(1, 1), { webhookUrl: 'https://hooks.test/once' });
      const [item] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      (await store.completeItems([{ itemId: item!.id, owner: 'r', outcome: { ok: true, outputKey: 'a.jpg', format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed' as const }, now: 2_000 }]))[0]!;

      const other = await h.openAnother();
      try {
        const [a, b] = await Promise.all([
          store.claimDeliveries({ owner: 'd1', limit: 10, leaseMs: 30_000, now: 3_000 }),
          other.claimDeliveries({ owner: 'd2', limit: 10, leaseMs: 30_000, now: 3_000 }),
        ]);
        const mine = [...a!, ...b!].filter((d) => d.requestId === req.id);
        expect(mine.map((d) => `${d.url} ${d.eventType}`).sort()).toEqual([
          'https://hooks.test/done processing.completed',
          'https://hooks.test/once processing.completed',
          'https://hooks.test/once processing.started',
        ]);
        expect(new Set(mine.map((d) => d.id)).size).toBe(3);
        expect(await store.claimDeliveries({ owner: 'd3', limit: 10, leaseMs: 30_000, now: 4_000 })).toEqual([]);

        const toSub = mine.find((d) => d.subscriptionId === completedOnly.id)!;
        const owner = a!.some((d) => d.id === toSub.id) ? 'd1' : 'd2';
        expect(await store.recordAttempt({ owner: 'intruder', attempt: { deliveryId: toSub.id, attempt: 1, at: 4_000, statusCode: 500, error: null, durationMs: 5 }, outcome: { kind: 'retry', nextAttemptAt: 9_000 }, now: 4_000 })).toBe(false);
        expect(await store.recordAttempt({ owner, attempt: { deliveryId: toSub.id, attempt: 1, at: 4_000, statusCode: 500, error: null, durationMs: 5 }, outcome: { kind: 'retry', nextAttemptAt: 9_000 }, now: 4_000 })).toBe(true);
        expect((await store.claimDeliveries({ owner: 'd4', limit: 10, leaseMs: 30_000, now: 8_999 })).map((d) => d.id)).not.toContain(toSub.id);
        const [due] = await store.claimDeliveries({ owner: 'd4', limit: 10, leaseMs: 30_000, now: 9_000 });
        expect(due).toMatchObject({ id: toSub.id, attempts: 1, lastError: 'HTTP 500' });
        expect(await store.recordAttempt({ owner: 'd4', attempt: { deliveryId: toSub.id, attempt: 2, at: 9_000, statusCode: 204, error: null, durationMs: 3 }, outcome: { kind: 'delivered' }, now: 9_000 })).toBe(true);

        const log = await store.listDeliveries(completedOnly.id, { limit: 10 });
        expect(log.items).toHaveLength(1);
        expect(log.items[0]).toMatchObject({ state: 'delivered', attempts: 2 });
        expect(log.items[0]!.attemptLog.map((x) => x.statusCode)).toEqual([500, 204]);

        const retried = await store.retryDelivery({ subscriptionId: completedOnly.id, deliveryId: toSub.id, now: 10_000 });
        expect(retried).toMatchObject({ state: 'pending', nextAttemptAt: 10_000 });
        expect(await store.retryDelivery({ subscriptionId: 'other', deliveryId: toSub.id, now: 10_000 })).toBeNull();
      } finally {
        await other.close();
      }
    });

    it('pages the delivery log newest first', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/all', events: ['processing.started' as const, 'processing.completed' as const, 'processing.failed' as const], secret: 'whsec_a', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      for (let i = 0; i < 3; i++) {
        await ingest(store, products(1, 1, `http://r${i}.test/`));
        const [item] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 + i * 10 });
        (await store.completeItems([{ itemId: item!.id, owner: 'r', outcome: { ok: false, error: 'x' }, now: 1_005 + i * 10 }]))[0]!;
      }
      const first = await store.listDeliveries(sub.id, { limit: 4 });
      const second = await store.listDeliveries(sub.id, { limit: 4, cursor: first.nextCursor });
      expect(first.items).toHaveLength(4);
      expect(second.items).toHaveLength(2);
      expect(second.nextCursor).toBeNull();
      const times = [...first.items, ...second.items].map((d) => d.createdAt);
      expect(times).toEqual([...times].sort((x, y) => y - x));
    });

    it('abort and crash cleanup never touch a committed request', async () => {
      const req = await ingest(store, products(2, 1), { now: 1000 });
      await store.abortRequest(req.id); // e.g. an upload whose commit went through but reported an error
      expect(await store.cleanupIngesting(Date.now() + 60_000)).toBe(0);
      expect(await store.getRequest(req.id)).toMatchObject({ status: 'received', total: 2, productCount: 2 });
      expect((await store.listProducts(req.id, { limit: 10 })).items).toHaveLength(2);
      const claimed = await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: Date.now() });
      expect(claimed.filter((i) => i.requestId === req.id)).toHaveLength(2);
    });

    it('answers ids that cannot be items as not held, never with an error', async () => {
      await ingest(store, products(1, 1));
      expect((await store.completeItems([{ itemId: 'not-an-id', owner: 'r', outcome: { ok: false, error: 'x' }, now: Date.now() }]))[0]!).toEqual({ applied: false });
      expect(await store.renewLeases({ owner: 'r', itemIds: ['not-an-id'], leaseMs: 1000, now: Date.now() })).toEqual([]);
    });

    it('a manual retry never frees a delivery a dispatcher holds (no second concurrent send)', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/r', events: ['processing.started' as const], secret: 'whsec_r', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      const req = await ingest(store, products(1, 1));
      await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      const [held] = (await store.claimDeliveries({ owner: 'd1', limit: 10, leaseMs: 30_000, now: 2_000 })).filter((d) => d.requestId === req.id);
      expect(held).toMatchObject({ subscriptionId: sub.id, leaseOwner: 'd1' });

      // d1 is sending it: a retry asked for now leaves it as it is
      const asked = await store.retryDelivery({ subscriptionId: sub.id, deliveryId: held!.id, now: 3_000 });
      expect(asked).toMatchObject({ id: held!.id, state: 'pending', leaseOwner: 'd1', leaseUntil: 32_000 });
      expect((await store.claimDeliveries({ owner: 'd2', limit: 10, leaseMs: 30_000, now: 3_000 })).map((d) => d.id)).not.toContain(held!.id);
      expect(await store.recordAttempt({ owner: 'd1', attempt: { deliveryId: held!.id, attempt: 1, at: 3_000, statusCode: 500, error: null, durationMs: 1 }, outcome: { kind: 'retry', nextAttemptAt: 60_000 }, now: 4_000 })).toBe(true);

      // waiting for its next attempt (no lease): due now
      expect(await store.retryDelivery({ subscriptionId: sub.id, deliveryId: held!.id, now: 5_000 })).toMatchObject({ state: 'pending', nextAttemptAt: 5_000, leaseOwner: null });
      const [again] = (await store.claimDeliveries({ owner: 'd2', limit: 10, leaseMs: 30_000, now: 5_000 })).filter((d) => d.id === held!.id);
      expect(again).toMatchObject({ leaseOwner: 'd2', attempts: 1 });
      // a lease that ran out does not hold it either
      expect(await store.retryDelivery({ subscriptionId: sub.id, deliveryId: held!.id, now: 36_000 })).toMatchObject({ nextAttemptAt: 36_000, leaseOwner: null });
    });

    it('starts the delivery log from the newest for a cursor it did not make', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/c', events: ['processing.started' as const], secret: 'whsec_c', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      await ingest(store, products(1, 1));
      await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      const first = await store.listDeliveries(sub.id, { limit: 10 });
      expect(first.items).toHaveLength(1);
      for (const cursor of ['not a cursor!', Buffer.from('["x","y"]').toString('base64url'), Buffer.from('[]').toString('base64url')]) {
        expect((await store.listDeliveries(sub.id, { limit: 10, cursor })).items.map((d) => d.id), cursor).toEqual(first.items.map((d) => d.id));
      }
    });

    it('writes the same event and delivery ids and bodies on every backend', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/ids', events: ['processing.started' as const, 'processing.completed' as const], secret: 'whsec_i', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      const req = await ingest(store, products(1, 1), { webhookUrl: 'https://hooks.test/own' });
      const [item] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      (await store.completeItems([{ itemId: item!.id, owner: 'r', outcome: { ok: true, outputKey: 'k.jpg', format: 'jpeg', bytesIn: 100, bytesOut: 40, outcome: 'compressed' }, now: 2_000 }]))[0]!;
      const events = await store.listEvents(req.id);
      expect(events.map((e) => e.id)).toEqual([`evt_${req.id}_started`, `evt_${req.id}_completed`]);
      expect(JSON.parse(events[1]!.payload)).toEqual({
        type: 'processing.completed', timestamp: new Date(2_000).toISOString(),
        data: { request_id: req.id, status: 'completed', progress: { total: 1, done: 1, failed: 0 } },
      });
      const deliveries = (await store.claimDeliveries({ owner: 'd', limit: 50, leaseMs: 30_000, now: 3_000 })).filter((d) => d.requestId === req.id);
      expect(deliveries.map((d) => d.id).sort()).toEqual([
        `dlv_${req.id}_completed_${sub.id}`, `dlv_${req.id}_completed_request`, `dlv_${req.id}_started_${sub.id}`, `dlv_${req.id}_started_request`,
      ].sort());
      expect(deliveries.find((d) => d.eventType === 'processing.completed')!.payload).toBe(events[1]!.payload);
      expect(await store.getRequest(req.id)).toMatchObject({ bytesIn: 100, bytesOut: 40 });
      expect((await store.getItemsByUrl(req.id, [item!.url]))[0]).toMatchObject({ outcome: 'compressed', bytesIn: 100, bytesOut: 40 });
    });

    it('sends a tenant only its own events, and the admin every tenant’s', async () => {
      const mk = (tenantId: string) => ({ id: `sub_${randomUUID()}`, tenantId, url: `https://hooks.test/${tenantId}`, events: ['processing.started' as const], secret: 'whsec_t', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 });
      const [a, b, admin] = [mk('tenant-a'), mk('tenant-b'), mk('admin')];
      for (const sub of [a, b, admin]) await store.createSubscription(sub);
      expect((await store.listSubscriptions('tenant-a')).map((s) => s.id)).toEqual([a.id]);
      const id = randomUUID();
      await store.beginRequest(begin({ id, tenantId: 'tenant-a', now: 1_000 }));
      await store.appendBatch(id, products(1, 1));
      await store.commitRequest(id, 1_000);
      await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      const due = (await store.claimDeliveries({ owner: 'd', limit: 50, leaseMs: 30_000, now: 2_000 })).filter((d) => d.requestId === id);
      expect(due.map((d) => d.subscriptionId).sort()).toEqual([a.id, admin.id].sort());
    });

    it('keeps idempotency keys per tenant, with the fingerprint of the first body', async () => {
      const first = randomUUID();
      await store.beginRequest(begin({ id: first, tenantId: 't1', idempotencyKey: 'same', now: 1_000 }));
      await store.appendBatch(first, products(1, 1));
      await store.commitRequest(first, 1_000, { fingerprint: 'f1' });
      const other = await store.beginRequest(begin({ id: randomUUID(), tenantId: 't2', idempotencyKey: 'same', now: 1_000 }));
      expect(other.created).toBe(true);
      const replay = await store.beginRequest(begin({ id: randomUUID(), tenantId: 't1', idempotencyKey: 'same', now: 1_000 }));
      expect(replay).toMatchObject({ created: false, existing: { id: first, tenantId: 't1' }, fingerprint: 'f1' });
    });

    it('lists requests newest first, per tenant or all, in pages', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = randomUUID();
        ids.push(id);
        await store.beginRequest(begin({ id, tenantId: i % 2 ? 'odd' : 'even', now: 10_000 + i }));
        await store.appendBatch(id, products(1, 1, `http://list${i}.test/`));
        await store.commitRequest(id, 10_000 + i);
      }
      const ingesting = randomUUID();
      await store.beginRequest(begin({ id: ingesting, tenantId: 'even', now: 20_000 }));
      const all: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await store.listRequests({ tenantId: null, limit: 2, cursor });
        all.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(all.filter((id) => ids.includes(id))).toEqual([...ids].reverse());
      expect(all).not.toContain(ingesting);
      expect((await store.listRequests({ tenantId: 'odd', limit: 10 })).items.map((r) => r.id)).toEqual([ids[3], ids[1]]);
    });

    it('rotates claims between tenants, then between a tenant’s requests', async () => {
      const make = (tenantId: string, n: number, at: number) => committed(store, tenantId, n, at);
      const big = await make('t-big', 40, 1_000);
      const bigToo = await make('t-big', 40, 1_001);
      const small = await make('t-small', 1, 1_002);
      // One slot at a time, as a saturated runner claims: the small request's tenant is served second.
      const order: string[] = [];
      for (let i = 0; i < 5; i++) {
        const [item] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 2_000 + i });
        order.push(item!.requestId);
      }
      expect(order.slice(0, 2).sort()).toEqual([big, small].sort());
      expect(order.slice(2)).toEqual([bigToo, big, bigToo]);
      // A wide claim shares its slots too.
      const wide = await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: 3_000 });
      const share = (id: string) => wide.filter((i) => i.requestId === id).length;
      expect([share(big), share(bigToo)]).toEqual([5, 5]);
    });

    it('hands out one claim at a time in the exact fair order: 3 tenants, 5 requests', async () => {
      const make = (tenantId: string, n: number, at: number) => committed(store, tenantId, n, at);
      const a1 = await make('A', 2, 1);
      const b1 = await make('B', 1, 2);
      const c1 = await make('C', 1, 3);
      const a2 = await make('A', 1, 4);
      const c2 = await make('C', 2, 5);
      const order: string[] = [];
      for (let i = 0; i < 8; i++) {
        const claimed = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 100 + i });
        order.push(...claimed.map((item) => item.requestId));
      }
      // Worked by hand: the tenant whose waiting requests were served longest ago goes first
      // (ties: the older tenant), then within it the request served longest ago. B and c1 run
      // dry at once; C's remaining c2 was never served, so C comes before A (served at 100).
      expect(order).toEqual([a1, b1, c1, c2, a2, a1, c2]);
    });

    it('charges an attempt only when the codec is entered, never for a claim', async () => {
      await ingest(store, products(1, 1));
      const [item] = await store.claimItems({ owner: 'dead', limit: 1, leaseMs: 1_000, now: 1_000 });
      expect(item).toMatchObject({ claims: 1, attempts: 0 });
      const [again] = await store.claimItems({ owner: 'live', limit: 1, leaseMs: 1_000, now: 5_000 });
      expect(again).toMatchObject({ id: item!.id, claims: 2, attempts: 0 });
      expect(await store.chargeAttempt({ itemId: item!.id, owner: 'dead' })).toBeNull();
      expect(await store.chargeAttempt({ itemId: item!.id, owner: 'live' })).toBe(1);
      const [third] = await store.claimItems({ owner: 'next', limit: 1, leaseMs: 1_000, now: 9_000 });
      expect(third).toMatchObject({ claims: 3, attempts: 1 });
      expect(await store.chargeAttempt({ itemId: 'not-an-id', owner: 'next' })).toBeNull();
    });

    it('records charges and completions together, with the completion\'s cache rows only when it applies', async () => {
      await ingest(store, products(3, 1));
      const [a, b, c] = await store.claimItems({ owner: 'r', limit: 3, leaseMs: 60_000, now: 1_000 });
      const out = { outputKey: 'made.jpg', format: 'jpeg', bytesOut: 5, renditionKeys: { thumb: 'made-thumb.webp' }, quality: 81, score: 71.5 };
      const remember = (sha: string) => ({
        tenantId: 't1', settings: 's1', cached: { sourceSha256: sha, output: out },
        validators: { url: `http://x/${sha}.jpg`, validators: { ...out, etag: '"e"', lastModified: null, bytesIn: 9 } },
      });
      const { attempts, results } = await store.recordProgress({
        charges: [{ itemId: b!.id, owner: 'r' }, { itemId: c!.id, owner: 'someone-else' }],
        completions: [
          { itemId: a!.id, owner: 'r', outcome: { ok: true, ...out, bytesIn: 9, outcome: 'compressed' }, now: 2_000, remember: remember('sha-a') },
          { itemId: c!.id, owner: 'someone-else', outcome: { ok: true, ...out, bytesIn: 9, outcome: 'compressed' }, now: 2_000, remember: remember('sha-c') },
        ],
      });
      expect(attempts).toEqual([1, null]);
      expect(results).toEqual([{ applied: true }, { applied: false }]);
      expect(await store.getCachedOutput('t1', 'sha-a', 's1')).toEqual(out);
      expect(await store.getValidators('t1', 'http://x/sha-a.jpg', 's1')).toMatchObject({ etag: '"e"', outputKey: 'made.jpg', bytesIn: 9, renditionKeys: { thumb: 'made-thumb.webp' }, quality: 81, score: 71.5 });
      // the item keeps its rendition outputs, which count as referenced
      expect((await store.getItemsByUrl(a!.requestId, [a!.url]))[0]).toMatchObject({ outputKey: 'made.jpg', renditionKeys: { thumb: 'made-thumb.webp' } });
      expect(await store.referencedOutputs(['made.jpg', 'made-thumb.webp'])).toEqual(new Set(['made.jpg', 'made-thumb.webp']));
      // a completion that did not apply (lease not held) remembers nothing
      expect(await store.getCachedOutput('t1', 'sha-c', 's1')).toBeNull();
      expect(await store.getValidators('t1', 'http://x/sha-c.jpg', 's1')).toBeNull();
      const again = await store.claimItems({ owner: 'r2', limit: 2, leaseMs: 60_000, now: 120_000 });
      expect(again.find((i) => i.id === b!.id)).toMatchObject({ attempts: 1 });
      expect(again.find((i) => i.id === c!.id)).toMatchObject({ attempts: 0 });
      expect(await store.recordProgress({ charges: [], completions: [] })).toEqual({ attempts: [], results: [] });
    });

    it('renews a delivery lease only for its holder', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/lease', events: ['processing.started' as const], secret: 'whsec_l', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      const req = await ingest(store, products(1, 1));
      await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      const [d] = (await store.claimDeliveries({ owner: 'd1', limit: 50, leaseMs: 5_000, now: 2_000 })).filter((x) => x.requestId === req.id);
      expect(await store.renewDeliveryLeases({ owner: 'd2', deliveryIds: [d!.id], leaseMs: 5_000, now: 4_000 })).toEqual([]);
      expect(await store.renewDeliveryLeases({ owner: 'd1', deliveryIds: [d!.id], leaseMs: 5_000, now: 4_000 })).toEqual([d!.id]);
      expect((await store.claimDeliveries({ owner: 'd2', limit: 50, leaseMs: 5_000, now: 8_000 })).map((x) => x.id)).not.toContain(d!.id);
      expect((await store.claimDeliveries({ owner: 'd2', limit: 50, leaseMs: 5_000, now: 9_001 })).map((x) => x.id)).toContain(d!.id);
    });

    it('stores API keys by hash, lists live ones and revokes', async () => {
      const key = { id: `key_${randomUUID()}`, name: 'shop', hash: randomUUID().replace(/-/g, ''), createdAt: 5, revokedAt: null, maxImagesInFlight: 10, maxUploadsPerMinute: null };
      await store.createKey(key);
      expect(await store.findKey(key.hash)).toEqual(key);
      expect((await store.listKeys()).map((k) => k.id)).toContain(key.id);
      expect(await store.revokeKey(key.id, 10)).toBe(true);
      expect(await store.revokeKey(key.id, 11)).toBe(false);
      expect(await store.findKey(key.hash)).toBeNull();
      expect((await store.listKeys()).map((k) => k.id)).not.toContain(key.id);
      expect(await store.schemaVersion()).toBe(store.backend === 'sqlite' ? SQLITE_SCHEMA_VERSION : MONGO_SCHEMA_VERSION);
    });

    it('cancels an open request once, with its event, and never claims its waiting images', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/cancel', events: ['processing.cancelled' as const], secret: 'whsec_c', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      const req = await ingest(store, products(3, 1));
      const [running] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: 1_000 });
      expect(await store.cancelRequest(req.id, 2_000)).toBe('cancelled');
      expect(await store.cancelRequest(req.id, 2_001)).toBe('final');
      expect(await store.cancelRequest('unknown', 2_001)).toBeNull();
      expect(await store.claimItems({ owner: 'r2', limit: 10, leaseMs: 60_000, now: 3_000 })).toEqual([]);
      // The image in flight may still finish; the request stays cancelled.
      const done = (await store.completeItems([{ itemId: running!.id, owner: 'r', outcome: { ok: true, outputKey: 'c.jpg', format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed' }, now: 4_000 }]))[0]!;
      expect(done).toEqual({ applied: true });
      expect(await store.getRequest(req.id)).toMatchObject({ status: 'cancelled', done: 1 });
      expect((await store.listEvents(req.id)).map((e) => e.type)).toEqual(['processing.started', 'processing.cancelled']);
      const due = (await store.claimDeliveries({ owner: 'd', limit: 50, leaseMs: 1_000, now: 5_000 })).filter((d) => d.requestId === req.id);
      expect(due.map((d) => d.id)).toEqual([`dlv_${req.id}_cancelled_${sub.id}`]);
      // A lease that runs out on a cancelled request's image does not bring it back.
      expect((await store.claimItems({ owner: 'r3', limit: 10, leaseMs: 60_000, now: 200_000 })).filter((i) => i.requestId === req.id)).toEqual([]);
    });

    it('retries only the failed images of a final request, as a new run with its own events', async () => {
      const req = await ingest(store, products(3, 1));
      const items = await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: 1_000 });
      expect(await store.retryRequest(req.id, 1_500)).toBe('not-final');
      for (const [i, item] of items.entries()) {
        (await store.completeItems([{ itemId: item.id, owner: 'r', now: 2_000, outcome: i === 0 ? { ok: true, outputKey: 'k.jpg', format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed' } : { ok: false, error: 'HTTP 500' } }]))[0]!;
      }
      expect(await store.getRequest(req.id)).toMatchObject({ status: 'completed', done: 1, failed: 2 });
      expect(await store.retryRequest(req.id, 3_000)).toEqual({ retried: 2 });
      expect(await store.getRequest(req.id)).toMatchObject({ status: 'received', done: 1, failed: 0, run: 1 });
      const again = await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: 4_000 });
      expect(again.map((i) => i.url).sort()).toEqual(items.slice(1).map((i) => i.url).sort());
      expect(again.every((i) => i.attempts === 0 && i.claims === 1)).toBe(true);
      for (const item of again) {
        (await store.completeItems([{ itemId: item.id, owner: 'r', now: 5_000, outcome: { ok: true, outputKey: `${item.id}.jpg`, format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed' } }]))[0]!;
      }
      expect(await store.getRequest(req.id)).toMatchObject({ status: 'completed', done: 3, failed: 0 });
      expect((await store.listEvents(req.id)).map((e) => e.id)).toEqual([
        `evt_${req.id}_started`, `evt_${req.id}_completed`, `evt_${req.id}_started_1`, `evt_${req.id}_completed_1`,
      ]);
      expect(await store.retryRequest(req.id, 6_000)).toBe('none-failed');
      expect(await store.retryRequest('unknown', 6_000)).toBeNull();
    });

    it('deletes a request with everything it owns, and reports its outputs', async () => {
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/del', events: ['processing.started' as const, 'processing.completed' as const], secret: 'whsec_d', previousSecret: null, previousSecretExpiresAt: null, createdAt: 1 };
      await store.createSubscription(sub);
      const keep = await ingest(store, products(1, 1, 'http://keep.test/'));
      const gone = await ingest(store, products(2, 1, 'http://gone.test/'), { key: 'delete-me' });
      for (const item of await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: 1_000 })) {
        // Both requests produce the shared output; the deleted one also a key of its own.
        const key = item.url.includes('gone.test/2') ? 'own.jpg' : 'shared.jpg';
        (await store.completeItems([{ itemId: item.id, owner: 'r', now: 2_000, outcome: { ok: true, outputKey: key, format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed' } }]))[0]!;
      }
      const [delivery] = (await store.claimDeliveries({ owner: 'd', limit: 50, leaseMs: 1_000, now: 3_000 })).filter((d) => d.requestId === gone.id);
      await store.recordAttempt({ owner: 'd', attempt: { deliveryId: delivery!.id, attempt: 1, at: 3_000, statusCode: 204, error: null, durationMs: 1 }, outcome: { kind: 'delivered' }, now: 3_000 });
      const keys = await store.deleteRequest(gone.id, 4_000);
      expect(keys?.sort()).toEqual(['own.jpg', 'shared.jpg']);
      expect(await store.getRequest(gone.id)).toBeNull();
      expect((await store.listProducts(gone.id, { limit: 10 })).items).toEqual([]);
      expect(await store.listEvents(gone.id)).toEqual([]);
      expect((await store.listDeliveries(sub.id, { limit: 50 })).items.filter((d) => d.requestId === gone.id)).toEqual([]);
      expect(await store.referencedOutputs(['own.jpg', 'shared.jpg'])).toEqual(new Set(['shared.jpg']));
      expect(await store.deleteRequest(gone.id, 5_000)).toBeNull();
      expect(await store.purgeDeleting()).toEqual([]);
      expect((await store.beginRequest(begin({ id: randomUUID(), idempotencyKey: 'delete-me', now: 6_000 }))).created).toBe(true);
      expect(await store.getRequest(keep.id)).toMatchObject({ status: 'completed' });
    });

    it('keeps rendition outputs with their items, reports them on delete and as referenced', async () => {
      const renditions = [{ name: 'thumb', format: 'webp' as const, quality: 50, quality_target: 70, max_width: 320, max_height: null, progressive: true }];
      const id = randomUUID();
      await store.beginRequest(begin({ id, now: 1_000 }));
      await store.appendBatch(id, products(2, 1, 'http://renditions.test/'));
      const committed = await store.commitRequest(id, 1_000, { options: { format: 'original', quality: 50, quality_target: 70, max_width: null, max_height: null, progressive: false, renditions } });
      expect(committed.options?.renditions).toEqual(renditions);
      expect((await store.getRequest(id))?.options?.renditions).toEqual(renditions);
      const mine = (await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: 1_500 })).filter((i) => i.requestId === id);
      expect(mine).toHaveLength(2);
      const [a, b] = mine;
      await store.completeItems([
        { itemId: a!.id, owner: 'r', now: 2_000, outcome: { ok: true, outputKey: 'r-a.jpg', renditionKeys: { thumb: 'r-a-thumb.webp' }, format: 'jpeg', bytesIn: 2, bytesOut: 1, outcome: 'compressed' } },
        { itemId: b!.id, owner: 'r', now: 2_000, outcome: { ok: false, error: 'rendition "thumb": boom' } },
      ]);
      const items = await store.getItemsByUrl(id, [a!.url, b!.url]);
      expect(items.find((i) => i.id === a!.id)).toMatchObject({ outputKey: 'r-a.jpg', renditionKeys: { thumb: 'r-a-thumb.webp' } });
      expect(items.find((i) => i.id === b!.id)).toMatchObject({ outputKey: null, renditionKeys: null });
      expect(await store.getRequest(id)).toMatchObject({ done: 1, failed: 1, bytesOut: 1 });
      expect(await store.referencedOutputs(['r-a.jpg', 'r-a-thumb.webp', 'r-other.webp'])).toEqual(new Set(['r-a.jpg', 'r-a-thumb.webp']));
      const cached = { outputKey: 'r-a.jpg', format: 'jpeg', bytesOut: 1, renditionKeys: { thumb: 'r-a-thumb.webp' }, quality: 50, score: null };
      await store.putCachedOutput('t1', 'sha-r', 's-r', cached, 1);
      expect(await store.getCachedOutput('t1', 'sha-r', 's-r')).toEqual(cached);
      await store.putValidators('t1', 'http://renditions.test/1', 's-r', { ...cached, etag: '"e"', lastModified: null, bytesIn: 2 }, 1);
      expect(await store.getValidators('t1', 'http://renditions.test/1', 's-r')).toMatchObject({ renditionKeys: { thumb: 'r-a-thumb.webp' } });
      expect((await store.deleteRequest(id, 3_000))?.sort()).toEqual(['r-a-thumb.webp', 'r-a.jpg']);
      expect(await store.referencedOutputs(['r-a.jpg', 'r-a-thumb.webp'])).toEqual(new Set());
    });

    it('lists final requests past their retention, and measures a tenant’s usage', async () => {
      const make = async (tenantId: string, at: number, n: number) => {
        const id = randomUUID();
        await store.beginRequest(begin({ id, tenantId, now: at }));
        await store.appendBatch(id, products(n, 1, `http://${id}.test/`));
        return store.commitRequest(id, at);
      };
      const old = await make('t-usage', 1_000, 1);
      for (const item of await store.claimItems({ owner: 'r', limit: 10, leaseMs: 60_000, now: 1_500 })) {
        (await store.completeItems([{ itemId: item.id, owner: 'r', now: 2_000, outcome: { ok: false, error: 'x' } }]))[0]!;
      }
      await make('t-usage', 50_000, 4);
      await make('t-usage', 55_000, 3);
      expect(await store.listExpiredRequests(3_000, 10)).toEqual([old.id]);
      expect(await store.listExpiredRequests(1_999, 10)).toEqual([]);
      expect(await store.tenantUsage('t-usage', 40_000)).toEqual({ inFlight: 7, uploadsSince: 2, oldestUploadSince: 50_000 });
      expect(await store.tenantUsage('nobody', 0)).toEqual({ inFlight: 0, uploadsSince: 0, oldestUploadSince: null });
    });

    it('counts uploads in a log: deleting requests frees no upload quota', async () => {
      const ids: string[] = [];
      for (const at of [50_000, 51_000]) {
        const id = randomUUID();
        await store.beginRequest(begin({ id, tenantId: 't-log', now: at }));
        await store.appendBatch(id, products(1, 1, `http://${id}.test/`));
        await store.commitRequest(id, at);
        ids.push(id);
      }
      for (const id of ids) await store.cancelRequest(id, 52_000);
      for (const id of ids) expect(await store.deleteRequest(id, 52_000)).not.toBeNull();
      expect(await store.tenantUsage('t-log', 40_000)).toEqual({ inFlight: 0, uploadsSince: 2, oldestUploadSince: 50_000 });
      // An aborted upload was never accepted: it is not counted.
      const aborted = randomUUID();
      await store.beginRequest(begin({ id: aborted, tenantId: 't-log', now: 53_000 }));
      await store.abortRequest(aborted);
      expect((await store.tenantUsage('t-log', 40_000)).uploadsSince).toBe(2);
    });

    it('decides the in-flight limit in the commit: alone over it, or with concurrent commits, and nothing is committed', async () => {
      const stage = async (on: Store, tenantId: string, n: number) => {
        const id = randomUUID();
        await on.beginRequest(begin({ id, tenantId, now: 1_000 }));
        await on.appendBatch(id, products(n, 1, `http://${id}.test/`));
        return id;
      };
      const big = await stage(store, 't-cap', 6);
      const refused = await store.commitRequest(big, 1_000, { maxImagesInFlight: 5 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(InFlightLimitError);
      expect(refused).toMatchObject({ images: 6, inFlight: 0, limit: 5 });
      expect(await store.getRequest(big)).toBeNull();
      await store.abortRequest(big);

      // Two uploads of 3 under a limit of 5, committed at once from two connections: one passes.
      const other = await h.openAnother();
      try {
        const [a, b] = [await stage(store, 't-cap', 3), await stage(other, 't-cap', 3)];
        const results = await Promise.allSettled([
          store.commitRequest(a, 2_000, { maxImagesInFlight: 5 }),
          other.commitRequest(b, 2_000, { maxImagesInFlight: 5 }),
        ]);
        expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
        const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(loser.reason).toBeInstanceOf(InFlightLimitError);
        expect(loser.reason).toMatchObject({ images: 3, inFlight: 3, limit: 5 });
        expect(await store.tenantUsage('t-cap', 0)).toMatchObject({ inFlight: 3, uploadsSince: 1 });
        // Another tenant is not held by t-cap's queue.
        const c = await stage(store, 't-other', 5);
        expect(await store.commitRequest(c, 3_000, { maxImagesInFlight: 5 })).toMatchObject({ total: 5 });
      } finally {
        await other.close();
      }
    });

    it('makes one output-name secret, whoever asks first, and keeps it', async () => {
      const others = await Promise.all([h.openAnother(), h.openAnother(), h.openAnother()]);
      try {
        const secrets = await Promise.all([store, ...others].map((s) => s.outputNameSecret()));
        expect(secrets[0]).toMatch(/^[0-9a-f]{64}$/);
        expect(new Set(secrets).size).toBe(1);
      } finally {
        for (const o of others) await o.close();
      }
      const first = await store.outputNameSecret();
      store = await h.reopen();
      expect(await store.outputNameSecret()).toBe(first);
    });

    it('hands a job lock to one owner at a time until it expires', async () => {
      expect(await store.tryLock('retention', 'a', 1_000, 10_000)).toBe(true);
      expect(await store.tryLock('retention', 'b', 1_000, 10_500)).toBe(false);
      expect(await store.tryLock('retention', 'a', 1_000, 10_600)).toBe(true); // renewal
      expect(await store.tryLock('retention', 'b', 1_000, 11_700)).toBe(true);
      expect(await store.tryLock('other', 'a', 1_000, 11_700)).toBe(true);
    });

    it('keeps reusable outputs and URL validators per tenant and per settings', async () => {
      // the encoder quality and SSIMULACRA2 score (quality=auto) go with it
      const out = { outputKey: 'k.webp', format: 'webp', bytesOut: 9, quality: 57, score: 71.25 };
      expect(await store.getCachedOutput('t1', 'sha', 's1')).toBeNull();
      await store.putCachedOutput('t1', 'sha', 's1', out, 1);
      await store.putCachedOutput('t1', 'sha', 's1', out, 2); // again: replaces
      expect(await store.getCachedOutput('t1', 'sha', 's1')).toEqual(out);
      expect(await store.getCachedOutput('t2', 'sha', 's1')).toBeNull(); // another tenant's cache is not ours
      expect(await store.getCachedOutput('t1', 'sha', 's2')).toBeNull(); // other settings
      const v = { etag: '"abc"', lastModified: null, outputKey: 'k.jpg', format: 'jpeg', bytesIn: 100, bytesOut: 40, quality: 80, score: null };
      await store.putValidators('t1', 'http://x/a.jpg', 's1', v, 1);
      expect(await store.getValidators('t1', 'http://x/a.jpg', 's1')).toEqual(v);
      expect(await store.getValidators('t2', 'http://x/a.jpg', 's1')).toBeNull();
      await store.putValidators('t1', 'http://x/a.jpg', 's1', { ...v, etag: null, lastModified: 'Tue, 01 Dec 2026 00:00:00 GMT' }, 2);
      expect(await store.getValidators('t1', 'http://x/a.jpg', 's1')).toMatchObject({ etag: null, lastModified: 'Tue, 01 Dec 2026 00:00:00 GMT' });
      // what the status said about the image goes with its output, for a reuse to say it again
      const noted = { outputKey: 'n.jpg', format: 'jpeg', bytesOut: 5, note: 'converted from HEIC; first frame of 3', quality: 77, score: 70.2 };
      await store.putCachedOutput('t1', 'sha-n', 's1', noted, 3);
      expect(await store.getCachedOutput('t1', 'sha-n', 's1')).toEqual(noted);
      await store.putValidators('t1', 'http://x/n.heic', 's1', { ...noted, etag: '"n"', lastModified: null, bytesIn: 7 }, 3);
      expect(await store.getValidators('t1', 'http://x/n.heic', 's1')).toMatchObject({ note: 'converted from HEIC; first frame of 3', quality: 77, score: 70.2 });
    });

    it('keeps everything across a restart', async () => {
      const req = await ingest(store, products(4, 1), { key: 'persist' });
      const sub = { id: `sub_${randomUUID()}`, tenantId: 'admin', url: 'https://hooks.test/p', events: ['processing.failed' as const], secret: 'whsec_p', previousSecret: null, previousSecretExpiresAt: null, createdAt: 5 };
      await store.createSubscription(sub);
      const [item] = await store.claimItems({ owner: 'r', limit: 1, leaseMs: 60_000, now: Date.now() });
      store = await h.reopen();
      expect(await store.getRequest(req.id)).toMatchObject({ status: 'processing', total: 4, productCount: 4 });
      expect(await store.getSubscription(sub.id)).toEqual(sub);
      const again = await store.beginRequest(begin({ id: randomUUID(), idempotencyKey: 'persist', webhookUrl: null, webhookSecret: null, now: Date.now() }));
      expect(again.created).toBe(false);
      expect((await store.getItemsByUrl(req.id, [item!.url]))[0]).toMatchObject({ state: 'running', leaseOwner: 'r' });
      expect((await store.pendingStats(Date.now())).pending).toBe(3);
    });
  });
}
