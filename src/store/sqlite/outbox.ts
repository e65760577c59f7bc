// The SQLite store's outbox: an event is written with its deliveries in the transaction that
// made the transition, so both commit together.
import type { SqlArgs, SqlTransaction } from './connection.js';
import { deliveriesFor, eventOrder } from '../lifecycle.js';
import type { EventRecord, RequestRecord } from '../types.js';
import { run } from './context.js';
import { toSubscription } from './mappers.js';

/** Writes an event and its deliveries inside the caller's transaction (the outbox). */
export async function writeEvent(tx: SqlTransaction, event: EventRecord, request: RequestRecord): Promise<void> {
  const subscriptions = (await run(tx, 'SELECT * FROM subscriptions')).rows.map(toSubscription);
  const stmts: Array<{ sql: string; args: SqlArgs }> = [{
    sql: 'INSERT OR IGNORE INTO events (id, request_id, type, payload, created_at, ord) VALUES (?, ?, ?, ?, ?, ?)',
    args: [event.id, event.requestId, event.type, event.payload, event.createdAt, eventOrder(event.type)],
  }];
  for (const d of deliveriesFor(event, request, subscriptions)) {
    stmts.push({
      sql: `INSERT OR IGNORE INTO deliveries (id, event_id, subscription_id, request_id, url, event_type, payload, state,
              next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      args: [d.id, d.eventId, d.subscriptionId, d.requestId, d.url, d.eventType, d.payload, d.state, d.nextAttemptAt, d.createdAt, d.updatedAt],
    });
  }
  await tx.batch(stmts);
}
