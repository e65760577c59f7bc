// The MongoDB store: the backend for running on many machines. Every instance (API and
// runners) coordinates only through these collections.
//
// Exactly-once comes from conditional single-document updates, never from a lock:
// - claims are findOneAndUpdate on (state, lease expiry), one document at a time;
// - a request transition (received → processing, → completed|failed) is a conditional update
//   on its status, and only the caller whose update matched writes the event. Event ids are
//   derived from (request, transition) and deliveries from (event, receiver), so writing them
//   again is a no-op;
// - progress counters move with $inc only.
// Where the deployment supports transactions (replica set, sharded cluster), the transition
// and its event (and an item's completion with its counters) commit together. Without them,
// the transition also sets a marker on the request (`pendingEvents`) that is cleared once
// the event is written, and a throttled repair pass finishes what a crash interrupted.
//
// Ingest never uses a transaction (an upload can last minutes): a request stays 'ingesting'
// with 'staged' items that readers and runners ignore; commit makes the request visible, then
// releases its items; abort and cleanupIngesting remove everything, and cleanupIngesting also
// finishes a commit that a crash interrupted.
import {
  MongoBulkWriteError, MongoClient, MongoServerError, ObjectId,
  type AnyBulkWriteOperation, type ClientSession, type Collection, type Db, type Filter,
} from 'mongodb';
import { decodeCursor, encodeCursor } from './cursor.js';
import type {
  AttemptOutcome, CompleteResult, DeliveryAttempt, DeliveryRecord, DeliveryState, EventPayloadBuilder, EventRecord,
  EventType, ItemOutcome, ItemRecord, ItemState, Page, ProductRecord, RequestRecord, RequestStatus, Store, Subscription,
} from './types.js';

/** Internal request states: 'aborting' is an ingesting request being removed. */
type RequestDocStatus = RequestStatus | 'aborting';
/** Internal item states: 'staged' items belong to a request not yet committed. */
type ItemDocState = ItemState | 'staged';

type RequestDoc = Omit<Doc<RequestRecord>, 'status' | 'idempotencyKey' | 'version'> & {
  status: RequestDocStatus;
  /** Absent when the request has none (the unique index is partial on strings). */
  idempotencyKey?: string;
  /** See RequestRecord.version; absent on documents written before it existed. */
  version?: number;
  /** Transitions whose event is not written yet (deployments without transactions). */
  pendingEvents?: Array<{ type: EventType; at: number }>;
};

/** A record as stored: its `id` becomes the document's `_id`. */
type Doc<T extends { id: string }, Id = string> = Omit<T, 'id'> & { _id: Id };

type ProductDoc = ProductRecord & { _id?: ObjectId; requestId: string };
type ItemDoc = Omit<Doc<ItemRecord, ObjectId>, 'state'> & { state: ItemDocState; createdAt: number };
type SubscriptionDoc = Doc<Subscription>;
/** `order` breaks ties between events of one millisecond: started before the final one. */
type EventDoc = Doc<EventRecord> & { order: number };
type DeliveryDoc = Doc<DeliveryRecord>;
type AttemptDoc = DeliveryAttempt;

const COMMITTED: RequestStatus[] = ['received', 'processing', 'completed', 'failed'];
const UNFINISHED_ITEM: ItemDocState[] = ['staged', 'pending', 'running'];
/** Documents per insertMany / $in list. */
const CHUNK = 1000;
/** The repair pass runs at most this often per store instance (wall clock). */
const REPAIR_EVERY_MS = 60_000;
/** A request untouched for this long (caller's clock) with unfinished bookkeeping is repaired. */
const REPAIR_GRACE_MS = 5 * 60_000;

export interface MongoStoreOptions {
  /** How long start-up may take to reach the deployment before it fails. */
  connectTimeoutMs: number;
}

/**
 * Connects, checks the deployment answers, creates the indexes. Rejects within about
 * connectTimeoutMs with one line naming the host (never the credentials) and the reason.
 */
