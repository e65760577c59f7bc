// The embedded store: one SQLite file (WAL) under DATA_DIR, shared safely by any number of
// processes on the same machine. Every multi-statement change runs in one IMMEDIATE
// transaction; within a process, writes are serialised by a mutex because libsql runs
// statements synchronously and a second connection waiting on the lock would block the
// event loop that the first one needs to finish.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClient, type Client, type InArgs, type InStatement, type Row, type Transaction } from '@libsql/client';
import { Mutex } from './mutex.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type {
  AttemptOutcome, CompleteResult, DeliveryAttempt, DeliveryRecord, EventPayloadBuilder, EventRecord, EventType,
  ItemOutcome, ItemRecord, Page, ProductRecord, RequestRecord, Store, Subscription,
} from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, idempotency_key TEXT UNIQUE,
  webhook_url TEXT, webhook_secret TEXT,
  product_count INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_status ON requests(status, created_at);
CREATE TABLE IF NOT EXISTS products (
  request_id TEXT NOT NULL, serial INTEGER NOT NULL, name TEXT NOT NULL, input_urls TEXT NOT NULL,
  PRIMARY KEY (request_id, serial)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, url TEXT NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT, lease_until INTEGER, output_key TEXT, error TEXT,
  created_at INTEGER NOT NULL,
  UNIQUE (request_id, url)
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE INDEX IF NOT EXISTS items_lease ON items(lease_until) WHERE state = 'running';
CREATE TABLE IF NOT EXISTS subscriptions (
  id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
  previous_secret TEXT, previous_secret_expires_at INTEGER, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY, request_id TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_request ON events(request_id, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
  id TEXT PRIMARY KEY, event_id TEXT NOT NULL, subscription_id TEXT, request_id TEXT NOT NULL,
  url TEXT NOT NULL, event_type TEXT NOT NULL, payload TEXT NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT, lease_until INTEGER, last_error TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries(subscription_id, created_at, id);
CREATE TABLE IF NOT EXISTS delivery_attempts (
  delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL,
  status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
`;

/**
 * One write mutex per database file for the whole process, shared by every store opened on
 * it: a second connection in the same thread waiting on the lock would never see it freed.
 */
const writeMutexes = new Map<string, Mutex>();

/** Rows per multi-row INSERT: well under SQLite's 32766 bound variables. */
const INSERT_CHUNK = 500;

export async function openSqliteStore(file: string, opts: { busyTimeoutMs?: number } = {}): Promise<SqliteStore> {
  file = resolve(file);
  mkdirSync(dirname(file), { recursive: true });
  const client = createClient({ url: pathToFileURL(file).href, timeout: opts.busyTimeoutMs ?? 10_000 });
  // journal_mode is persistent in the file; the others are per connection and are the
  // defaults we want (synchronous=FULL keeps a commit durable across power loss too).
  await client.execute('PRAGMA journal_mode = WAL');
  await client.executeMultiple(SCHEMA);
  // Files made before requests.version existed get the column (additive, so no data moves).
  const columns = await client.execute('PRAGMA table_info(requests)');
  if (!columns.rows.some((c) => c.name === 'version')) {
    await client.execute('ALTER TABLE requests ADD COLUMN version INTEGER NOT NULL DEFAULT 0');
  }
  let mutex = writeMutexes.get(file);
  if (!mutex) writeMutexes.set(file, (mutex = new Mutex()));
  return new SqliteStore(client, mutex);
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  readonly #db: Client;
  readonly #writes: Mutex;

  constructor(db: Client, writes: Mutex) {
    this.#db = db;
    this.#writes = writes;
  }

  /** Runs fn in one IMMEDIATE transaction, serialised with this process's other writes. */
  #write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#writes.run(async () => {
      const tx = await this.#db.transaction('write');
      try {
        const result = await fn(tx);
        await tx.commit();
        return result;
      } catch (err) {
        await tx.rollback().catch(() => {});
        throw err;
      } finally {
        tx.close();
      }
    });
  }

  // ---- ingest ---------------------------------------------------------------------------

  async beginRequest(input: Parameters<Store['beginRequest']>[0]) {
    return this.#write(async (tx) => {
      if (input.idempotencyKey !== null) {
        const existing = await run(tx, 'SELECT * FROM requests WHERE idempotency_key = ?', [input.idempotencyKey]);
        if (existing.rows[0]) return { created: false as const, existing: toRequest(existing.rows[0]) };
      }
      await run(tx, 
        `INSERT INTO requests (id, status, idempotency_key, webhook_url, webhook_secret, created_at, updated_at)
         VALUES (?, 'ingesting', ?, ?, ?, ?, ?)`,
        [input.id, input.idempotencyKey, input.webhookUrl, input.webhookSecret, input.now, input.now],
      );
      return { created: true as const };
    });
  }

  async appendBatch(requestId: string, products: ProductRecord[]): Promise<void> {
    if (products.length === 0) return;
    const now = Date.now();
    await this.#write(async (tx) => {
      const stmts: InStatement[] = [];
      for (let i = 0; i < products.length; i += INSERT_CHUNK) {
        const chunk = products.slice(i, i + INSERT_CHUNK);
        stmts.push({
          sql: `INSERT INTO products (request_id, serial, name, input_urls) VALUES ${chunk.map(() => '(?,?,?,?)').join(',')}`,
          args: chunk.flatMap((p) => [requestId, p.serial, p.name, JSON.stringify(p.inputUrls)]),
        });
      }
      const urls = [...new Set(products.flatMap((p) => p.inputUrls))];
      for (let i = 0; i < urls.length; i += INSERT_CHUNK) {
        const chunk = urls.slice(i, i + INSERT_CHUNK);
        stmts.push({
          // 'staged' items are invisible to runners until the request is committed.
          sql: `INSERT OR IGNORE INTO items (request_id, url, state, created_at) VALUES ${chunk.map(() => "(?,?,'staged',?)").join(',')}`,
          args: chunk.flatMap((u) => [requestId, u, now]),
        });
      }
      await tx.batch(stmts);
    });
  }

  async commitRequest(requestId: string, now: number, webhook?: { url: string; secret: string }): Promise<RequestRecord> {
    return this.#write(async (tx) => {
      if (webhook) {
        await run(tx, 'UPDATE requests SET webhook_url = ?, webhook_secret = ? WHERE id = ?', [webhook.url, webhook.secret, requestId]);
      }
      await run(tx, "UPDATE items SET state = 'pending' WHERE request_id = ? AND state = 'staged'", [requestId]);
      const res = await run(tx, 
        `UPDATE requests SET status = 'received', updated_at = ?,
           product_count = (SELECT COUNT(*) FROM products WHERE request_id = ?),
           total = (SELECT COUNT(*) FROM items WHERE request_id = ?)
         WHERE id = ? AND status = 'ingesting' RETURNING *`,
        [now, requestId, requestId, requestId],
      );
      if (!res.rows[0]) throw new Error(`request ${requestId} is not being ingested`);
      return toRequest(res.rows[0]);
    });
  }

  async abortRequest(requestId: string): Promise<void> {
    await this.#write(async (tx) => {
      await deleteIngesting(tx, [requestId]);
    });
  }

  async cleanupIngesting(before: number): Promise<number> {
    return this.#write(async (tx) => {
      const res = await run(tx, "SELECT id FROM requests WHERE status = 'ingesting' AND created_at < ?", [before]);
      await deleteIngesting(tx, res.rows.map((r) => String(r.id)));
      return res.rows.length;
    });
  }

  // ---- reads ----------------------------------------------------------------------------

  async getRequest(id: string): Promise<RequestRecord | null> {
    const res = await run(this.#db, "SELECT * FROM requests WHERE id = ? AND status != 'ingesting'", [id]);
    return res.rows[0] ? toRequest(res.rows[0]) : null;
  }

  async listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>> {
    const after = opts.cursor ? Number(decodeCursor(opts.cursor)[0]) : 0;
    const res = await run(this.#db, 
      'SELECT serial, name, input_urls FROM products WHERE request_id = ? AND serial > ? ORDER BY serial LIMIT ?',
      [requestId, Number.isFinite(after) ? after : 0, opts.limit + 1],
    );
    const rows = res.rows.slice(0, opts.limit).map((r) => ({
      serial: Number(r.serial), name: String(r.name), inputUrls: JSON.parse(String(r.input_urls)) as string[],
    }));
    const last = rows.at(-1);
    return { items: rows, nextCursor: res.rows.length > opts.limit && last ? encodeCursor([last.serial]) : null };
  }

  async getItemsByUrl(requestId: string, urls: string[]): Promise<ItemRecord[]> {
    if (urls.length === 0) return [];
    // One statement for any number of URLs (a JSON array), rather than a list of parameters.
    const res = await run(this.#db,
      'SELECT * FROM items WHERE request_id = ? AND url IN (SELECT value FROM json_each(?))',
      [requestId, JSON.stringify([...new Set(urls)])],
    );
    return res.rows.map(toItem);
  }

  // ---- pipeline -------------------------------------------------------------------------

  async claimItems(input: { owner: string; limit: number; leaseMs: number; now: number; payload: EventPayloadBuilder }): Promise<ItemRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    return this.#write(async (tx) => {
      // Expired leases first (their runner died), then pending items in arrival order.
      const claimed = (await run(tx, 
        `UPDATE items SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1
         WHERE id IN (SELECT id FROM items WHERE state = 'running' AND lease_until < ? LIMIT ?) RETURNING *`,
        [owner, now + leaseMs, now, limit],
      )).rows.map(toItem);
      if (claimed.length < limit) {
        const more = await run(tx, 
          `UPDATE items SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1
           WHERE id IN (SELECT id FROM items WHERE state = 'pending' ORDER BY id LIMIT ?) RETURNING *`,
          [owner, now + leaseMs, limit - claimed.length],
        );
        claimed.push(...more.rows.map(toItem));
      }
      for (const requestId of new Set(claimed.map((i) => i.requestId))) {
        await run(tx, 'UPDATE requests SET version = version + 1 WHERE id = ?', [requestId]);
        const started = await run(tx, 
          "UPDATE requests SET status = 'processing', updated_at = ? WHERE id = ? AND status = 'received' RETURNING *",
          [now, requestId],
        );
        if (started.rows[0]) await insertEvent(tx, 'processing.started', toRequest(started.rows[0]), now, input.payload);
      }
      return claimed;
    });
  }

  async renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    // Ids that cannot be ours are not held (as in the MongoDB store), rather than an error.
    const ids = input.itemIds.map(itemIdOf).filter((id) => id !== null);
    if (ids.length === 0) return [];
    return this.#write(async (tx) => {
      const res = await run(tx, 
        `UPDATE items SET lease_until = ? WHERE lease_owner = ? AND state = 'running'
           AND id IN (${ids.map(() => '?').join(',')}) RETURNING id`,
        [input.now + input.leaseMs, input.owner, ...ids],
      );
      return res.rows.map((r) => String(r.id));
    });
  }

  async completeItem(input: { itemId: string; owner: string; outcome: ItemOutcome; now: number; payload: EventPayloadBuilder }): Promise<CompleteResult> {
    const { outcome, now } = input;
    const itemId = itemIdOf(input.itemId);
    if (itemId === null) return { applied: false };
    return this.#write(async (tx) => {
      const item = await run(tx, 
        `UPDATE items SET state = ?, output_key = ?, error = ?, lease_owner = NULL, lease_until = NULL
         WHERE id = ? AND lease_owner = ? AND state = 'running' RETURNING request_id`,
        [outcome.ok ? 'done' : 'failed', outcome.ok ? outcome.outputKey : null, outcome.ok ? null : outcome.error,
          itemId, input.owner],
      );
      const requestId = item.rows[0]?.request_id;
      if (requestId === undefined) return { applied: false };
      const updated = await run(tx, 
        'UPDATE requests SET done = done + ?, failed = failed + ?, updated_at = ?, version = version + 1 WHERE id = ? RETURNING *',
        [outcome.ok ? 1 : 0, outcome.ok ? 0 : 1, now, String(requestId)],
      );
      const request = toRequest(updated.rows[0]!);
      if (request.done + request.failed < request.total) return { applied: true };
      const finalStatus = request.done > 0 ? 'completed' : 'failed';
      const finished = await run(tx, 
        "UPDATE requests SET status = ? WHERE id = ? AND status IN ('received', 'processing') RETURNING *",
        [finalStatus, request.id],
      );
      if (!finished.rows[0]) return { applied: true };
      await insertEvent(tx, `processing.${finalStatus}`, toRequest(finished.rows[0]), now, input.payload);
      return { applied: true, finalStatus };
    });
  }

  async releaseItems(owner: string): Promise<number> {
    return this.#write(async (tx) => {
      const res = await run(tx, 
        `UPDATE items SET state = 'pending', lease_owner = NULL, lease_until = NULL, attempts = MAX(attempts - 1, 0)
         WHERE lease_owner = ? AND state = 'running' RETURNING request_id`,
        [owner],
      );
      for (const requestId of new Set(res.rows.map((r) => String(r.request_id)))) {
        await run(tx, 'UPDATE requests SET version = version + 1 WHERE id = ?', [requestId]);
      }
      return res.rows.length;
    });
  }

  async pendingStats(now: number) {
    const res = await run(this.#db, 
      `SELECT
         (SELECT COUNT(*) FROM items WHERE state = 'pending') AS pending,
         (SELECT COUNT(*) FROM items WHERE state = 'running' AND lease_until >= ?) AS running,
         (SELECT MIN(created_at) FROM items WHERE state = 'pending') AS oldest`,
      [now],
    );
    const r = res.rows[0]!;
    return { pending: Number(r.pending), running: Number(r.running), oldestPendingAt: r.oldest === null ? null : Number(r.oldest) };
  }

  // ---- webhooks -------------------------------------------------------------------------

  async createSubscription(sub: Subscription): Promise<void> {
    await this.#write(async (tx) => {
      await run(tx, 
        `INSERT INTO subscriptions (id, url, events, secret, previous_secret, previous_secret_expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [sub.id, sub.url, JSON.stringify(sub.events), sub.secret, sub.previousSecret, sub.previousSecretExpiresAt, sub.createdAt],
      );
    });
  }

  async listSubscriptions(): Promise<Subscription[]> {
    const res = await run(this.#db, 'SELECT * FROM subscriptions ORDER BY created_at, id');
    return res.rows.map(toSubscription);
  }

  async getSubscription(id: string): Promise<Subscription | null> {
    const res = await run(this.#db, 'SELECT * FROM subscriptions WHERE id = ?', [id]);
    return res.rows[0] ? toSubscription(res.rows[0]) : null;
  }

  async deleteSubscription(id: string): Promise<boolean> {
    return this.#write(async (tx) => {
      const res = await run(tx, 'DELETE FROM subscriptions WHERE id = ?', [id]);
      // Undelivered messages to a removed subscription have nobody to go to.
      await run(tx, 
        "UPDATE deliveries SET state = 'failed', last_error = 'subscription deleted' WHERE subscription_id = ? AND state = 'pending'",
        [id],
      );
      return res.rowsAffected > 0;
    });
  }

  async rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }): Promise<Subscription | null> {
    return this.#write(async (tx) => {
      const res = await run(tx, 
        `UPDATE subscriptions SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?
         WHERE id = ? RETURNING *`,
        [input.previousSecretExpiresAt, input.newSecret, input.id],
      );
      return res.rows[0] ? toSubscription(res.rows[0]) : null;
    });
  }

  async claimDeliveries(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<DeliveryRecord[]> {
    return this.#write(async (tx) => {
      const res = await run(tx, 
        `UPDATE deliveries SET lease_owner = ?, lease_until = ?, updated_at = ?
         WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?
                        AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?)
         RETURNING *`,
        [input.owner, input.now + input.leaseMs, input.now, input.now, input.now, input.limit],
      );
      return res.rows.map(toDelivery);
    });
  }

  async recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean> {
    const { attempt, outcome, now } = input;
    return this.#write(async (tx) => {
      const state = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'failed' ? 'failed' : 'pending';
      const res = await run(tx, 
        `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
           lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND lease_owner = ? AND state = 'pending'`,
        [state, outcome.kind === 'retry' ? outcome.nextAttemptAt : now, describeAttempt(attempt), now, attempt.deliveryId, input.owner],
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
    // A cursor that is not one of ours starts from the newest, as listProducts does.
    const [rawAt, rawId] = opts.cursor ? decodeCursor(opts.cursor) : [];
    const valid = typeof rawAt === 'number' && Number.isFinite(rawAt);
    const beforeAt = valid ? rawAt : Number.MAX_SAFE_INTEGER;
    const beforeId = valid ? String(rawId ?? '') : '';
    const res = await run(this.#db, 
      `SELECT * FROM deliveries WHERE subscription_id = ?
         AND (created_at < ? OR (created_at = ? AND id < ?))
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [subscriptionId, beforeAt, beforeAt, beforeId, opts.limit + 1],
    );
    const page = res.rows.slice(0, opts.limit).map(toDelivery);
    const attempts = page.length === 0 ? [] : (await run(this.#db, 
      `SELECT * FROM delivery_attempts WHERE delivery_id IN (${page.map(() => '?').join(',')}) ORDER BY attempt`,
      page.map((d) => d.id),
    )).rows.map(toAttempt);
    const last = page.at(-1);
    return {
      items: page.map((d) => ({ ...d, attemptLog: attempts.filter((a) => a.deliveryId === d.id) })),
      nextCursor: res.rows.length > opts.limit && last ? encodeCursor([last.createdAt, last.id]) : null,
    };
  }

  async retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }): Promise<DeliveryRecord | null> {
    return this.#write(async (tx) => {
      // A pending delivery a dispatcher holds (it may be sending right now) keeps its lease:
      // freeing it would let a second dispatcher send it at the same time.
      const res = await run(tx, 
        `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND subscription_id = ? AND NOT (state = 'pending' AND lease_until IS NOT NULL AND lease_until >= ?) RETURNING *`,
        [input.now, input.now, input.deliveryId, input.subscriptionId, input.now],
      );
      if (res.rows[0]) return toDelivery(res.rows[0]);
      const held = await run(tx, 'SELECT * FROM deliveries WHERE id = ? AND subscription_id = ?', [input.deliveryId, input.subscriptionId]);
      return held.rows[0] ? toDelivery(held.rows[0]) : null;
    });
  }

  async listEvents(requestId: string): Promise<EventRecord[]> {
    const res = await run(this.#db, 'SELECT * FROM events WHERE request_id = ? ORDER BY created_at, rowid', [requestId]);
    return res.rows.map((r) => ({
      id: String(r.id), requestId: String(r.request_id), type: String(r.type) as EventType,
      payload: String(r.payload), createdAt: Number(r.created_at),
    }));
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async ping(): Promise<void> {
    await run(this.#db, 'SELECT 1');
  }

  async close(): Promise<void> {
    await this.#writes.run(async () => this.#db.close());
  }
}

async function deleteIngesting(tx: Transaction, ids: string[]): Promise<void> {
  for (const id of ids) {
    // Only an ingesting request (or the orphans of one) is removed: never a committed one's data.
    const notCommitted = "NOT EXISTS (SELECT 1 FROM requests WHERE id = ? AND status != 'ingesting')";
    const args: InArgs = [id, id];
    await tx.batch([
      { sql: `DELETE FROM items WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: `DELETE FROM products WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: "DELETE FROM requests WHERE id = ? AND status = 'ingesting'", args: [id] },
    ]);
  }
}

/** Writes an event and one delivery per interested receiver, inside the caller's transaction. */
async function insertEvent(tx: Transaction, type: EventType, request: RequestRecord, now: number, payload: EventPayloadBuilder) {
  const eventId = `evt_${randomUUID()}`;
  const body = payload(type, request, eventId, now);
  const stmts: InStatement[] = [{
    sql: 'INSERT INTO events (id, request_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)',
    args: [eventId, request.id, type, body, now],
  }];
  const receivers: Array<{ subscriptionId: string | null; url: string }> = [];
  for (const row of (await run(tx, 'SELECT id, url, events FROM subscriptions')).rows) {
    if ((JSON.parse(String(row.events)) as string[]).includes(type)) receivers.push({ subscriptionId: String(row.id), url: String(row.url) });
  }
  if (request.webhookUrl) receivers.push({ subscriptionId: null, url: request.webhookUrl });
  for (const r of receivers) {
    stmts.push({
      sql: `INSERT INTO deliveries (id, event_id, subscription_id, request_id, url, event_type, payload, state,
              next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
      args: [`dlv_${randomUUID()}`, eventId, r.subscriptionId, request.id, r.url, type, body, now, now, now],
    });
  }
  await tx.batch(stmts);
}

