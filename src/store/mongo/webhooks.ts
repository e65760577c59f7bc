// Webhooks in the MongoDB store: subscriptions, deliveries and their attempt log, events.
import type { WebhooksPart } from '../compose.js';
import { afterAttempt, DELIVERY, DELIVERY_ACTIONS, newestFirstCursor, pageOf, SUBSCRIPTION_DELETED } from '../lifecycle.js';
import type { Collections } from './schema.js';
import type { AttemptOutcome, DeliveryAttempt, DeliveryRecord, EventRecord, Subscription } from '../types.js';
import { oneOf } from './context.js';
import { toAttempt, toDelivery, toSubscription } from './mappers.js';
import type { MongoOutbox } from './outbox.js';

export class MongoWebhooks implements WebhooksPart {
  readonly #c: Collections;
  readonly #outbox: MongoOutbox;

  constructor(c: Collections, outbox: MongoOutbox) {
    this.#c = c;
    this.#outbox = outbox;
  }

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
    await this.#c.deliveries.updateMany(
      { subscriptionId: id, state: oneOf(DELIVERY_ACTIONS.orphan.from) }, { $set: { ...SUBSCRIPTION_DELETED } },
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
    await this.#outbox.relayLeftovers(now);
    const claimed: DeliveryRecord[] = [];
    while (claimed.length < limit) {
      const doc = await this.#c.deliveries.findOneAndUpdate(
        { state: oneOf(DELIVERY_ACTIONS.claim.from), nextAttemptAt: { $lte: now }, $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }] },
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
    const filter = { _id: { $in: input.deliveryIds }, leaseOwner: input.owner, state: DELIVERY.pending };
    await this.#c.deliveries.updateMany(filter, { $set: { leaseUntil } });
    const held = await this.#c.deliveries.find({ ...filter, leaseUntil: { $gte: leaseUntil } }, { projection: { _id: 1 } }).toArray();
    return held.map((d) => d._id);
  }

  async recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean> {
    const { attempt, now } = input;
    // The attempt log first: a crash before the delivery moves leaves it to be sent again, and
    // that attempt (the same number) replaces this line.
    const held = await this.#c.deliveries.countDocuments({ _id: attempt.deliveryId, leaseOwner: input.owner, state: oneOf(DELIVERY_ACTIONS.settle.from) });
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
      { _id: attempt.deliveryId, leaseOwner: input.owner, state: oneOf(DELIVERY_ACTIONS.settle.from) },
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
      {
        _id: input.deliveryId, subscriptionId: input.subscriptionId, state: oneOf(DELIVERY_ACTIONS.redeliver.from),
        $nor: [{ state: DELIVERY.pending, leaseUntil: { $gte: input.now } }],
      },
      { $set: { state: DELIVERY_ACTIONS.redeliver.to, nextAttemptAt: input.now, leaseOwner: null, leaseUntil: null, updatedAt: input.now } },
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
}