export async function openMongoStore(uri: string, dbName: string, opts: MongoStoreOptions): Promise<MongoStore> {
  const timeoutMs = opts.connectTimeoutMs;
  const where = redactUri(uri);
  let client: MongoClient;
  try {
    client = new MongoClient(uri, {
      appName: 'image-csv-processor',
      serverSelectionTimeoutMS: timeoutMs,
      connectTimeoutMS: timeoutMs,
      retryWrites: true,
      retryReads: true,
    });
  } catch (err) {
    throw new Error(`invalid MongoDB URI ${where}: ${oneLine(err, uri)}`);
  }
  let timer: NodeJS.Timeout | undefined;
  let store: MongoStore;
  try {
    // The driver honours serverSelectionTimeoutMS; the timer is the backstop for anything
    // that could wait longer (an SRV lookup, a server that accepts and never answers).
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer after ${timeoutMs} ms`)), timeoutMs + 1_000);
    });
    const connected = (async () => {
      await client.connect();
      const db = client.db(dbName);
      const hello = await db.admin().command({ hello: 1 });
      return { db, hello };
    })();
    connected.catch(() => {}); // settled by the race below; avoid an unhandled rejection
    const { db, hello } = await Promise.race([connected, deadline]);
    const transactions = (typeof hello.setName === 'string' || hello.msg === 'isdbgrid') && hello.logicalSessionTimeoutMinutes != null;
    store = new MongoStore(client, db, transactions);
  } catch (err) {
    await client.close(true).catch(() => {});
    throw new Error(`cannot reach MongoDB at ${where} within ${timeoutMs} ms: ${oneLine(err, uri)}`);
  } finally {
    clearTimeout(timer);
  }
  try {
    await store.ensureIndexes();
  } catch (err) {
    await client.close(true).catch(() => {});
    throw new Error(`cannot prepare MongoDB database ${dbName} at ${where}: ${oneLine(err, uri)}`);
  }
  return store;
}

export class MongoStore implements Store {
  readonly backend = 'mongodb' as const;
  /** True when the deployment runs multi-document transactions (replica set or mongos). */
  readonly transactions: boolean;
  readonly #client: MongoClient;
  readonly #db: Db;
  readonly #requests: Collection<RequestDoc>;
  readonly #products: Collection<ProductDoc>;
  readonly #items: Collection<ItemDoc>;
  readonly #subscriptions: Collection<SubscriptionDoc>;
  readonly #events: Collection<EventDoc>;
  readonly #deliveries: Collection<DeliveryDoc>;
  readonly #attempts: Collection<AttemptDoc>;
  #lastRepair = 0;
  #repairing: Promise<void> | null = null;

  constructor(client: MongoClient, db: Db, transactions: boolean) {
    this.#client = client;
    this.#db = db;
    this.transactions = transactions;
    this.#requests = db.collection<RequestDoc>('requests');
    this.#products = db.collection<ProductDoc>('products');
    this.#items = db.collection<ItemDoc>('items');
    this.#subscriptions = db.collection<SubscriptionDoc>('subscriptions');
    this.#events = db.collection<EventDoc>('events');
    this.#deliveries = db.collection<DeliveryDoc>('deliveries');
    this.#attempts = db.collection<AttemptDoc>('delivery_attempts');
  }

  /** Creates every index the queries use; a no-op when they exist. */
  async ensureIndexes(): Promise<void> {
    await Promise.all([
      this.#requests.createIndexes([
        { key: { idempotencyKey: 1 }, name: 'idempotency_key', unique: true, partialFilterExpression: { idempotencyKey: { $type: 'string' } } },
        { key: { status: 1, createdAt: 1 }, name: 'status_created' },
        { key: { status: 1, updatedAt: 1 }, name: 'status_updated' },
        { key: { 'pendingEvents.at': 1 }, name: 'pending_events', sparse: true },
      ]),
      this.#products.createIndexes([
        { key: { requestId: 1, serial: 1 }, name: 'request_serial', unique: true },
      ]),
      this.#items.createIndexes([
        { key: { requestId: 1, url: 1 }, name: 'request_url', unique: true },
        { key: { requestId: 1, state: 1 }, name: 'request_state' },
        { key: { state: 1, _id: 1 }, name: 'state_id' },
        { key: { state: 1, leaseUntil: 1 }, name: 'state_lease' },
        { key: { leaseOwner: 1 }, name: 'running_owner', partialFilterExpression: { state: 'running' } },
      ]),
      this.#events.createIndexes([
        { key: { requestId: 1, createdAt: 1, order: 1 }, name: 'request_created' },
      ]),
      this.#deliveries.createIndexes([
        { key: { state: 1, nextAttemptAt: 1 }, name: 'state_due' },
        { key: { subscriptionId: 1, createdAt: -1, _id: -1 }, name: 'subscription_created' },
      ]),
      this.#attempts.createIndexes([
        { key: { deliveryId: 1, attempt: 1 }, name: 'delivery_attempt', unique: true },
      ]),
    ]);
  }

  /** Runs fn in a transaction where the deployment has them, else directly (session undefined). */
  async #atomically<T>(fn: (session: ClientSession | undefined) => Promise<T>): Promise<T> {
    if (!this.transactions) return fn(undefined);
    const session = this.#client.startSession();
    try {
      return await session.withTransaction((s) => fn(s), {
        readPreference: 'primary', readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' },
      });
    } finally {
      await session.endSession();
    }
  }

  // ---- ingest ---------------------------------------------------------------------------

  async beginRequest(input: Parameters<Store['beginRequest']>[0]) {
    const doc: RequestDoc = {
      _id: input.id, status: 'ingesting', webhookUrl: input.webhookUrl, webhookSecret: input.webhookSecret,
      productCount: 0, total: 0, done: 0, failed: 0, createdAt: input.now, updatedAt: input.now, version: 0,
    };
    if (input.idempotencyKey !== null) doc.idempotencyKey = input.idempotencyKey;
    // A key can be freed (abort) or taken (another instance) between our read and write.
    for (let round = 0; ; round++) {
      if (input.idempotencyKey !== null) {
        const existing = await this.#requests.findOne({ idempotencyKey: input.idempotencyKey });
        if (existing) return { created: false as const, existing: toRequest(existing) };
      }
      try {
        await this.#requests.insertOne(doc);
        return { created: true as const };
      } catch (err) {
        if (!isDuplicateKey(err) || input.idempotencyKey === null || round >= 5) throw err;
      }
    }
  }

  async appendBatch(requestId: string, products: ProductRecord[]): Promise<void> {
    if (products.length === 0) return;
    const now = Date.now();
    for (let i = 0; i < products.length; i += CHUNK) {
      await this.#products.insertMany(
        products.slice(i, i + CHUNK).map((p) => ({ requestId, serial: p.serial, name: p.name, inputUrls: p.inputUrls })),
        { ordered: false },
      );
    }
    const urls = [...new Set(products.flatMap((p) => p.inputUrls))];
    for (let i = 0; i < urls.length; i += CHUNK) {
      const docs: ItemDoc[] = urls.slice(i, i + CHUNK).map((url) => ({
        _id: new ObjectId(), requestId, url, state: 'staged', attempts: 0,
        leaseOwner: null, leaseUntil: null, outputKey: null, error: null, createdAt: now,
      }));
      // URLs already in the request (an earlier batch) are stored once.
      await insertIgnoringDuplicates(this.#items, docs);
    }
  }

  async commitRequest(requestId: string, now: number, webhook?: { url: string; secret: string }): Promise<RequestRecord> {
    const [productCount, total] = await Promise.all([
      this.#products.countDocuments({ requestId }),
      this.#items.countDocuments({ requestId }),
    ]);
    // Visible first, then its items runnable: a runner never sees an item of a request that
    // is not committed. A crash in between is finished by cleanupIngesting.
    const request = await this.#requests.findOneAndUpdate(
      { _id: requestId, status: 'ingesting' },
      { $set: { status: 'received', productCount, total, updatedAt: now, ...(webhook ? { webhookUrl: webhook.url, webhookSecret: webhook.secret } : {}) } },
      { returnDocument: 'after' },
    );
    if (!request) throw new Error(`request ${requestId} is not being ingested`);
    await this.#items.updateMany({ requestId, state: 'staged' }, { $set: { state: 'pending' } });
    return toRequest(request);
  }

  async abortRequest(requestId: string): Promise<void> {
    // Only an ingesting request is removed; the mark also stops a concurrent commit.
    const marked = await this.#requests.updateOne(
      { _id: requestId, status: { $in: ['ingesting', 'aborting'] } },
      { $set: { status: 'aborting' } },
    );
    if (marked.matchedCount === 0 && (await this.#requests.countDocuments({ _id: requestId })) > 0) return;
    await this.#removeRequestData(requestId);
  }

  async #removeRequestData(requestId: string): Promise<void> {
    await this.#items.deleteMany({ requestId });
    await this.#products.deleteMany({ requestId });
    await this.#requests.deleteOne({ _id: requestId, status: 'aborting' });
  }

  async cleanupIngesting(before: number): Promise<number> {
    let removed = 0;
    const stale = this.#requests.find(
      { status: { $in: ['ingesting', 'aborting'] }, createdAt: { $lt: before } },
      { projection: { _id: 1 } },
    );
    for await (const { _id } of stale) {
      const marked = await this.#requests.updateOne(
        { _id, status: { $in: ['ingesting', 'aborting'] }, createdAt: { $lt: before } },
        { $set: { status: 'aborting' } },
      );
      if (marked.matchedCount === 0) continue; // committed meanwhile
      await this.#removeRequestData(_id);
      removed++;
    }
    // Staged items left by a crash: finish an interrupted commit, drop orphans of an abort.
    for (const requestId of await this.#items.distinct('requestId', { state: 'staged', createdAt: { $lt: before } })) {
      const request = await this.#requests.findOne({ _id: requestId }, { projection: { status: 1 } });
      if (request && (COMMITTED as string[]).includes(request.status)) {
        await this.#items.updateMany({ requestId, state: 'staged' }, { $set: { state: 'pending' } });
      } else if (!request) {
        await this.#items.deleteMany({ requestId });
        await this.#products.deleteMany({ requestId });
      }
    }
    return removed;
  }

  // ---- reads ----------------------------------------------------------------------------

  async getRequest(id: string): Promise<RequestRecord | null> {
    const doc = await this.#requests.findOne({ _id: id, status: { $in: COMMITTED } });
    return doc ? toRequest(doc) : null;
  }

  async listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>> {
    const decoded = opts.cursor ? Number(decodeCursor(opts.cursor)[0]) : 0;
    const after = Number.isFinite(decoded) ? decoded : 0;
    const docs = await this.#products
      .find({ requestId, serial: { $gt: after } }, { projection: { _id: 0, serial: 1, name: 1, inputUrls: 1 } })
      .sort({ serial: 1 })
      .limit(opts.limit + 1)
      .toArray();
    const items = docs.slice(0, opts.limit).map((d) => ({ serial: d.serial, name: d.name, inputUrls: d.inputUrls }));
    const last = items.at(-1);
    return { items, nextCursor: docs.length > opts.limit && last ? encodeCursor([last.serial]) : null };
  }

  async getItemsByUrl(requestId: string, urls: string[]): Promise<ItemRecord[]> {
    const out: ItemRecord[] = [];
    const unique = [...new Set(urls)];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const docs = await this.#items.find({ requestId, url: { $in: unique.slice(i, i + CHUNK) } }).toArray();
      out.push(...docs.map(toItem));
    }
    return out;
  }

  // ---- pipeline -------------------------------------------------------------------------

  async claimItems(input: { owner: string; limit: number; leaseMs: number; now: number; payload: EventPayloadBuilder }): Promise<ItemRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    await this.#maybeRepair(now, input.payload);
    const claimed: ItemDoc[] = [];
    const lease = { $set: { state: 'running' as const, leaseOwner: owner, leaseUntil: now + leaseMs }, $inc: { attempts: 1 } };
    // Expired leases first (their runner died), then pending items in arrival order.
    while (claimed.length < limit) {
      const doc = await this.#items.findOneAndUpdate(
        { state: 'running', leaseUntil: { $lt: now } }, lease, { sort: { leaseUntil: 1 }, returnDocument: 'after' },
      );
      if (!doc) break;
      claimed.push(doc);
    }
    while (claimed.length < limit) {
      const doc = await this.#items.findOneAndUpdate(
        { state: 'pending' }, lease, { sort: { _id: 1 }, returnDocument: 'after' },
      );
      if (!doc) break;
      claimed.push(doc);
    }
    const claimedRequests = [...new Set(claimed.map((i) => i.requestId))];
    if (claimedRequests.length) await this.#requests.updateMany({ _id: { $in: claimedRequests } }, { $inc: { version: 1 } });
    for (const requestId of claimedRequests) {
      await this.#atomically((session) =>
        this.#transition(requestId, ['received'], 'processing', 'processing.started', now, input.payload, session));
    }
    return claimed.map(toItem);
  }

  async renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    const ids = input.itemIds.flatMap((id) => toObjectId(id) ?? []);
    if (ids.length === 0) return [];
    const leaseUntil = input.now + input.leaseMs;
    await this.#items.updateMany({ _id: { $in: ids }, leaseOwner: input.owner, state: 'running' }, { $set: { leaseUntil } });
    const held = await this.#items
      .find({ _id: { $in: ids }, leaseOwner: input.owner, state: 'running', leaseUntil: { $gte: leaseUntil } }, { projection: { _id: 1 } })
      .toArray();
    return held.map((d) => d._id.toHexString());
  }

  async completeItem(input: { itemId: string; owner: string; outcome: ItemOutcome; now: number; payload: EventPayloadBuilder }): Promise<CompleteResult> {
    const { outcome, now } = input;
    const itemId = toObjectId(input.itemId);
    if (!itemId) return { applied: false };
    return this.#atomically(async (session): Promise<CompleteResult> => {
      const item = await this.#items.findOneAndUpdate(
        { _id: itemId, leaseOwner: input.owner, state: 'running' },
        { $set: {
          state: outcome.ok ? 'done' : 'failed', outputKey: outcome.ok ? outcome.outputKey : null,
          error: outcome.ok ? null : outcome.error, leaseOwner: null, leaseUntil: null,
        } },
        { session, projection: { requestId: 1 } },
      );
      if (!item) return { applied: false };
      const request = await this.#requests.findOneAndUpdate(
        { _id: item.requestId },
        { $inc: { done: outcome.ok ? 1 : 0, failed: outcome.ok ? 0 : 1, version: 1 }, $set: { updatedAt: now } },
        { session, returnDocument: 'after' },
      );
      if (!request || request.done + request.failed < request.total) return { applied: true };
      const finalStatus = request.done > 0 ? 'completed' : 'failed';
      const finished = await this.#transition(request._id, ['received', 'processing'], finalStatus, `processing.${finalStatus}`, now, input.payload, session);
      return finished ? { applied: true, finalStatus } : { applied: true };
    });
  }

  async releaseItems(owner: string): Promise<number> {
    const held = await this.#items.distinct('requestId', { leaseOwner: owner, state: 'running' });
    const res = await this.#items.updateMany({ leaseOwner: owner, state: 'running' }, [
      { $set: { state: 'pending', leaseOwner: null, leaseUntil: null, attempts: { $max: [{ $subtract: ['$attempts', 1] }, 0] } } },
    ]);
    if (held.length) await this.#requests.updateMany({ _id: { $in: held } }, { $inc: { version: 1 } });
    return res.modifiedCount;
  }

  async pendingStats(now: number) {
    const [pending, running, oldest] = await Promise.all([
      this.#items.countDocuments({ state: 'pending' }),
      this.#items.countDocuments({ state: 'running', leaseUntil: { $gte: now } }),
      this.#items.findOne({ state: 'pending' }, { sort: { _id: 1 }, projection: { createdAt: 1 } }),
    ]);
    return { pending, running, oldestPendingAt: oldest ? oldest.createdAt : null };
  }

  /**
   * Moves a request from one of `from` to `to` if it is still there, and writes the event.
   * Returns the request after the move, or null when another caller moved it first.
   */
  async #transition(
    requestId: string, from: RequestStatus[], to: RequestStatus, type: EventType, now: number,
    payload: EventPayloadBuilder, session: ClientSession | undefined,
  ): Promise<RequestRecord | null> {
    const update = session
      ? { $set: { status: to, updatedAt: now }, $inc: { version: 1 } }
      : { $set: { status: to, updatedAt: now }, $inc: { version: 1 }, $push: { pendingEvents: { type, at: now } } };
    const moved = await this.#requests.findOneAndUpdate(
      { _id: requestId, status: { $in: from } }, update, { session, returnDocument: 'after' },
    );
    if (!moved) return null;
    const request = toRequest(moved);
    await this.#writeEvent(type, request, now, payload, session);
    if (!session) await this.#requests.updateOne({ _id: requestId }, { $pull: { pendingEvents: { type } } });
    return request;
  }

  /** Writes a request's event and one delivery per interested receiver; idempotent. */
  async #writeEvent(type: EventType, request: RequestRecord, now: number, payload: EventPayloadBuilder, session: ClientSession | undefined) {
    const eventId = eventIdOf(request.id, type);
    let body = payload(type, request, eventId, now);
    const inserted = await this.#events.updateOne(
      { _id: eventId },
      { $setOnInsert: { requestId: request.id, type, payload: body, createdAt: now, order: type === 'processing.started' ? 0 : 1 } },
      { upsert: true, session },
    );
    let createdAt = now;
    if (inserted.upsertedCount === 0) {
      // Written before (a repair after a crash): deliveries carry the body as first written.
      const existing = await this.#events.findOne({ _id: eventId }, { session });
      if (existing) ({ payload: body, createdAt } = existing);
    }
    const receivers: Array<{ subscriptionId: string | null; url: string }> = [];
    for (const sub of await this.#subscriptions.find({ events: type }, { session, projection: { url: 1 } }).toArray()) {
      receivers.push({ subscriptionId: sub._id, url: sub.url });
    }
    if (request.webhookUrl) receivers.push({ subscriptionId: null, url: request.webhookUrl });
    if (receivers.length === 0) return;
    const ops: AnyBulkWriteOperation<DeliveryDoc>[] = receivers.map((r) => ({
      updateOne: {
        filter: { _id: `dlv_${eventId.slice(4)}_${r.subscriptionId ?? 'request'}` },
        update: { $setOnInsert: {
          eventId, subscriptionId: r.subscriptionId, requestId: request.id, url: r.url, eventType: type, payload: body,
          state: 'pending', attempts: 0, nextAttemptAt: createdAt, leaseOwner: null, leaseUntil: null, lastError: null,
          createdAt, updatedAt: createdAt,
        } },
        upsert: true,
      },
    }));
    await this.#deliveries.bulkWrite(ops, { ordered: false, session });
  }

  /** Finishes work a crash interrupted where there are no transactions; throttled. */
  async #maybeRepair(now: number, payload: EventPayloadBuilder): Promise<void> {
    if (this.#repairing || Date.now() - this.#lastRepair < REPAIR_EVERY_MS) return;
    this.#lastRepair = Date.now();
    // A failed pass is retried by the next one; it must not fail the claim that triggered it.
    this.#repairing = this.#repair(now, payload).catch(() => {}).finally(() => { this.#repairing = null; });
    await this.#repairing;
  }

  async #repair(now: number, payload: EventPayloadBuilder): Promise<void> {
    const quietSince = now - REPAIR_GRACE_MS;
    // 1. A transition happened but its event was not written.
    const marked = this.#requests.find({ 'pendingEvents.at': { $lt: quietSince } });
    for await (const doc of marked) {
      for (const { type, at } of doc.pendingEvents ?? []) {
        if (at >= quietSince) continue;
        const status: RequestStatus = type === 'processing.started' ? 'processing' : type === 'processing.completed' ? 'completed' : 'failed';
        // Dated when the transition happened, so events keep their order.
        await this.#writeEvent(type, { ...toRequest(doc), status }, at, payload, undefined);
        await this.#requests.updateOne({ _id: doc._id }, { $pull: { pendingEvents: { type } } });
      }
    }
    // 2. A commit left items staged; or every item is final but the request is not (an item's
    //    counters were not added, or the final transition did not run).
    const open = this.#requests.find({ status: { $in: ['received', 'processing'] }, total: { $gt: 0 }, updatedAt: { $lt: quietSince } });
    for await (const doc of open) {
      // A commit interrupted between making the request visible and releasing its items.
      if (doc.status === 'received') await this.#items.updateMany({ requestId: doc._id, state: 'staged' }, { $set: { state: 'pending' } });
      if (await this.#items.findOne({ requestId: doc._id, state: { $in: UNFINISHED_ITEM } }, { projection: { _id: 1 } })) continue;
      let { done, failed } = doc;
      if (done + failed < doc.total) {
        [done, failed] = await Promise.all([
          this.#items.countDocuments({ requestId: doc._id, state: 'done' }),
          this.#items.countDocuments({ requestId: doc._id, state: 'failed' }),
        ]);
        // Compare-and-set: a completion landing meanwhile wins and the next pass looks again.
        const fixed = await this.#requests.updateOne(
          { _id: doc._id, done: doc.done, failed: doc.failed },
          { $set: { done, failed, updatedAt: now }, $inc: { version: 1 } },
        );
        if (fixed.matchedCount === 0) continue;
      }
      if (done + failed < doc.total) continue;
      const finalStatus = done > 0 ? 'completed' : 'failed';
      await this.#atomically((session) =>
        this.#transition(doc._id, ['received', 'processing'], finalStatus, `processing.${finalStatus}`, now, payload, session));
    }
  }

  // ---- webhooks -------------------------------------------------------------------------

  async createSubscription(sub: Subscription): Promise<void> {
    await this.#subscriptions.insertOne({
      _id: sub.id, url: sub.url, events: sub.events, secret: sub.secret,
      previousSecret: sub.previousSecret, previousSecretExpiresAt: sub.previousSecretExpiresAt, createdAt: sub.createdAt,
    });
  }

  async listSubscriptions(): Promise<Subscription[]> {
    return (await this.#subscriptions.find({}).sort({ createdAt: 1, _id: 1 }).toArray()).map(toSubscription);
  }

  async getSubscription(id: string): Promise<Subscription | null> {
    const doc = await this.#subscriptions.findOne({ _id: id });
    return doc ? toSubscription(doc) : null;
  }

  async deleteSubscription(id: string): Promise<boolean> {
    const res = await this.#subscriptions.deleteOne({ _id: id });
    // Undelivered messages to a removed subscription have nobody to go to.
    await this.#deliveries.updateMany(
      { subscriptionId: id, state: 'pending' },
      { $set: { state: 'failed', lastError: 'subscription deleted' } },
    );
    return res.deletedCount > 0;
  }

  async rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }): Promise<Subscription | null> {
    const doc = await this.#subscriptions.findOneAndUpdate(
      { _id: input.id },
      [{ $set: {
        previousSecret: '$secret',
        previousSecretExpiresAt: { $literal: input.previousSecretExpiresAt },
        secret: { $literal: input.newSecret },
      } }],
      { returnDocument: 'after' },
    );
    return doc ? toSubscription(doc) : null;
  }

  async claimDeliveries(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<DeliveryRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    const claimed: DeliveryRecord[] = [];
    while (claimed.length < limit) {
      const doc = await this.#deliveries.findOneAndUpdate(
        { state: 'pending', nextAttemptAt: { $lte: now }, $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }] },
        { $set: { leaseOwner: owner, leaseUntil: now + leaseMs, updatedAt: now } },
        { sort: { nextAttemptAt: 1 }, returnDocument: 'after' },
      );
      if (!doc) break;
      claimed.push(toDelivery(doc));
    }
    return claimed;
  }

  async recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean> {
    const { attempt, outcome, now } = input;
    const state: DeliveryState = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'failed' ? 'failed' : 'pending';
    return this.#atomically(async (session) => {
      const res = await this.#deliveries.updateOne(
        { _id: attempt.deliveryId, leaseOwner: input.owner, state: 'pending' },
        {
          $set: {
            state, nextAttemptAt: outcome.kind === 'retry' ? outcome.nextAttemptAt : now, lastError: describeAttempt(attempt),
            leaseOwner: null, leaseUntil: null, updatedAt: now,
          },
          $inc: { attempts: 1 },
        },
        { session },
      );
      if (res.matchedCount === 0) return false;
      await this.#attempts.replaceOne(
        { deliveryId: attempt.deliveryId, attempt: attempt.attempt },
        {
          deliveryId: attempt.deliveryId, attempt: attempt.attempt, at: attempt.at, statusCode: attempt.statusCode,
          error: attempt.error, durationMs: Math.round(attempt.durationMs),
        },
        { upsert: true, session },
      );
      return true;
    });
  }

  async listDeliveries(subscriptionId: string, opts: { limit: number; cursor?: string | null }) {
    const [rawAt, rawId] = opts.cursor ? decodeCursor(opts.cursor) : [];
    const filter: Filter<DeliveryDoc> = { subscriptionId };
    // A cursor that is not one of ours starts from the newest, as listProducts does.
    if (typeof rawAt === 'number' && Number.isFinite(rawAt)) {
      const beforeAt = rawAt;
      const beforeId = String(rawId ?? '');
      filter.$or = [{ createdAt: { $lt: beforeAt } }, { createdAt: beforeAt, _id: { $lt: beforeId } }];
    }
    const docs = await this.#deliveries.find(filter).sort({ createdAt: -1, _id: -1 }).limit(opts.limit + 1).toArray();
    const page = docs.slice(0, opts.limit).map(toDelivery);
    const attempts = page.length === 0 ? [] : (await this.#attempts
      .find({ deliveryId: { $in: page.map((d) => d.id) } }, { projection: { _id: 0 } })
      .sort({ attempt: 1 })
      .toArray()).map(toAttempt);
    const last = page.at(-1);
    return {
      items: page.map((d) => ({ ...d, attemptLog: attempts.filter((a) => a.deliveryId === d.id) })),
      nextCursor: docs.length > opts.limit && last ? encodeCursor([last.createdAt, last.id]) : null,
    };
  }

  async retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }): Promise<DeliveryRecord | null> {
    // A pending delivery a dispatcher holds (it may be sending right now) keeps its lease:
    // freeing it would let a second dispatcher send it at the same time.
    const doc = await this.#deliveries.findOneAndUpdate(
      { _id: input.deliveryId, subscriptionId: input.subscriptionId, $nor: [{ state: 'pending', leaseUntil: { $gte: input.now } }] },
      { $set: { state: 'pending', nextAttemptAt: input.now, leaseOwner: null, leaseUntil: null, updatedAt: input.now } },
      { returnDocument: 'after' },
    );
    if (doc) return toDelivery(doc);
    const held = await this.#deliveries.findOne({ _id: input.deliveryId, subscriptionId: input.subscriptionId });
    return held ? toDelivery(held) : null;
  }

  async listEvents(requestId: string): Promise<EventRecord[]> {
    const docs = await this.#events.find({ requestId }).sort({ createdAt: 1, order: 1 }).toArray();
    return docs.map((d) => ({ id: d._id, requestId: d.requestId, type: d.type, payload: d.payload, createdAt: d.createdAt }));
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async ping(): Promise<void> {
    await this.#db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.#repairing?.catch(() => {});
    await this.#client.close();
  }
}

/** One event per (request, transition): the id itself makes a second write a no-op. */
function eventIdOf(requestId: string, type: EventType): string {
  return `evt_${requestId}_${type.slice('processing.'.length)}`;
}

async function insertIgnoringDuplicates(coll: Collection<ItemDoc>, docs: ItemDoc[]): Promise<void> {
  if (docs.length === 0) return;
  try {
    await coll.insertMany(docs, { ordered: false });
  } catch (err) {
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

/** The URI without credentials or options, for messages: mongodb://host:port/db. */
export function redactUri(uri: string): string {
  const m = /^([a-z+]+:\/\/)([^/?#]*)([^?#]*)/i.exec(uri.trim());
  if (!m) return '(unparseable URI)';
  const hosts = m[2]!.slice(m[2]!.lastIndexOf('@') + 1);
  return `${m[1]}${hosts}${m[3] === '/' ? '' : m[3]}`;
}

/** First line of an error's message, with anything that looks like the URI's credentials removed. */
function oneLine(err: unknown, uri: string): string {
  let text = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim() || 'unknown error';
  const userinfo = /^[a-z+]+:\/\/([^/?#]*)@/i.exec(uri.trim())?.[1];
  if (userinfo) {
    for (const part of [userinfo, ...userinfo.split(':')]) {
      if (part.length > 0) text = text.split(part).join('***');
      try {
        const decoded = decodeURIComponent(part);
        if (decoded.length > 0) text = text.split(decoded).join('***');
      } catch { /* not percent-encoded */ }
    }
  }
  return text.replace(/(mongodb(?:\+srv)?:\/\/)[^@\s/]*@/gi, '$1***@');
}

function describeAttempt(a: DeliveryAttempt): string | null {
  if (a.error) return a.error;
  if (a.statusCode !== null && (a.statusCode < 200 || a.statusCode >= 300)) return `HTTP ${a.statusCode}`;
  return null;
}

function toRequest(d: RequestDoc): RequestRecord {
  return {
    id: d._id, status: d.status === 'aborting' ? 'ingesting' : d.status,
    idempotencyKey: d.idempotencyKey ?? null, webhookUrl: d.webhookUrl ?? null, webhookSecret: d.webhookSecret ?? null,
    productCount: d.productCount, total: d.total, done: d.done, failed: d.failed,
    createdAt: d.createdAt, updatedAt: d.updatedAt, version: d.version ?? 0,
  };
}

function toItem(d: ItemDoc): ItemRecord {
  return {
    id: d._id.toHexString(), requestId: d.requestId, url: d.url,
    // A staged item of a request whose commit is finishing is, for readers, waiting.
    state: d.state === 'staged' ? 'pending' : d.state,
    attempts: d.attempts, leaseOwner: d.leaseOwner ?? null, leaseUntil: d.leaseUntil ?? null,
    outputKey: d.outputKey ?? null, error: d.error ?? null,
  };
}

function toSubscription(d: SubscriptionDoc): Subscription {
  return {
    id: d._id, url: d.url, events: d.events, secret: d.secret,
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
