// The MongoDB store: the backend for running on many machines. Every instance (API and
// runners) coordinates only through these collections, with single-document atomic updates
// and no multi-document transactions, so one path runs on a standalone server, a replica
// set and FerretDB. The rules come from lifecycle.ts.
//
// - A transition and its event are one update of the request document: the event goes into
//   the request's `outbox` in the same write. A relay then writes it to `events` and its
//   `deliveries` (upserts on ids derived from the event, so running it twice is harmless) and
//   pulls it from the outbox. The relay runs right after the transition and again, for what
//   a crash left behind, from claimDeliveries.
// - A completion marks the item final but not `settled`, adds it to the request's counters
//   (guarded by the request's `settling` list, so it is counted once), moves the request to
//   its final state when it was the last one, then marks the item settled. An item left
//   unsettled by a crash is settled by the next claim after its lease runs out.
// - Claims are findOneAndUpdate on (state, lease), one document at a time.
//
// Ingest: a request stays 'ingesting' (invisible) while its batches are written; commit makes
// it visible in one update. Claims go by committed request, so its items need no staging.
import { MongoBulkWriteError, MongoServerError, ObjectId, type AnyBulkWriteOperation, type MongoClient } from 'mongodb';
import {
  afterAttempt, claimFairly, counterDelta, deliveriesFor, eventOrder, isFinal, isOpen, itemResult, newestFirstCursor,
  OPEN_STATUSES, pageOf, serialCursor, settledStatus, transitionEvent, VISIBLE_STATUSES,
} from './lifecycle.js';
import { connectMongo, oneLine, redactUri, type MongoStoreOptions } from './mongo-connect.js';
import {
  collections, idempotencyId, migrateMongo, schemaVersionOf,
  type AttemptDoc, type Collections, type DeliveryDoc, type ItemDoc, type KeyDoc, type RequestDoc, type SubscriptionDoc,
} from './mongo-schema.js';
import type {
  ApiKeyRecord, AttemptOutcome, BeginInput, BeginResult, CommitExtra, CompleteInput, CompleteResult, DeliveryAttempt, DeliveryRecord, EventRecord,
  ItemOutcome, ItemRecord, Page, ProductRecord, RequestRecord, ReusableOutput, Store, Subscription, UrlValidators,
} from './types.js';

export { redactUri };

/** Documents per insertMany / $in list. */
const CHUNK = 1000;
/** How often (at most) one instance looks for outboxes and completions a crash left behind. */
const RECOVER_EVERY_MS = 1_000;
/** An outbox entry older than this is left over (the writer relays its own at once). */
const OUTBOX_GRACE_MS = 2_000;
/** A settler's hold on an abandoned completion. */
const SETTLE_LEASE_MS = 30_000;
const OPEN = [...OPEN_STATUSES];

/** Connects, migrates, and returns the store. Start-up failures are one line naming the host. */
export async function openMongoStore(uri: string, dbName: string, opts: MongoStoreOptions): Promise<MongoStore> {
  const { client, db } = await connectMongo(uri, dbName, opts);
  const c = collections(db);
  try {
    await migrateMongo(c);
  } catch (err) {
    await client.close(true).catch(() => {});
    throw new Error(`cannot prepare MongoDB database ${dbName} at ${redactUri(uri)}: ${oneLine(err, uri)}`);
  }
  return new MongoStore(client, c);
}

export class MongoStore implements Store {
  readonly backend = 'mongodb' as const;
  readonly #client: MongoClient;
  readonly #c: Collections;
  #lastOutboxSweep = 0;
  #lastSettleSweep = 0;

  constructor(client: MongoClient, c: Collections) {
    this.#client = client;
    this.#c = c;
  }

  // ---- ingest ---------------------------------------------------------------------------

  async beginRequest(input: BeginInput): Promise<BeginResult> {
    const c = this.#c;
    if (input.idempotencyKey !== null) {
      const _id = idempotencyId(input.tenantId, input.idempotencyKey);
      // A key can be freed (abort) or taken (another instance) between our read and write.
      for (let round = 0; ; round++) {
        const key = await c.idempotency.findOne({ _id });
        if (key) {
          const existing = await c.requests.findOne({ _id: key.requestId });
          if (existing) return { created: false, existing: toRequest(existing), fingerprint: key.fingerprint ?? null };
          await c.idempotency.deleteOne({ _id, requestId: key.requestId }); // its request was aborted
        }
        try {
          await c.idempotency.insertOne({ _id, tenantId: input.tenantId, key: input.idempotencyKey, requestId: input.id, fingerprint: null });
          break;
        } catch (err) {
          if (!isDuplicateKey(err) || round >= 5) throw err;
        }
      }
    }
    await c.requests.insertOne({
      _id: input.id, status: 'ingesting', tenantId: input.tenantId, webhookUrl: input.webhookUrl, webhookSecret: input.webhookSecret,
      options: null, productCount: 0, total: 0, done: 0, failed: 0, bytesIn: 0, bytesOut: 0, run: 0, lastClaimAt: 0,
      createdAt: input.now, updatedAt: input.now, version: 0,
    });
    return { created: true };
  }