/** An item id as stored (an integer), or null for a string that cannot be one. */
function itemIdOf(id: string): number | null {
  return /^\d{1,15}$/.test(id) ? Number(id) : null;
}

function describeAttempt(a: DeliveryAttempt): string | null {
  if (a.error) return a.error;
  if (a.statusCode !== null && (a.statusCode < 200 || a.statusCode >= 300)) return `HTTP ${a.statusCode}`;
  return null;
}

/** Executes one statement on the client or inside a transaction. */
const run = (on: Client | Transaction, sql: string, args: InArgs = []) => on.execute({ sql, args });

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function toRequest(r: Row): RequestRecord {
  return {
    id: String(r.id), status: String(r.status) as RequestRecord['status'],
    idempotencyKey: str(r.idempotency_key), webhookUrl: str(r.webhook_url), webhookSecret: str(r.webhook_secret),
    productCount: Number(r.product_count), total: Number(r.total), done: Number(r.done), failed: Number(r.failed),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), version: Number(r.version),
  };
}

function toItem(r: Row): ItemRecord {
  return {
    id: String(r.id), requestId: String(r.request_id), url: String(r.url),
    state: String(r.state) as ItemRecord['state'], attempts: Number(r.attempts),
    leaseOwner: str(r.lease_owner), leaseUntil: num(r.lease_until), outputKey: str(r.output_key), error: str(r.error),
  };
}

function toSubscription(r: Row): Subscription {
  return {
    id: String(r.id), url: String(r.url), events: JSON.parse(String(r.events)) as EventType[], secret: String(r.secret),
    previousSecret: str(r.previous_secret), previousSecretExpiresAt: num(r.previous_secret_expires_at),
    createdAt: Number(r.created_at),
  };
}

function toDelivery(r: Row): DeliveryRecord {
  return {
    id: String(r.id), eventId: String(r.event_id), subscriptionId: str(r.subscription_id), requestId: String(r.request_id),
    url: String(r.url), eventType: String(r.event_type) as EventType, payload: String(r.payload),
    state: String(r.state) as DeliveryRecord['state'], attempts: Number(r.attempts), nextAttemptAt: Number(r.next_attempt_at),
    leaseOwner: str(r.lease_owner), leaseUntil: num(r.lease_until), lastError: str(r.last_error),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

function toAttempt(r: Row): DeliveryAttempt {
  return {
    deliveryId: String(r.delivery_id), attempt: Number(r.attempt), at: Number(r.at),
    statusCode: num(r.status_code), error: str(r.error), durationMs: Number(r.duration_ms),
  };
}
