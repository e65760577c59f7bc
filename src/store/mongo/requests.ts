// Requests in the MongoDB store: ingest (begin → appendBatch* → commit | abort) and reads.
import { ObjectId } from 'mongodb';
import type { RequestsPart } from '../compose.js';
import { HIDDEN, ITEM, newestFirstCursor, pageOf, REQUEST, REQUEST_ACTIONS, serialCursor, UNCOMMITTED_STATUSES } from '../lifecycle.js';
import { idempotencyId, type Collections, type ItemDoc } from './schema.js';
import { InFlightLimitError, UPLOAD_LOG_KEEP_MS, type BeginInput, type BeginResult, type CommitExtra, type ItemRecord, type Page, type ProductRecord, type RequestRecord } from '../types.js';
import { CHUNK, ignoreDuplicates, insertIgnoringDuplicates, isDuplicateKey, oneOf, OPEN, takeLock, VISIBLE } from './context.js';

/** A tenant's commits take turns: how long one may hold the turn (a crash frees it after this), and wait for it. */
const COMMIT_LOCK_TTL_MS = 30_000;
const COMMIT_LOCK_WAIT_MS = 60_000;
import { toItem, toRequest } from './mappers.js';

export class MongoRequests implements RequestsPart {
  readonly #c: Collections;

  constructor(c: Collections) {
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
      _id: input.id, status: REQUEST.ingesting, tenantId: input.tenantId, webhookUrl: input.webhookUrl, webhookSecret: input.webhookSecret, fileName: input.fileName ?? null,
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
        _id: new ObjectId(), requestId, url, state: ITEM.pending, attempts: 0, claims: 0,
        leaseOwner: null, leaseUntil: null, outputKey: null, renditionKeys: null, error: null, outcome: null, bytesIn: null, bytesOut: null, note: null,
        quality: null, score: null, createdAt: now,
      }));
      // URLs already in the request (an earlier batch) are stored once.
      await insertIgnoringDuplicates(this.#c.items, docs);
    }
  }

  async commitRequest(requestId: string, now: number, extra: CommitExtra = {}): Promise<RequestRecord> {
    const limit = extra.maxImagesInFlight;
    if (limit === undefined) return this.#commit(requestId, now, extra);
    // Without transactions, a tenant's commits take turns under a lock: between the count and
    // the commit no other upload of the tenant can join the queue (finishing images only shrink it).
    const doc = await this.#c.requests.findOne({ _id: requestId, status: REQUEST.ingesting }, { projection: { tenantId: 1 } });
    if (!doc) throw new Error(`request ${requestId} is not being ingested`);
    const lock = `commit:${doc.tenantId}`;
    const deadline = Date.now() + COMMIT_LOCK_WAIT_MS;
    while (!(await takeLock(this.#c.locks, lock, requestId, COMMIT_LOCK_TTL_MS, Date.now()))) {
      if (Date.now() > deadline) throw new Error(`could not take ${lock} within ${COMMIT_LOCK_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
    try {
      const [images, open] = await Promise.all([
        this.#c.items.countDocuments({ requestId }),
        this.#c.requests.find({ tenantId: doc.tenantId, status: { $in: OPEN } }, { projection: { total: 1, done: 1, failed: 1 } }).toArray(),
      ]);
      const inFlight = open.reduce((n, r) => n + r.total - r.done - r.failed, 0);
      if (images + inFlight > limit) throw new InFlightLimitError(images, inFlight, limit);
      return await this.#commit(requestId, now, extra);
    } finally {
      await this.#c.locks.deleteOne({ _id: lock, owner: requestId });
    }
  }

  async #commit(requestId: string, now: number, extra: CommitExtra): Promise<RequestRecord> {
    const { webhook, fingerprint, options } = extra;
    // Before the request is visible: a replay never sees a committed request without it.
    if (fingerprint) await this.#c.idempotency.updateOne({ requestId }, { $set: { fingerprint } });
    const [productCount, total] = await Promise.all([
      this.#c.products.countDocuments({ requestId }),
      this.#c.items.countDocuments({ requestId }),
    ]);
    const request = await this.#c.requests.findOneAndUpdate(
      { _id: requestId, status: oneOf(REQUEST_ACTIONS.commit.from) },
      { $set: {
        status: REQUEST_ACTIONS.commit.to, productCount, total, updatedAt: now,
        ...(webhook ? { webhookUrl: webhook.url, webhookSecret: webhook.secret } : {}), ...(options ? { options } : {}),
      } },
      { returnDocument: 'after' },
    );
    if (!request) throw new Error(`request ${requestId} is not being ingested`);
    // After the commit: a crash in between loses one entry of the quota log, never an upload.
    await ignoreDuplicates(this.#c.uploads.insertOne({ _id: requestId, tenantId: request.tenantId, at: now }));
    await this.#c.uploads.deleteMany({ tenantId: request.tenantId, at: { $lt: now - UPLOAD_LOG_KEEP_MS } });
    return toRequest(request);
  }

  async abortRequest(requestId: string): Promise<void> {
    // Only an ingesting request is removed; the mark also stops a concurrent commit.
    const marked = await this.#c.requests.updateOne(
      { _id: requestId, status: oneOf(UNCOMMITTED_STATUSES) },
      { $set: { status: HIDDEN.aborting } },
    );
    if (marked.matchedCount === 0 && (await this.#c.requests.countDocuments({ _id: requestId })) > 0) return;
    await this.#removeIngesting(requestId);
  }

  async #removeIngesting(requestId: string): Promise<void> {
    await this.#c.items.deleteMany({ requestId });
    await this.#c.products.deleteMany({ requestId });
    await this.#c.idempotency.deleteMany({ requestId });
    await this.#c.requests.deleteOne({ _id: requestId, status: HIDDEN.aborting });
  }

  async cleanupIngesting(before: number): Promise<number> {
    let removed = 0;
    const stale = this.#c.requests.find(
      { status: oneOf(UNCOMMITTED_STATUSES), createdAt: { $lt: before } },
      { projection: { _id: 1 } },
    );
    for await (const { _id } of stale) {
      const marked = await this.#c.requests.updateOne(
        { _id, status: oneOf(UNCOMMITTED_STATUSES), createdAt: { $lt: before } },
        { $set: { status: HIDDEN.aborting } },
      );
      if (marked.matchedCount === 0) continue; // committed meanwhile
      await this.#removeIngesting(_id);
      removed++;
    }
    return removed;
  }

  // ---- reads ----------------------------------------------------------------------------

  async getRequest(id: string): Promise<RequestRecord | null> {
    const doc = await this.#c.requests.findOne({ _id: id, status: VISIBLE }, { projection: { outbox: 0, settling: 0 } });
    return doc ? toRequest(doc) : null;
  }

  async getRequestVersion(id: string): Promise<{ tenantId: string; version: number } | null> {
    const doc = await this.#c.requests.findOne({ _id: id, status: VISIBLE }, { projection: { tenantId: 1, version: 1 } });
    return doc ? { tenantId: doc.tenantId, version: doc.version ?? 0 } : null;
  }

  async listRequests(opts: { tenantId: string | null; limit: number; cursor?: string | null }): Promise<Page<RequestRecord>> {
    const before = newestFirstCursor.decode(opts.cursor);
    const filter: Record<string, unknown> = { status: VISIBLE };
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
}