  async appendBatch(requestId: string, products: ProductRecord[]): Promise<void> {
    if (products.length === 0) return;
    const now = Date.now();
    for (let i = 0; i < products.length; i += CHUNK) {
      await this.#c.products.insertMany(
        products.slice(i, i + CHUNK).map((p) => ({ requestId, serial: p.serial, name: p.name, inputUrls: p.inputUrls })),
        { ordered: false },
      );
    }
    const urls = [...new Set(products.flatMap((p) => p.inputUrls))];
    for (let i = 0; i < urls.length; i += CHUNK) {
      const docs: ItemDoc[] = urls.slice(i, i + CHUNK).map((url) => ({
        _id: new ObjectId(), requestId, url, state: 'pending', attempts: 0, claims: 0,
        leaseOwner: null, leaseUntil: null, outputKey: null, error: null, outcome: null, bytesIn: null, bytesOut: null, createdAt: now,
      }));
      // URLs already in the request (an earlier batch) are stored once.
      await insertIgnoringDuplicates(this.#c.items, docs);
    }
  }

  async commitRequest(requestId: string, now: number, extra: CommitExtra = {}): Promise<RequestRecord> {
    const { webhook, fingerprint, options } = extra;
    // Before the request is visible: a replay never sees a committed request without it.
    if (fingerprint) await this.#c.idempotency.updateOne({ requestId }, { $set: { fingerprint } });
    const [productCount, total] = await Promise.all([
      this.#c.products.countDocuments({ requestId }),
      this.#c.items.countDocuments({ requestId }),
    ]);
    const request = await this.#c.requests.findOneAndUpdate(
      { _id: requestId, status: 'ingesting' },
      { $set: {
        status: 'received', productCount, total, updatedAt: now,
        ...(webhook ? { webhookUrl: webhook.url, webhookSecret: webhook.secret } : {}), ...(options ? { options } : {}),
      } },
      { returnDocument: 'after' },
    );
    if (!request) throw new Error(`request ${requestId} is not being ingested`);
    return toRequest(request);
  }

  async abortRequest(requestId: string): Promise<void> {
    // Only an ingesting request is removed; the mark also stops a concurrent commit.
    const marked = await this.#c.requests.updateOne(
      { _id: requestId, status: { $in: ['ingesting', 'aborting'] } },
      { $set: { status: 'aborting' } },
    );
    if (marked.matchedCount === 0 && (await this.#c.requests.countDocuments({ _id: requestId })) > 0) return;
    await this.#removeIngesting(requestId);
  }

  async #removeIngesting(requestId: string): Promise<void> {
    await this.#c.items.deleteMany({ requestId });
    await this.#c.products.deleteMany({ requestId });
    await this.#c.idempotency.deleteMany({ requestId });
    await this.#c.requests.deleteOne({ _id: requestId, status: 'aborting' });
  }

  async cleanupIngesting(before: number): Promise<number> {
    let removed = 0;
    const stale = this.#c.requests.find(
      { status: { $in: ['ingesting', 'aborting'] }, createdAt: { $lt: before } },
      { projection: { _id: 1 } },
    );
    for await (const { _id } of stale) {
      const marked = await this.#c.requests.updateOne(
        { _id, status: { $in: ['ingesting', 'aborting'] }, createdAt: { $lt: before } },
        { $set: { status: 'aborting' } },
      );
      if (marked.matchedCount === 0) continue; // committed meanwhile
      await this.#removeIngesting(_id);
      removed++;
    }
    return removed;
  }

  // ---- reads ----------------------------------------------------------------------------

  async getRequest(id: string): Promise<RequestRecord | null> {
    const doc = await this.#c.requests.findOne({ _id: id, status: { $in: [...VISIBLE_STATUSES] } }, { projection: { outbox: 0, settling: 0 } });
    return doc ? toRequest(doc) : null;
  }

  async listRequests(opts: { tenantId: string | null; limit: number; cursor?: string | null }): Promise<Page<RequestRecord>> {
    const before = newestFirstCursor.decode(opts.cursor);
    const filter: Record<string, unknown> = { status: { $in: [...VISIBLE_STATUSES] } };
    if (opts.tenantId !== null) filter.tenantId = opts.tenantId;
    if (before) filter.$or = [{ createdAt: { $lt: before.at } }, { createdAt: before.at, _id: { $lt: before.id } }];
    const docs = await this.#c.requests.find(filter, { projection: { outbox: 0, settling: 0 } })
      .sort({ createdAt: -1, _id: -1 }).limit(opts.limit + 1).toArray();
    return pageOf(docs.map(toRequest), opts.limit, (r) => newestFirstCursor.encode(r.createdAt, r.id));
  }

  async listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>> {
    const docs = await this.#c.products
      .find({ requestId, serial: { $gt: serialCursor.decode(opts.cursor) } }, { projection: { _id: 0, serial: 1, name: 1, inputUrls: 1 } })
      .sort({ serial: 1 })
      .limit(opts.limit + 1)
      .toArray();
    return pageOf(docs.map((d) => ({ serial: d.serial, name: d.name, inputUrls: d.inputUrls })), opts.limit, (p) => serialCursor.encode(p.serial));
  }

  async getItemsByUrl(requestId: string, urls: string[]): Promise<ItemRecord[]> {
    const out: ItemRecord[] = [];
    const unique = [...new Set(urls)];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const docs = await this.#c.items.find({ requestId, url: { $in: unique.slice(i, i + CHUNK) } }).toArray();
      out.push(...docs.map(toItem));
    }
    return out;
  }

  // ---- pipeline -------------------------------------------------------------------------

  async claimItems(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<ItemRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    const { items, requests } = this.#c;
    await this.#settleAbandoned(now);
    const claimed: ItemDoc[] = [];
    const lease = { $set: { state: 'running' as const, leaseOwner: owner, leaseUntil: now + leaseMs }, $inc: { claims: 1 } };
    // Expired leases first (their runner died).
    while (claimed.length < limit) {
      const doc = await items.findOneAndUpdate(
        { state: 'running', leaseUntil: { $lt: now } }, lease, { sort: { leaseUntil: 1 }, returnDocument: 'after' },
      );
      if (!doc) break;
      // An item of a request no longer open (cancelled, deleted) is not worked on again.
      if (await requests.countDocuments({ _id: doc.requestId, status: { $in: OPEN } }, { limit: 1 })) claimed.push(doc);
      else await items.updateOne({ _id: doc._id, leaseOwner: owner }, { $set: { state: 'pending', leaseOwner: null, leaseUntil: null } });
    }
    if (claimed.length < limit) {
      const withPending = await items.distinct('requestId', { state: 'pending' });
      const candidates = withPending.length === 0 ? [] : await requests
        .find({ _id: { $in: withPending }, status: { $in: OPEN } }, { projection: { tenantId: 1, lastClaimAt: 1, createdAt: 1 } })
        .toArray();
      await claimFairly(
        candidates.map((d) => ({ requestId: d._id, tenantId: d.tenantId, lastClaimAt: d.lastClaimAt ?? 0, createdAt: d.createdAt })),
        limit - claimed.length,
        async (requestId, n) => {
          let got = 0;
          for (; got < n; got++) {
            const doc = await items.findOneAndUpdate({ requestId, state: 'pending' }, lease, { sort: { _id: 1 }, returnDocument: 'after' });
            if (!doc) break;
            claimed.push(doc);
          }
          return got;
        },
      );
    }
    for (const requestId of new Set(claimed.map((i) => i.requestId))) {
      const doc = await requests.findOneAndUpdate(
        { _id: requestId }, { $set: { lastClaimAt: now }, $inc: { version: 1 } }, { returnDocument: 'after' }, // FerretDB: findAndModify takes no projection
      );
      if (doc?.status === 'received') await this.#transition(toRequest(doc), ['received'], 'processing', now);
    }
    return claimed.map(toItem);
  }

  async chargeAttempt(input: { itemId: string; owner: string }): Promise<number | null> {
    const _id = toObjectId(input.itemId);
    if (!_id) return null;
    const doc = await this.#c.items.findOneAndUpdate(
      { _id, leaseOwner: input.owner, state: 'running' }, { $inc: { attempts: 1 } }, { returnDocument: 'after' },
    );
    return doc ? doc.attempts : null;
  }

  async renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    const ids = input.itemIds.flatMap((id) => toObjectId(id) ?? []);
    if (ids.length === 0) return [];
    const leaseUntil = input.now + input.leaseMs;
    await this.#c.items.updateMany({ _id: { $in: ids }, leaseOwner: input.owner, state: 'running' }, { $set: { leaseUntil } });
    const held = await this.#c.items
      .find({ _id: { $in: ids }, leaseOwner: input.owner, state: 'running', leaseUntil: { $gte: leaseUntil } }, { projection: { _id: 1 } })
      .toArray();
    return held.map((d) => d._id.toHexString());
  }

  async completeItems(inputs: CompleteInput[]): Promise<CompleteResult[]> {
    const results: CompleteResult[] = [];
    for (const input of inputs) results.push(await this.#completeOne(input));
    return results;
  }

  async #completeOne(input: CompleteInput): Promise<CompleteResult> {
    const _id = toObjectId(input.itemId);
    if (!_id) return { applied: false };
    // Final but unsettled, still leased: if we die now, the next claim after the lease settles it.
    const item = await this.#c.items.findOneAndUpdate(
      { _id, leaseOwner: input.owner, state: 'running' },
      { $set: { ...itemResult(input.outcome), settled: false } },
      { returnDocument: 'after' },
    );
    if (!item) return { applied: false };
    const finalStatus = await this.#settle(item, input.now);
    return finalStatus ? { applied: true, finalStatus } : { applied: true };
  }

  /**
   * Takes a final item into its request's counters exactly once, finishes the request when it
   * was the last, then marks the item settled. Safe to run again after a crash at any step.
   */
  async #settle(item: ItemDoc, now: number): Promise<'completed' | 'failed' | null> {
    const { requests, items } = this.#c;
    const itemId = item._id.toHexString();
    const delta = counterDelta(item.state === 'done'
      ? { ok: true, outputKey: item.outputKey ?? '', format: '', bytesIn: item.bytesIn ?? 0, bytesOut: item.bytesOut ?? 0, outcome: item.outcome ?? 'compressed' }
      : { ok: false, error: item.error ?? '' });
    await requests.updateOne(
      { _id: item.requestId, settling: { $ne: itemId } },
      { $inc: { ...delta, version: 1 }, $set: { updatedAt: now }, $push: { settling: itemId } },
    );
    const doc = await requests.findOne({ _id: item.requestId }, { projection: { outbox: 0, settling: 0 } });
    const finalStatus = doc ? settledStatus(doc) : null;
    const finished = doc && finalStatus && isOpen(doc.status as RequestRecord['status'])
      ? await this.#transition(toRequest(doc), OPEN, finalStatus, now)
      : false;
    await items.updateOne({ _id: item._id }, { $set: { settled: true, leaseOwner: null, leaseUntil: null } });
    await requests.updateOne({ _id: item.requestId }, { $pull: { settling: itemId } });
    return finished ? finalStatus : null;
  }

  /** Settles completions whose runner died between marking the item and counting it, and finishes interrupted retries. */
  async #settleAbandoned(now: number): Promise<void> {
    if (Date.now() - this.#lastSettleSweep < RECOVER_EVERY_MS) return;
    this.#lastSettleSweep = Date.now();
    for (const { _id } of await this.#c.requests.find({ retrying: true }, { projection: { _id: 1 } }).toArray()) await this.#finishRetry(_id);
    const owner = `settler-${new ObjectId().toHexString()}`;
    for (;;) {
      const item = await this.#c.items.findOneAndUpdate(
        { settled: false, leaseUntil: { $lt: now } },
        { $set: { leaseOwner: owner, leaseUntil: now + SETTLE_LEASE_MS } },
        { returnDocument: 'after' },
      );
      if (!item) return;
      await this.#settle(item, now);
    }
  }

  /**
   * Moves a request from one of `from` to `to`, with its event in the outbox, in one update;
   * false when another caller moved it first. Relays the event at once.
   */
  async #transition(request: RequestRecord, from: readonly string[], to: 'processing' | 'completed' | 'failed' | 'cancelled', now: number): Promise<boolean> {
    const event = transitionEvent(request, to, now);
    const moved = await this.#c.requests.updateOne(
      { _id: request.id, status: { $in: [...from] as RequestDoc['status'][] }, run: request.run },
      { $set: { status: to, updatedAt: now, outboxAt: now }, $inc: { version: 1 }, $push: { outbox: event } },
    );
    if (moved.modifiedCount === 0) return false;
    await this.#relay(request.id);
    return true;
  }

  /** Writes a request's outbox events and their deliveries, then removes them from the outbox. */
  async #relay(requestId: string): Promise<void> {
    const { requests, events, subscriptions, deliveries } = this.#c;
    const doc = await requests.findOne({ _id: requestId }, { projection: { outbox: 1, tenantId: 1, webhookUrl: 1 } });
    if (!doc) return;
    for (const event of doc.outbox ?? []) {
      await ignoreDuplicates(events.updateOne(
        { _id: event.id },
        { $setOnInsert: { requestId: event.requestId, type: event.type, payload: event.payload, createdAt: event.createdAt, order: eventOrder(event.type) } },
        { upsert: true },
      ));
      const subs = (await subscriptions.find({ events: event.type }).toArray()).map(toSubscription);
      const ops: AnyBulkWriteOperation<DeliveryDoc>[] = deliveriesFor(event, doc, subs).map(({ id, ...d }) => ({
        updateOne: { filter: { _id: id }, update: { $setOnInsert: d }, upsert: true },
      }));
      if (ops.length) await ignoreDuplicates(deliveries.bulkWrite(ops, { ordered: false }));
      await requests.updateOne({ _id: requestId }, { $pull: { outbox: { id: event.id } } });
    }
    await requests.updateOne({ _id: requestId, outbox: { $size: 0 } }, { $unset: { outboxAt: '' } });
  }

  /** Relays outboxes a crash left behind (the writer relays its own at once). */
  async #relayLeftovers(now: number): Promise<void> {
    if (Date.now() - this.#lastOutboxSweep < RECOVER_EVERY_MS) return;
    this.#lastOutboxSweep = Date.now();
    const stale = await this.#c.requests.find({ outboxAt: { $lt: now - OUTBOX_GRACE_MS } }, { projection: { _id: 1 } }).limit(100).toArray();
    for (const { _id } of stale) await this.#relay(_id);
  }

  async releaseItems(owner: string): Promise<number> {
    const held = await this.#c.items.distinct('requestId', { leaseOwner: owner, state: 'running' });
    const res = await this.#c.items.updateMany(
      { leaseOwner: owner, state: 'running' }, { $set: { state: 'pending', leaseOwner: null, leaseUntil: null } },
    );
    if (held.length) await this.#c.requests.updateMany({ _id: { $in: held } }, { $inc: { version: 1 } });
    return res.modifiedCount;
  }

  async pendingStats(now: number) {
    const [pending, running, oldest] = await Promise.all([
      this.#c.items.countDocuments({ state: 'pending' }),
      this.#c.items.countDocuments({ state: 'running', leaseUntil: { $gte: now } }),
      this.#c.items.findOne({ state: 'pending' }, { sort: { _id: 1 }, projection: { createdAt: 1 } }),
    ]);
    return { pending, running, oldestPendingAt: oldest ? oldest.createdAt : null };
  }

  // ---- operating on requests ------------------------------------------------------------

  async cancelRequest(id: string, now: number): Promise<'cancelled' | 'final' | null> {
    const doc = await this.#c.requests.findOne({ _id: id, status: { $in: [...VISIBLE_STATUSES] } }, { projection: { outbox: 0, settling: 0 } });
    if (!doc) return null;
    if (isOpen(doc.status as RequestRecord['status']) && (await this.#transition(toRequest(doc), OPEN, 'cancelled', now))) return 'cancelled';
    return 'final';
  }

  async retryRequest(id: string, now: number) {
    const { requests, items } = this.#c;
    const doc = await requests.findOne({ _id: id, status: { $in: [...VISIBLE_STATUSES] } }, { projection: { outbox: 0, settling: 0 } });
    if (!doc) return null;
    if (!isFinal(doc.status as RequestRecord['status'])) return 'not-final' as const;
    const failed = await items.countDocuments({ requestId: id, state: 'failed' });
    if (failed === 0) return 'none-failed' as const;
    // Reopen first, marked, so a crash before the items are reset is finished by the next claim.
    const moved = await requests.updateOne(
      { _id: id, status: doc.status, run: doc.run },
      { $set: { status: 'received', retrying: true, updatedAt: now }, $inc: { run: 1, version: 1 } },
    );
    if (moved.modifiedCount === 0) return 'not-final' as const;
    await this.#finishRetry(id);
    return { retried: failed };
  }

  async #finishRetry(id: string): Promise<void> {
    await this.#c.items.updateMany(
      { requestId: id, state: 'failed' },
      { $set: { state: 'pending', attempts: 0, claims: 0, error: null, leaseOwner: null, leaseUntil: null } },
    );
    // Nothing of the new run has finished yet, so no item is failed now.
    await this.#c.requests.updateOne({ _id: id, retrying: true }, { $set: { failed: 0 }, $unset: { retrying: '' }, $inc: { version: 1 } });
  }

  async deleteRequest(id: string, _now: number): Promise<string[] | null> {
    // Invisible (and no longer claimable) at once; the data goes next, and a crash in between
    // is finished by purgeDeleting().
    const marked = await this.#c.requests.updateOne({ _id: id, status: { $in: [...VISIBLE_STATUSES] } }, { $set: { status: 'deleting' } });
    if (marked.matchedCount === 0) return null;
    return this.#purge(id);
  }

  async #purge(id: string): Promise<string[]> {
    const c = this.#c;
    const keys = (await c.items.distinct('outputKey', { requestId: id })).filter((k): k is string => typeof k === 'string');
    const deliveryIds = (await c.deliveries.find({ requestId: id }, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
    for (let i = 0; i < deliveryIds.length; i += CHUNK) await c.attempts.deleteMany({ deliveryId: { $in: deliveryIds.slice(i, i + CHUNK) } });
    await c.deliveries.deleteMany({ requestId: id });
    await c.events.deleteMany({ requestId: id });
    await c.items.deleteMany({ requestId: id });
    await c.products.deleteMany({ requestId: id });
    await c.idempotency.deleteMany({ requestId: id });
    await c.requests.deleteOne({ _id: id, status: 'deleting' });
    return keys;
  }

  async purgeDeleting(): Promise<string[]> {
    const keys: string[] = [];
    for (const { _id } of await this.#c.requests.find({ status: 'deleting' }, { projection: { _id: 1 } }).toArray()) keys.push(...(await this.#purge(_id)));
    return keys;
  }

  async listExpiredRequests(before: number, limit: number): Promise<string[]> {
    const docs = await this.#c.requests
      .find({ status: { $in: ['completed', 'failed', 'cancelled'] }, updatedAt: { $lt: before } }, { projection: { _id: 1 } })
      .sort({ updatedAt: 1 }).limit(limit).toArray();
    return docs.map((d) => d._id);
  }

  async referencedOutputs(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    return new Set((await this.#c.items.distinct('outputKey', { outputKey: { $in: keys } })).filter((k): k is string => typeof k === 'string'));
  }

  async tenantUsage(tenantId: string, since: number) {
    const open = await this.#c.requests.find({ tenantId, status: { $in: OPEN } }, { projection: { total: 1, done: 1, failed: 1 } }).toArray();
    const recent = await this.#c.requests.find({ tenantId, createdAt: { $gte: since } }, { projection: { createdAt: 1 } }).sort({ createdAt: 1 }).toArray();
    return {
      inFlight: open.reduce((n, r) => n + r.total - r.done - r.failed, 0),
      uploadsSince: recent.length,
      oldestUploadSince: recent[0]?.createdAt ?? null,
    };
  }

  async tryLock(name: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
    try {
      const doc = await this.#c.locks.findOneAndUpdate(
        { _id: name, $or: [{ until: { $lt: now } }, { owner }] }, { $set: { owner, until: now + ttlMs } }, { upsert: true, returnDocument: 'after' },
      );
      return doc?.owner === owner;
    } catch (err) {
      if (isDuplicateKey(err)) return false; // held by another owner
      throw err;
    }
  }

  // ---- skipping needless work -----------------------------------------------------------

  async getCachedOutput(tenantId: string, sourceSha256: string, settings: string): Promise<ReusableOutput | null> {
    const doc = await this.#c.contentCache.findOne({ _id: JSON.stringify([tenantId, sourceSha256, settings]) });
    return doc ? { outputKey: doc.outputKey, format: doc.format, bytesOut: doc.bytesOut } : null;
  }

  async putCachedOutput(tenantId: string, sourceSha256: string, settings: string, o: ReusableOutput, now: number): Promise<void> {
    await this.#c.contentCache.replaceOne(
      { _id: JSON.stringify([tenantId, sourceSha256, settings]) },
      { outputKey: o.outputKey, format: o.format, bytesOut: o.bytesOut, updatedAt: now },
      { upsert: true },
    ).catch((err) => { if (!isDuplicateKey(err)) throw err; });
  }

  async getValidators(tenantId: string, url: string, settings: string): Promise<UrlValidators | null> {
    const doc = await this.#c.validators.findOne({ _id: JSON.stringify([tenantId, url, settings]) });
    return doc ? {
      etag: doc.etag ?? null, lastModified: doc.lastModified ?? null, outputKey: doc.outputKey, format: doc.format, bytesIn: doc.bytesIn, bytesOut: doc.bytesOut,
    } : null;
  }

  async putValidators(tenantId: string, url: string, settings: string, v: UrlValidators, now: number): Promise<void> {
    await this.#c.validators.replaceOne(
      { _id: JSON.stringify([tenantId, url, settings]) },
      { etag: v.etag, lastModified: v.lastModified, outputKey: v.outputKey, format: v.format, bytesIn: v.bytesIn, bytesOut: v.bytesOut, updatedAt: now },
      { upsert: true },
    ).catch((err) => { if (!isDuplicateKey(err)) throw err; });
  }

  // ---- webhooks -------------------------------------------------------------------------

  async createSubscription(sub: Subscription): Promise<void> {
    const { id, ...rest } = sub;
    await this.#c.subscriptions.insertOne({ _id: id, ...rest });
  }

  async listSubscriptions(tenantId: string | null): Promise<Subscription[]> {
    const filter = tenantId === null ? {} : { tenantId };
    return (await this.#c.subscriptions.find(filter).sort({ createdAt: 1, _id: 1 }).toArray()).map(toSubscription);
  }

  async getSubscription(id: string): Promise<Subscription | null> {
    const doc = await this.#c.subscriptions.findOne({ _id: id });
    return doc ? toSubscription(doc) : null;
  }

  async deleteSubscription(id: string): Promise<boolean> {
    const res = await this.#c.subscriptions.deleteOne({ _id: id });
    // Undelivered messages to a removed subscription have nobody to go to.
    await this.#c.deliveries.updateMany(
      { subscriptionId: id, state: 'pending' },
      { $set: { state: 'failed', lastError: 'subscription deleted' } },
    );
    return res.deletedCount > 0;
  }

  async rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }): Promise<Subscription | null> {
    // Compare-and-set on the secret read, so two rotations at once do not lose one.
    for (;;) {
      const current = await this.#c.subscriptions.findOne({ _id: input.id });
      if (!current) return null;
      const doc = await this.#c.subscriptions.findOneAndUpdate(
        { _id: input.id, secret: current.secret },
        { $set: { previousSecret: current.secret, previousSecretExpiresAt: input.previousSecretExpiresAt, secret: input.newSecret } },
        { returnDocument: 'after' },
      );
      if (doc) return toSubscription(doc);
    }
  }

  async claimDeliveries(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<DeliveryRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    await this.#relayLeftovers(now);
    const claimed: DeliveryRecord[] = [];
    while (claimed.length < limit) {
      const doc = await this.#c.deliveries.findOneAndUpdate(
        { state: 'pending', nextAttemptAt: { $lte: now }, $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }] },
        { $set: { leaseOwner: owner, leaseUntil: now + leaseMs, updatedAt: now } },
        { sort: { nextAttemptAt: 1 }, returnDocument: 'after' },
      );
      if (!doc) break;
      claimed.push(toDelivery(doc));
    }
    return claimed;
  }

  async renewDeliveryLeases(input: { owner: string; deliveryIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    if (input.deliveryIds.length === 0) return [];
    const leaseUntil = input.now + input.leaseMs;
    const filter = { _id: { $in: input.deliveryIds }, leaseOwner: input.owner, state: 'pending' as const };
    await this.#c.deliveries.updateMany(filter, { $set: { leaseUntil } });
    const held = await this.#c.deliveries.find({ ...filter, leaseUntil: { $gte: leaseUntil } }, { projection: { _id: 1 } }).toArray();
    return held.map((d) => d._id);
  }

  async recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean> {
    const { attempt, now } = input;
    // The attempt log first: a crash before the delivery moves leaves it to be sent again, and
    // that attempt (the same number) replaces this line.
    const held = await this.#c.deliveries.countDocuments({ _id: attempt.deliveryId, leaseOwner: input.owner, state: 'pending' });
    if (held === 0) return false;
    await this.#c.attempts.replaceOne(
      { deliveryId: attempt.deliveryId, attempt: attempt.attempt },
      {
        deliveryId: attempt.deliveryId, attempt: attempt.attempt, at: attempt.at, statusCode: attempt.statusCode,
        error: attempt.error, durationMs: Math.round(attempt.durationMs),
      },
      { upsert: true },
    );
    const moved = await this.#c.deliveries.updateOne(
      { _id: attempt.deliveryId, leaseOwner: input.owner, state: 'pending' },
      { $set: { ...afterAttempt(attempt, input.outcome, now), leaseOwner: null, leaseUntil: null, updatedAt: now }, $inc: { attempts: 1 } },
    );
    return moved.matchedCount > 0;
  }

  async listDeliveries(subscriptionId: string, opts: { limit: number; cursor?: string | null }) {
    const before = newestFirstCursor.decode(opts.cursor);
    const filter: Record<string, unknown> = { subscriptionId };
    if (before) filter.$or = [{ createdAt: { $lt: before.at } }, { createdAt: before.at, _id: { $lt: before.id } }];
    const docs = await this.#c.deliveries.find(filter).sort({ createdAt: -1, _id: -1 }).limit(opts.limit + 1).toArray();
    const page = pageOf(docs.map(toDelivery), opts.limit, (d) => newestFirstCursor.encode(d.createdAt, d.id));
    const attempts = page.items.length === 0 ? [] : (await this.#c.attempts
      .find({ deliveryId: { $in: page.items.map((d) => d.id) } }, { projection: { _id: 0 } })
      .sort({ attempt: 1 })
      .toArray()).map(toAttempt);
    return { ...page, items: page.items.map((d) => ({ ...d, attemptLog: attempts.filter((a) => a.deliveryId === d.id) })) };
  }

  async retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }): Promise<DeliveryRecord | null> {
    // A pending delivery a dispatcher holds (it may be sending right now) keeps its lease:
    // freeing it would let a second dispatcher send it at the same time.
    const doc = await this.#c.deliveries.findOneAndUpdate(
      { _id: input.deliveryId, subscriptionId: input.subscriptionId, $nor: [{ state: 'pending', leaseUntil: { $gte: input.now } }] },
      { $set: { state: 'pending', nextAttemptAt: input.now, leaseOwner: null, leaseUntil: null, updatedAt: input.now } },
      { returnDocument: 'after' },
    );
    if (doc) return toDelivery(doc);
    const held = await this.#c.deliveries.findOne({ _id: input.deliveryId, subscriptionId: input.subscriptionId });
    return held ? toDelivery(held) : null;
  }

  async listEvents(requestId: string): Promise<EventRecord[]> {
    const docs = await this.#c.events.find({ requestId }).sort({ createdAt: 1, order: 1 }).toArray();
    return docs.map((d) => ({ id: d._id, requestId: d.requestId, type: d.type, payload: d.payload, createdAt: d.createdAt }));
  }

  // ---- API keys -------------------------------------------------------------------------

  async createKey(key: ApiKeyRecord): Promise<void> {
    const { id, ...rest } = key;
    await this.#c.keys.insertOne({ _id: id, ...rest });
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (await this.#c.keys.find({ revokedAt: null }).sort({ createdAt: 1, _id: 1 }).toArray()).map(toKey);
  }

  async revokeKey(id: string, now: number): Promise<boolean> {
    return (await this.#c.keys.updateOne({ _id: id, revokedAt: null }, { $set: { revokedAt: now } })).modifiedCount > 0;
  }

  async findKey(hash: string): Promise<ApiKeyRecord | null> {
    const doc = await this.#c.keys.findOne({ hash, revokedAt: null });
    return doc ? toKey(doc) : null;
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async schemaVersion(): Promise<number> {
    return schemaVersionOf(this.#c);
  }

  async ping(): Promise<void> {
    await this.#c.meta.db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

async function insertIgnoringDuplicates(coll: Collections['items'], docs: ItemDoc[]): Promise<void> {
  if (docs.length > 0) await ignoreDuplicates(coll.insertMany(docs, { ordered: false }));
}

/**
 * Settles a write whose only failures are duplicate keys: the document is there already. Two
 * relays upserting one id at once can meet this (MongoDB retries such upserts itself, FerretDB
 * does not).
 */
async function ignoreDuplicates(write: Promise<unknown>): Promise<void> {
  try {
    await write;
  } catch (err) {
    if (isDuplicateKey(err)) return;
    if (err instanceof MongoBulkWriteError) {
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.length > 0 && errors.every((e) => e.code === 11000)) return;
    }
    throw err;
  }
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}

function toObjectId(id: string): ObjectId | null {
  return /^[0-9a-f]{24}$/i.test(id) ? new ObjectId(id) : null;
}

function toRequest(d: RequestDoc): RequestRecord {
  return {
    id: d._id,
    // Requests being removed (aborted or deleted) are, like ingesting ones, invisible.
    status: d.status === 'aborting' || d.status === 'deleting' ? 'ingesting' : d.status, tenantId: d.tenantId,
    webhookUrl: d.webhookUrl ?? null, webhookSecret: d.webhookSecret ?? null, options: d.options ?? null,
    productCount: d.productCount, total: d.total, done: d.done, failed: d.failed,
    bytesIn: d.bytesIn ?? 0, bytesOut: d.bytesOut ?? 0, run: d.run ?? 0,
    createdAt: d.createdAt, updatedAt: d.updatedAt, version: d.version ?? 0,
  };
}

function toItem(d: ItemDoc): ItemRecord {
  return {
    id: d._id.toHexString(), requestId: d.requestId, url: d.url, state: d.state,
    attempts: d.attempts, claims: d.claims ?? 0, leaseOwner: d.leaseOwner ?? null, leaseUntil: d.leaseUntil ?? null,
    outputKey: d.outputKey ?? null, error: d.error ?? null, outcome: d.outcome ?? null, bytesIn: d.bytesIn ?? null, bytesOut: d.bytesOut ?? null,
  };
}

function toSubscription(d: SubscriptionDoc): Subscription {
  return {
    id: d._id, tenantId: d.tenantId, url: d.url, events: d.events, secret: d.secret,
    previousSecret: d.previousSecret ?? null, previousSecretExpiresAt: d.previousSecretExpiresAt ?? null,
    createdAt: d.createdAt,
  };
}

function toDelivery(d: DeliveryDoc): DeliveryRecord {
  return {
    id: d._id, eventId: d.eventId, subscriptionId: d.subscriptionId ?? null, requestId: d.requestId,
    url: d.url, eventType: d.eventType, payload: d.payload, state: d.state, attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt, leaseOwner: d.leaseOwner ?? null, leaseUntil: d.leaseUntil ?? null,
    lastError: d.lastError ?? null, createdAt: d.createdAt, updatedAt: d.updatedAt,
  };
}

function toAttempt(d: AttemptDoc): DeliveryAttempt {
  return {
    deliveryId: d.deliveryId, attempt: d.attempt, at: d.at,
    statusCode: d.statusCode ?? null, error: d.error ?? null, durationMs: d.durationMs,
  };
}

function toKey(d: KeyDoc): ApiKeyRecord {
  return { id: d._id, name: d.name, hash: d.hash, createdAt: d.createdAt, revokedAt: d.revokedAt ?? null };
}
