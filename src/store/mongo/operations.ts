// Operating on requests in the MongoDB store: cancel, retry, delete, retention, quotas, locks.
import type { OperationsPart } from '../compose.js';
import { isFinal, isOpen, VISIBLE_STATUSES } from '../lifecycle.js';
import type { Collections } from '../mongo-schema.js';
import type { RequestRecord } from '../types.js';
import { CHUNK, OPEN, takeLock } from './context.js';
import { toRequest } from './mappers.js';
import type { MongoOutbox } from './outbox.js';

export class MongoOperations implements OperationsPart {
  readonly #c: Collections;
  readonly #outbox: MongoOutbox;

  constructor(c: Collections, outbox: MongoOutbox) {
    this.#c = c;
    this.#outbox = outbox;
  }

  async cancelRequest(id: string, now: number): Promise<'cancelled' | 'final' | null> {
    const doc = await this.#c.requests.findOne({ _id: id, status: { $in: [...VISIBLE_STATUSES] } }, { projection: { outbox: 0, settling: 0 } });
    if (!doc) return null;
    if (isOpen(doc.status as RequestRecord['status']) && (await this.#outbox.transition(toRequest(doc), OPEN, 'cancelled', now))) return 'cancelled';
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
    await finishRetry(this.#c, id);
    return { retried: failed };
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
    const recent = await this.#c.uploads.find({ tenantId, at: { $gte: since } }, { projection: { at: 1 } }).sort({ at: 1 }).toArray();
    return {
      inFlight: open.reduce((n, r) => n + r.total - r.done - r.failed, 0),
      uploadsSince: recent.length,
      oldestUploadSince: recent[0]?.at ?? null,
    };
  }

  async tryLock(name: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
    return takeLock(this.#c.locks, name, owner, ttlMs, now);
  }
}

/** Puts a retried request's failed items back in the queue; also run for a retry a crash interrupted. */
export async function finishRetry(c: Collections, id: string): Promise<void> {
  await c.items.updateMany(
    { requestId: id, state: 'failed' },
    { $set: { state: 'pending', attempts: 0, claims: 0, error: null, leaseOwner: null, leaseUntil: null } },
  );
  // Nothing of the new run has finished yet, so no item is failed now.
  await c.requests.updateOne({ _id: id, retrying: true }, { $set: { failed: 0 }, $unset: { retrying: '' }, $inc: { version: 1 } });
}
