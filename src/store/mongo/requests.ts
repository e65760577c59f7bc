// Requests in the MongoDB store: ingest (begin → appendBatch* → commit | abort) and reads.
import { ObjectId } from 'mongodb';
import type { RequestsPart } from '../compose.js';
import { newestFirstCursor, pageOf, serialCursor, VISIBLE_STATUSES } from '../lifecycle.js';
import { idempotencyId, type Collections, type ItemDoc } from '../mongo-schema.js';
import type { BeginInput, BeginResult, CommitExtra, ItemRecord, Page, ProductRecord, RequestRecord } from '../types.js';
import { CHUNK, insertIgnoringDuplicates, isDuplicateKey } from './context.js';
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
        leaseOwner: null, leaseUntil: null, outputKey: null, error: null, outcome: null, bytesIn: null, bytesOut: null, note: null, createdAt: now,
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
}
