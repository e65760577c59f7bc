// Operating on requests in the MongoDB store: cancel, retry, delete, retention, quotas, locks.
import type { OperationsPart } from '../compose.js';
import { HIDDEN, ITEM_ACTIONS, may, REQUEST_ACTIONS, RETRY } from '../lifecycle.js';
import type { Collections } from './schema.js';
import { CHUNK, isDuplicateKey, oneOf, OPEN, takeLock, VISIBLE } from './context.js';
import { toRequest } from './mappers.js';
import type { MongoOutbox } from './outbox.js';

export class MongoOperations implements OperationsPart {
  readonly #c: Collections;
  readonly #outbox: MongoOutbox;

  constructor(c: Collections, outbox: MongoOutbox) {
    this.#c = c;
    this.#outbox = outbox;
  }

  async cancelRequest(id: string, now: number) {
    const doc = await this.#c.requests.findOne({ _id: id, status: VISIBLE }, { projection: { outbox: 0, settling: 0 } });
    if (!doc) return null;
    const cancel = REQUEST_ACTIONS.cancel;
    if (may(cancel, doc.status) && (await this.#outbox.transition(toRequest(doc), cancel.from, cancel.to, now))) return cancel.to;
    return 'final';
  }

  async retryRequest(id: string, now: number) {
    const { requests, items } = this.#c;
    const doc = await requests.findOne({ _id: id, status: VISIBLE }, { projection: { outbox: 0, settling: 0 } });
    if (!doc) return null;
    if (!may(REQUEST_ACTIONS.retry, doc.status)) return 'not-final' as const;
    // Counted while the request is final, so no runner changes them before the reopen below.
    const failed = await items.countDocuments({ requestId: id, state: oneOf(ITEM_ACTIONS.retry.from) });
    if (failed === 0) return 'none-failed' as const;
    // Reopen first, marked, so a crash before the items are reset is finished by the next claim.
    const moved = await requests.updateOne(
      { _id: id, status: doc.status, run: doc.run },
      { $set: { status: REQUEST_ACTIONS.retry.to, retrying: true, updatedAt: now }, $inc: { run: 1, version: 1, failed: RETRY.failedDelta(failed) } },
    );
    if (moved.modifiedCount === 0) return 'not-final' as const;
    await finishRetry(this.#c, id);
    return { retried: failed };
  }

  async deleteRequest(id: string, _now: number): Promise<string[] | null> {
    // Invisible (and no longer claimable) at once; the data goes next, and a crash in between
    // is finished by purgeDeleting().
    const marked = await this.#c.requests.updateOne({ _id: id, status: oneOf(REQUEST_ACTIONS.delete.from) }, { $set: { status: HIDDEN.deleting } });
    if (marked.matchedCount === 0) return null;
    return this.#purge(id);
  }

  async #purge(id: string): Promise<string[]> {
    const c = this.#c;
    const strings = (list: unknown[]) => list.filter((k): k is string => typeof k === 'string');
    const keys = [...new Set([
      ...strings(await c.items.distinct('outputKey', { requestId: id })),
      ...strings(await c.items.distinct('renditionOutputKeys', { requestId: id })),
    ])];
    const deliveryIds = (await c.deliveries.find({ requestId: id }, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
    for (let i = 0; i < deliveryIds.length; i += CHUNK) await c.attempts.deleteMany({ deliveryId: { $in: deliveryIds.slice(i, i + CHUNK) } });
    await c.deliveries.deleteMany({ requestId: id });
    await c.events.deleteMany({ requestId: id });
    await c.items.deleteMany({ requestId: id });
    await c.products.deleteMany({ requestId: id });
    await c.idempotency.deleteMany({ requestId: id });
    await c.requests.deleteOne({ _id: id, status: HIDDEN.deleting });
    return keys;
  }

  async purgeDeleting(): Promise<string[]> {
    const keys: string[] = [];
    for (const { _id } of await this.#c.requests.find({ status: HIDDEN.deleting }, { projection: { _id: 1 } }).toArray()) keys.push(...(await this.#purge(_id)));
    return keys;
  }

  async listExpiredRequests(before: number, limit: number): Promise<string[]> {
    const docs = await this.#c.requests
      .find({ status: oneOf(REQUEST_ACTIONS.expire.from), updatedAt: { $lt: before } }, { projection: { _id: 1 } })
      .sort({ updatedAt: 1 }).limit(limit).toArray();
    return docs.map((d) => d._id);
  }

  async referencedOutputs(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const outputs = await this.#c.items.distinct('outputKey', { outputKey: { $in: keys } });
    // distinct over an array field gives each element: keep only the ones asked about
    const asked = new Set(keys);
    const renditions = (await this.#c.items.distinct('renditionOutputKeys', { renditionOutputKeys: { $in: keys } })).filter((k) => asked.has(k as string));
    return new Set([...outputs, ...renditions].filter((k): k is string => typeof k === 'string'));
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
  await c.items.updateMany({ requestId: id, state: oneOf(ITEM_ACTIONS.retry.from) }, { $set: RETRY.itemReset });
  // The failed counter dropped with the reopen (retryRequest); a runner may already count new failures.
  await c.requests.updateOne({ _id: id, retrying: true }, { $unset: { retrying: '' }, $inc: { version: 1 } });
}
