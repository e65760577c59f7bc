// The MongoDB store's outbox: a transition and its event are one update of the request
// document, and a relay then writes the event and its deliveries (see store.ts).
import type { AnyBulkWriteOperation } from 'mongodb';
import { deliveriesFor, eventOrder, transitionEvent, type EventfulStatus } from '../lifecycle.js';
import type { Collections, DeliveryDoc, RequestDoc } from './schema.js';
import type { RequestRecord } from '../types.js';
import { ignoreDuplicates, RECOVER_EVERY_MS } from './context.js';
import { toSubscription } from './mappers.js';

/** An outbox entry older than this is left over (the writer relays its own at once). */
const OUTBOX_GRACE_MS = 2_000;

export class MongoOutbox {
  readonly #c: Collections;
  #lastOutboxSweep = 0;

  constructor(c: Collections) {
    this.#c = c;
  }

  /**
   * Moves a request from one of `from` to `to`, with its event in the outbox, in one update;
   * false when another caller moved it first. Relays the event at once.
   */
  async transition(request: RequestRecord, from: readonly string[], to: EventfulStatus, now: number): Promise<boolean> {
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
  async relayLeftovers(now: number): Promise<void> {
    if (Date.now() - this.#lastOutboxSweep < RECOVER_EVERY_MS) return;
    this.#lastOutboxSweep = Date.now();
    const stale = await this.#c.requests.find({ outboxAt: { $lt: now - OUTBOX_GRACE_MS } }, { projection: { _id: 1 } }).limit(100).toArray();
    for (const { _id } of stale) await this.#relay(_id);
  }
}
