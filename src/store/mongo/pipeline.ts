// The MongoDB store's pipeline: claims, leases, completions and their settling (see store.ts),
// and the queue's counts.
import { ObjectId } from 'mongodb';
import type { PipelinePart } from '../compose.js';
import { claimFairly, counterDelta, ITEM, ITEM_ACTIONS, itemResult, may, REQUEST_ACTIONS, settledStatus, type SettledStatus } from '../lifecycle.js';
import type { Collections, ItemDoc } from './schema.js';
import type { ChargeInput, CompleteInput, CompleteResult, ItemRecord } from '../types.js';
import { oneOf, OPEN, RECOVER_EVERY_MS, toObjectId } from './context.js';
import { toItem, toRequest } from './mappers.js';
import { writeCachedOutput, writeValidators } from './cache.js';
import { finishRetry } from './operations.js';
import type { MongoOutbox } from './outbox.js';

/** A settler's hold on an abandoned completion. */
const SETTLE_LEASE_MS = 30_000;

export class MongoPipeline implements PipelinePart {
  readonly #c: Collections;
  readonly #outbox: MongoOutbox;
  #lastSettleSweep = 0;

  constructor(c: Collections, outbox: MongoOutbox) {
    this.#c = c;
    this.#outbox = outbox;
  }

  async claimItems(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<ItemRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    const { items, requests } = this.#c;
    await this.#settleAbandoned(now);
    const claimed: ItemDoc[] = [];
    const lease = { $set: { state: ITEM_ACTIONS.claim.to, leaseOwner: owner, leaseUntil: now + leaseMs }, $inc: { claims: 1 } };
    // Expired leases first (their runner died).
    while (claimed.length < limit) {
      const doc = await items.findOneAndUpdate(
        { state: oneOf(ITEM_ACTIONS.reclaim.from), leaseUntil: { $lt: now } }, lease, { sort: { leaseUntil: 1 }, returnDocument: 'after' },
      );
      if (!doc) break;
      // An item of a request no longer open (cancelled, deleted) is not worked on again.
      if (await requests.countDocuments({ _id: doc.requestId, status: { $in: OPEN } }, { limit: 1 })) claimed.push(doc);
      else await items.updateOne({ _id: doc._id, leaseOwner: owner }, { $set: { state: ITEM_ACTIONS.release.to, leaseOwner: null, leaseUntil: null } });
    }
    if (claimed.length < limit) {
      const withPending = await items.distinct('requestId', { state: oneOf(ITEM_ACTIONS.claim.from) });
      const candidates = withPending.length === 0 ? [] : await requests
        .find({ _id: { $in: withPending }, status: { $in: OPEN } }, { projection: { tenantId: 1, lastClaimAt: 1, createdAt: 1 } })
        .toArray();
      await claimFairly(
        candidates.map((d) => ({ requestId: d._id, tenantId: d.tenantId, lastClaimAt: d.lastClaimAt ?? 0, createdAt: d.createdAt })),
        limit - claimed.length,
        async (requestId, n) => {
          let got = 0;
          for (; got < n; got++) {
            const doc = await items.findOneAndUpdate({ requestId, state: oneOf(ITEM_ACTIONS.claim.from) }, lease, { sort: { _id: 1 }, returnDocument: 'after' });
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
      const claim = REQUEST_ACTIONS.claim;
      if (doc && may(claim, doc.status)) await this.#outbox.transition(toRequest(doc), claim.from, claim.to, now);
    }
    return claimed.map(toItem);
  }

  async chargeAttempt(input: ChargeInput): Promise<number | null> {
    const _id = toObjectId(input.itemId);
    if (!_id) return null;
    const doc = await this.#c.items.findOneAndUpdate(
      { _id, leaseOwner: input.owner, state: ITEM.running }, { $inc: { attempts: 1 } }, { returnDocument: 'after' },
    );
    return doc ? doc.attempts : null;
  }

  async renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    const ids = input.itemIds.flatMap((id) => toObjectId(id) ?? []);
    if (ids.length === 0) return [];
    const leaseUntil = input.now + input.leaseMs;
    await this.#c.items.updateMany({ _id: { $in: ids }, leaseOwner: input.owner, state: ITEM.running }, { $set: { leaseUntil } });
    const held = await this.#c.items
      .find({ _id: { $in: ids }, leaseOwner: input.owner, state: ITEM.running, leaseUntil: { $gte: leaseUntil } }, { projection: { _id: 1 } })
      .toArray();
    return held.map((d) => d._id.toHexString());
  }

  async recordProgress(input: { charges: ChargeInput[]; completions: CompleteInput[] }) {
    // No multi-document transaction here: each write is its own atomic step, as when made alone.
    const attempts: (number | null)[] = [];
    for (const charge of input.charges) attempts.push(await this.chargeAttempt(charge));
    return { attempts, results: await this.completeItems(input.completions) };
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
      { _id, leaseOwner: input.owner, state: oneOf(ITEM_ACTIONS.settle.from) },
      { $set: { ...withOutputKeys(itemResult(input.outcome)), settled: false } },
      { returnDocument: 'after' },
    );
    if (!item) return { applied: false };
    // Before the request can settle, so a finished request's outputs are already reusable.
    const { remember } = input;
    if (remember?.cached) await writeCachedOutput(this.#c, remember.tenantId, remember.cached.sourceSha256, remember.settings, remember.cached.output, input.now);
    if (remember?.validators) await writeValidators(this.#c, remember.tenantId, remember.validators.url, remember.settings, remember.validators.validators, input.now);
    const finalStatus = await this.#settle(item, input.now);
    return finalStatus ? { applied: true, finalStatus } : { applied: true };
  }

  /**
   * Takes a final item into its request's counters exactly once, finishes the request when it
   * was the last, then marks the item settled. Safe to run again after a crash at any step.
   */
  async #settle(item: ItemDoc, now: number): Promise<SettledStatus | null> {
    const { requests, items } = this.#c;
    const itemId = item._id.toHexString();
    const delta = counterDelta(item.state === ITEM.done
      ? { ok: true, outputKey: item.outputKey ?? '', format: '', bytesIn: item.bytesIn ?? 0, bytesOut: item.bytesOut ?? 0, outcome: item.outcome ?? 'compressed' }
      : { ok: false, error: item.error ?? '' });
    await requests.updateOne(
      { _id: item.requestId, settling: { $ne: itemId } },
      { $inc: { ...delta, version: 1 }, $set: { updatedAt: now }, $push: { settling: itemId } },
    );
    const doc = await requests.findOne({ _id: item.requestId }, { projection: { outbox: 0, settling: 0 } });
    const finalStatus = doc ? settledStatus(doc) : null;
    const finished = doc && finalStatus && may(REQUEST_ACTIONS.settle, doc.status)
      ? await this.#outbox.transition(toRequest(doc), REQUEST_ACTIONS.settle.from, finalStatus, now)
      : false;
    await items.updateOne({ _id: item._id }, { $set: { settled: true, leaseOwner: null, leaseUntil: null } });
    await requests.updateOne({ _id: item.requestId }, { $pull: { settling: itemId } });
    return finished ? finalStatus : null;
  }

  /** Settles completions whose runner died between marking the item and counting it, and finishes interrupted retries. */
  async #settleAbandoned(now: number): Promise<void> {
    if (Date.now() - this.#lastSettleSweep < RECOVER_EVERY_MS) return;
    this.#lastSettleSweep = Date.now();
    for (const { _id } of await this.#c.requests.find({ retrying: true }, { projection: { _id: 1 } }).toArray()) await finishRetry(this.#c, _id);
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

  async releaseItems(owner: string): Promise<number> {
    const release = { leaseOwner: owner, state: oneOf(ITEM_ACTIONS.release.from) };
    const held = await this.#c.items.distinct('requestId', release);
    const res = await this.#c.items.updateMany(
      release, { $set: { state: ITEM_ACTIONS.release.to, leaseOwner: null, leaseUntil: null } },
    );
    if (held.length) await this.#c.requests.updateMany({ _id: { $in: held } }, { $inc: { version: 1 } });
    return res.modifiedCount;
  }

  async pendingStats(now: number) {
    const [pending, running, oldest] = await Promise.all([
      this.#c.items.countDocuments({ state: ITEM.pending }),
      this.#c.items.countDocuments({ state: ITEM.running, leaseUntil: { $gte: now } }),
      this.#c.items.findOne({ state: ITEM.pending }, { sort: { _id: 1 }, projection: { createdAt: 1 } }),
    ]);
    return { pending, running, oldestPendingAt: oldest ? oldest.createdAt : null };
  }
}

/** An item's result with its rendition keys also as the array the references index covers. */
const withOutputKeys = <T extends { renditionKeys: Record<string, string> | null }>(r: T) => ({ ...r, renditionOutputKeys: Object.values(r.renditionKeys ?? {}) });
