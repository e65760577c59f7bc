// Webhooks in the SQLite store: subscriptions, deliveries and their attempt log, events.
import type { WebhooksPart } from '../compose.js';
import { afterAttempt, DELIVERY, DELIVERY_ACTIONS, newestFirstCursor, pageOf, SUBSCRIPTION_DELETED } from '../lifecycle.js';
import type { AttemptOutcome, DeliveryAttempt, DeliveryRecord, EventRecord, EventType, Subscription } from '../types.js';
import { oneOf, run, sql, type SqliteContext } from './context.js';
import { toAttempt, toDelivery, toSubscription } from './mappers.js';

export class SqliteWebhooks implements WebhooksPart {
  readonly #ctx: SqliteContext;

  constructor(ctx: SqliteContext) {
    this.#ctx = ctx;
  }

  async createSubscription(sub: Subscription): Promise<void> {
    await this.#ctx.write(async (tx) => {
      await run(tx,
        `INSERT INTO subscriptions (id, tenant_id, url, events, secret, previous_secret, previous_secret_expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [sub.id, sub.tenantId, sub.url, JSON.stringify(sub.events), sub.secret, sub.previousSecret, sub.previousSecretExpiresAt, sub.createdAt],
      );
    });
  }

  async listSubscriptions(tenantId: string | null): Promise<Subscription[]> {
    const res = tenantId === null
      ? await run(this.#ctx.db, 'SELECT * FROM subscriptions ORDER BY created_at, id')
      : await run(this.#ctx.db, 'SELECT * FROM subscriptions WHERE tenant_id = ? ORDER BY created_at, id', [tenantId]);
    return res.rows.map(toSubscription);
  }

  async getSubscription(id: string): Promise<Subscription | null> {
    const res = await run(this.#ctx.db, 'SELECT * FROM subscriptions WHERE id = ?', [id]);
    return res.rows[0] ? toSubscription(res.rows[0]) : null;
  }

  async deleteSubscription(id: string): Promise<boolean> {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx, 'DELETE FROM subscriptions WHERE id = ?', [id]);
      await run(tx,
        `UPDATE deliveries SET state = ?, last_error = ? WHERE subscription_id = ? AND state ${oneOf(DELIVERY_ACTIONS.orphan.from)}`,
        [SUBSCRIPTION_DELETED.state, SUBSCRIPTION_DELETED.lastError, id],
      );
      return res.rowsAffected > 0;
    });
  }

  async rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }): Promise<Subscription | null> {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE subscriptions SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?
         WHERE id = ? RETURNING *`,
        [input.previousSecretExpiresAt, input.newSecret, input.id],
      );
      return res.rows[0] ? toSubscription(res.rows[0]) : null;
    });
  }

  async claimDeliveries(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<DeliveryRecord[]> {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE deliveries SET lease_owner = ?, lease_until = ?, updated_at = ?
         WHERE id IN (SELECT id FROM deliveries WHERE state ${oneOf(DELIVERY_ACTIONS.claim.from)} AND next_attempt_at <= ?
                        AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?)
         RETURNING *`,
        [input.owner, input.now + input.leaseMs, input.now, input.now, input.now, input.limit],
      );
      return res.rows.map(toDelivery);
    });
  }

  async renewDeliveryLeases(input: { owner: string; deliveryIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    if (input.deliveryIds.length === 0) return [];
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE deliveries SET lease_until = ? WHERE lease_owner = ? AND state = ${sql(DELIVERY.pending)}
           AND id IN (SELECT value FROM json_each(?)) RETURNING id`,
        [input.now + input.leaseMs, input.owner, JSON.stringify(input.deliveryIds)],
      );
      return res.rows.map((r) => String(r.id));
    });
  }

  async recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean> {
    const { attempt, now } = input;
    const next = afterAttempt(attempt, input.outcome, now);
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
           lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND lease_owner = ? AND state ${oneOf(DELIVERY_ACTIONS.settle.from)}`,
        [next.state, next.nextAttemptAt, next.lastError, now, attempt.deliveryId, input.owner],
      );
      if (res.rowsAffected === 0) return false;
      await run(tx,
        `INSERT OR REPLACE INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?)`,
        [attempt.deliveryId, attempt.attempt, attempt.at, attempt.statusCode, attempt.error, Math.round(attempt.durationMs)],
      );
      return true;
    });
  }

  async listDeliveries(subscriptionId: string, opts: { limit: number; cursor?: string | null }) {
    const before = newestFirstCursor.decode(opts.cursor) ?? { at: Number.MAX_SAFE_INTEGER, id: '' };
    const res = await run(this.#ctx.db,
      `SELECT * FROM deliveries WHERE subscription_id = ?
         AND (created_at < ? OR (created_at = ? AND id < ?))
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [subscriptionId, before.at, before.at, before.id || '\u{10FFFF}', opts.limit + 1],
    );
    const page = pageOf(res.rows.map(toDelivery), opts.limit, (d) => newestFirstCursor.encode(d.createdAt, d.id));
    const attempts = page.items.length === 0 ? [] : (await run(this.#ctx.db,
      'SELECT * FROM delivery_attempts WHERE delivery_id IN (SELECT value FROM json_each(?)) ORDER BY attempt',
      [JSON.stringify(page.items.map((d) => d.id))],
    )).rows.map(toAttempt);
    return { ...page, items: page.items.map((d) => ({ ...d, attemptLog: attempts.filter((a) => a.deliveryId === d.id) })) };
  }

  async retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }): Promise<DeliveryRecord | null> {
    return this.#ctx.write(async (tx) => {
      // A pending delivery a dispatcher holds (it may be sending right now) keeps its lease:
      // freeing it would let a second dispatcher send it at the same time.
      const res = await run(tx,
        `UPDATE deliveries SET state = ${sql(DELIVERY_ACTIONS.redeliver.to)}, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND subscription_id = ? AND state ${oneOf(DELIVERY_ACTIONS.redeliver.from)}
           AND NOT (state = ${sql(DELIVERY.pending)} AND lease_until IS NOT NULL AND lease_until >= ?) RETURNING *`,
        [input.now, input.now, input.deliveryId, input.subscriptionId, input.now],
      );
      if (res.rows[0]) return toDelivery(res.rows[0]);
      const held = await run(tx, 'SELECT * FROM deliveries WHERE id = ? AND subscription_id = ?', [input.deliveryId, input.subscriptionId]);
      return held.rows[0] ? toDelivery(held.rows[0]) : null;
    });
  }

  async listEvents(requestId: string): Promise<EventRecord[]> {
    const res = await run(this.#ctx.db, 'SELECT * FROM events WHERE request_id = ? ORDER BY created_at, ord, rowid', [requestId]);
    return res.rows.map((r) => ({
      id: String(r.id), requestId: String(r.request_id), type: String(r.type) as EventType,
      payload: String(r.payload), createdAt: Number(r.created_at),
    }));
  }
}
