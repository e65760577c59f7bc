import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createClient } from "@libsql/client";
import { Mutex } from "./mutex.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
const SCHEMA = `
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, idempotency_key TEXT UNIQUE,
  webhook_url TEXT, webhook_secret TEXT,
  product_count INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
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
const writeMutexes = /* @__PURE__ */ new Map();
const INSERT_CHUNK = 500;
async function openSqliteStore(file, opts = {}) {
  file = resolve(file);
  mkdirSync(dirname(file), { recursive: true });
  const client = createClient({ url: pathToFileURL(file).href, timeout: opts.busyTimeoutMs ?? 1e4 });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.executeMultiple(SCHEMA);
  let mutex = writeMutexes.get(file);
  if (!mutex) writeMutexes.set(file, mutex = new Mutex());
  return new SqliteStore(client, mutex);
}
class SqliteStore {
  backend = "sqlite";
  #db;
  #writes;
  constructor(db, writes) {
    this.#db = db;
    this.#writes = writes;
  }
  /** Runs fn in one IMMEDIATE transaction, serialised with this process's other writes. */
  #write(fn) {
    return this.#writes.run(async () => {
      const tx = await this.#db.transaction("write");
      try {
        const result = await fn(tx);
        await tx.commit();
        return result;
      } catch (err) {
        await tx.rollback().catch(() => {
        });
        throw err;
      } finally {
        tx.close();
      }
    });
  }
  // ---- ingest ---------------------------------------------------------------------------
  async beginRequest(input) {
    return this.#write(async (tx) => {
      if (input.idempotencyKey !== null) {
        const existing = await run(tx, "SELECT * FROM requests WHERE idempotency_key = ?", [input.idempotencyKey]);
        if (existing.rows[0]) return { created: false, existing: toRequest(existing.rows[0]) };
      }
      await run(
        tx,
        `INSERT INTO requests (id, status, idempotency_key, webhook_url, webhook_secret, created_at, updated_at)
         VALUES (?, 'ingesting', ?, ?, ?, ?, ?)`,
        [input.id, input.idempotencyKey, input.webhookUrl, input.webhookSecret, input.now, input.now]
      );
      return { created: true };
    });
  }
  async appendBatch(requestId, products) {
    if (products.length === 0) return;
    const now = Date.now();
    await this.#write(async (tx) => {
      const stmts = [];
      for (let i = 0; i < products.length; i += INSERT_CHUNK) {
        const chunk = products.slice(i, i + INSERT_CHUNK);
        stmts.push({
          sql: `INSERT INTO products (request_id, serial, name, input_urls) VALUES ${chunk.map(() => "(?,?,?,?)").join(",")}`,
          args: chunk.flatMap((p) => [requestId, p.serial, p.name, JSON.stringify(p.inputUrls)])
        });
      }
      const urls = [...new Set(products.flatMap((p) => p.inputUrls))];
      for (let i = 0; i < urls.length; i += INSERT_CHUNK) {
        const chunk = urls.slice(i, i + INSERT_CHUNK);
        stmts.push({
          // 'staged' items are invisible to runners until the request is committed.
          sql: `INSERT OR IGNORE INTO items (request_id, url, state, created_at) VALUES ${chunk.map(() => "(?,?,'staged',?)").join(",")}`,
          args: chunk.flatMap((u) => [requestId, u, now])
        });
      }
      await tx.batch(stmts);
    });
  }
  async commitRequest(requestId, now, webhook) {
    return this.#write(async (tx) => {
      if (webhook) {
        await run(tx, "UPDATE requests SET webhook_url = ?, webhook_secret = ? WHERE id = ?", [webhook.url, webhook.secret, requestId]);
      }
      await run(tx, "UPDATE items SET state = 'pending' WHERE request_id = ? AND state = 'staged'", [requestId]);
      const res = await run(
        tx,
        `UPDATE requests SET status = 'received', updated_at = ?,
           product_count = (SELECT COUNT(*) FROM products WHERE request_id = ?),
           total = (SELECT COUNT(*) FROM items WHERE request_id = ?)
         WHERE id = ? AND status = 'ingesting' RETURNING *`,
        [now, requestId, requestId, requestId]
      );
      if (!res.rows[0]) throw new Error(`request ${requestId} is not being ingested`);
      return toRequest(res.rows[0]);
    });
  }
  async abortRequest(requestId) {
    await this.#write(async (tx) => {
      await deleteIngesting(tx, [requestId]);
    });
  }
  async cleanupIngesting(before) {
    return this.#write(async (tx) => {
      const res = await run(tx, "SELECT id FROM requests WHERE status = 'ingesting' AND created_at < ?", [before]);
      await deleteIngesting(tx, res.rows.map((r) => String(r.id)));
      return res.rows.length;
    });
  }
  // ---- reads ----------------------------------------------------------------------------
  async getRequest(id) {
    const res = await run(this.#db, "SELECT * FROM requests WHERE id = ? AND status != 'ingesting'", [id]);
    return res.rows[0] ? toRequest(res.rows[0]) : null;
  }
  async listProducts(requestId, opts) {
    const after = opts.cursor ? Number(decodeCursor(opts.cursor)[0]) : 0;
    const res = await run(
      this.#db,
      "SELECT serial, name, input_urls FROM products WHERE request_id = ? AND serial > ? ORDER BY serial LIMIT ?",
      [requestId, Number.isFinite(after) ? after : 0, opts.limit + 1]
    );
    const rows = res.rows.slice(0, opts.limit).map((r) => ({
      serial: Number(r.serial),
      name: String(r.name),
      inputUrls: JSON.parse(String(r.input_urls))
    }));
    const last = rows.at(-1);
    return { items: rows, nextCursor: res.rows.length > opts.limit && last ? encodeCursor([last.serial]) : null };
  }
  async getItemsByUrl(requestId, urls) {
    const out = [];
    const unique = [...new Set(urls)];
    for (let i = 0; i < unique.length; i += INSERT_CHUNK) {
      const chunk = unique.slice(i, i + INSERT_CHUNK);
      const res = await run(
        this.#db,
        `SELECT * FROM items WHERE request_id = ? AND url IN (${chunk.map(() => "?").join(",")})`,
        [requestId, ...chunk]
      );
      out.push(...res.rows.map(toItem));
    }
    return out;
  }
  // ---- pipeline -------------------------------------------------------------------------
  async claimItems(input) {
    const { owner, limit, leaseMs, now } = input;
    return this.#write(async (tx) => {
      const claimed = (await run(
        tx,
        `UPDATE items SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1
         WHERE id IN (SELECT id FROM items WHERE state = 'running' AND lease_until < ? LIMIT ?) RETURNING *`,
        [owner, now + leaseMs, now, limit]
      )).rows.map(toItem);
      if (claimed.length < limit) {
        const more = await run(
          tx,
          `UPDATE items SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1
           WHERE id IN (SELECT id FROM items WHERE state = 'pending' ORDER BY id LIMIT ?) RETURNING *`,
          [owner, now + leaseMs, limit - claimed.length]
        );
        claimed.push(...more.rows.map(toItem));
      }
      for (const requestId of new Set(claimed.map((i) => i.requestId))) {
        const started = await run(
          tx,
          "UPDATE requests SET status = 'processing', updated_at = ? WHERE id = ? AND status = 'received' RETURNING *",
          [now, requestId]
        );
        if (started.rows[0]) await insertEvent(tx, "processing.started", toRequest(started.rows[0]), now, input.payload);
      }
      return claimed;
    });
  }
  async renewLeases(input) {
    if (input.itemIds.length === 0) return [];
    return this.#write(async (tx) => {
      const res = await run(
        tx,
        `UPDATE items SET lease_until = ? WHERE lease_owner = ? AND state = 'running'
           AND id IN (${input.itemIds.map(() => "?").join(",")}) RETURNING id`,
        [input.now + input.leaseMs, input.owner, ...input.itemIds.map(Number)]
      );
      return res.rows.map((r) => String(r.id));
    });
  }
  async completeItem(input) {
    const { outcome, now } = input;
    return this.#write(async (tx) => {
      const item = await run(
        tx,
        `UPDATE items SET state = ?, output_key = ?, error = ?, lease_owner = NULL, lease_until = NULL
         WHERE id = ? AND lease_owner = ? AND state = 'running' RETURNING request_id`,
        [
          outcome.ok ? "done" : "failed",
          outcome.ok ? outcome.outputKey : null,
          outcome.ok ? null : outcome.error,
          Number(input.itemId),
          input.owner
        ]
      );
      const requestId = item.rows[0]?.request_id;
      if (requestId === void 0) return { applied: false };
      const updated = await run(
        tx,
        "UPDATE requests SET done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ? RETURNING *",
        [outcome.ok ? 1 : 0, outcome.ok ? 0 : 1, now, String(requestId)]
      );
      const request = toRequest(updated.rows[0]);
      if (request.done + request.failed < request.total) return { applied: true };
      const finalStatus = request.done > 0 ? "completed" : "failed";
      const finished = await run(
        tx,
        "UPDATE requests SET status = ? WHERE id = ? AND status IN ('received', 'processing') RETURNING *",
        [finalStatus, request.id]
      );
      if (!finished.rows[0]) return { applied: true };
      await insertEvent(tx, `processing.${finalStatus}`, toRequest(finished.rows[0]), now, input.payload);
      return { applied: true, finalStatus };
    });
  }
  async releaseItems(owner) {
    return this.#write(async (tx) => {
      const res = await run(
        tx,
        "UPDATE items SET state = 'pending', lease_owner = NULL, lease_until = NULL, attempts = MAX(attempts - 1, 0) WHERE lease_owner = ? AND state = 'running'",
        [owner]
      );
      return res.rowsAffected;
    });
  }
  async pendingStats(now) {
    const res = await run(
      this.#db,
      `SELECT
         (SELECT COUNT(*) FROM items WHERE state = 'pending') AS pending,
         (SELECT COUNT(*) FROM items WHERE state = 'running' AND lease_until >= ?) AS running,
         (SELECT MIN(created_at) FROM items WHERE state = 'pending') AS oldest`,
      [now]
    );
    const r = res.rows[0];
    return { pending: Number(r.pending), running: Number(r.running), oldestPendingAt: r.oldest === null ? null : Number(r.oldest) };
  }
  // ---- webhooks -------------------------------------------------------------------------
  async createSubscription(sub) {
    await this.#write(async (tx) => {
      await run(
        tx,
        `INSERT INTO subscriptions (id, url, events, secret, previous_secret, previous_secret_expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [sub.id, sub.url, JSON.stringify(sub.events), sub.secret, sub.previousSecret, sub.previousSecretExpiresAt, sub.createdAt]
      );
    });
  }
  async listSubscriptions() {
    const res = await run(this.#db, "SELECT * FROM subscriptions ORDER BY created_at, id");
    return res.rows.map(toSubscription);
  }
  async getSubscription(id) {
    const res = await run(this.#db, "SELECT * FROM subscriptions WHERE id = ?", [id]);
    return res.rows[0] ? toSubscription(res.rows[0]) : null;
  }
  async deleteSubscription(id) {
    return this.#write(async (tx) => {
      const res = await run(tx, "DELETE FROM subscriptions WHERE id = ?", [id]);
      await run(
        tx,
        "UPDATE deliveries SET state = 'failed', last_error = 'subscription deleted' WHERE subscription_id = ? AND state = 'pending'",
        [id]
      );
      return res.rowsAffected > 0;
    });
  }
  async rotateSecret(input) {
    return this.#write(async (tx) => {
      const res = await run(
        tx,
        `UPDATE subscriptions SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?
         WHERE id = ? RETURNING *`,
        [input.previousSecretExpiresAt, input.newSecret, input.id]
      );
      return res.rows[0] ? toSubscription(res.rows[0]) : null;
    });
  }
  async claimDeliveries(input) {
    return this.#write(async (tx) => {
      const res = await run(
        tx,
        `UPDATE deliveries SET lease_owner = ?, lease_until = ?, updated_at = ?
         WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?
                        AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at LIMIT ?)
         RETURNING *`,
        [input.owner, input.now + input.leaseMs, input.now, input.now, input.now, input.limit]
      );
      return res.rows.map(toDelivery);
    });
  }
  async recordAttempt(input) {
    const { attempt, outcome, now } = input;
    return this.#write(async (tx) => {
      const state = outcome.kind === "delivered" ? "delivered" : outcome.kind === "failed" ? "failed" : "pending";
      const res = await run(
        tx,
        `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
           lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND lease_owner = ? AND state = 'pending'`,
        [state, outcome.kind === "retry" ? outcome.nextAttemptAt : now, describeAttempt(attempt), now, attempt.deliveryId, input.owner]
      );
      if (res.rowsAffected === 0) return false;
      await run(
        tx,
        `INSERT OR REPLACE INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?)`,
        [attempt.deliveryId, attempt.attempt, attempt.at, attempt.statusCode, attempt.error, Math.round(attempt.durationMs)]
      );
      return true;
    });
  }
  async listDeliveries(subscriptionId, opts) {
    const [beforeAt, beforeId] = opts.cursor ? decodeCursor(opts.cursor) : [Number.MAX_SAFE_INTEGER, ""];
    const res = await run(
      this.#db,
      `SELECT * FROM deliveries WHERE subscription_id = ?
         AND (created_at < ? OR (created_at = ? AND id < ?))
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [subscriptionId, Number(beforeAt), Number(beforeAt), String(beforeId ?? ""), opts.limit + 1]
    );
    const page = res.rows.slice(0, opts.limit).map(toDelivery);
    const attempts = page.length === 0 ? [] : (await run(
      this.#db,
      `SELECT * FROM delivery_attempts WHERE delivery_id IN (${page.map(() => "?").join(",")}) ORDER BY attempt`,
      page.map((d) => d.id)
    )).rows.map(toAttempt);
    const last = page.at(-1);
    return {
      items: page.map((d) => ({ ...d, attemptLog: attempts.filter((a) => a.deliveryId === d.id) })),
      nextCursor: res.rows.length > opts.limit && last ? encodeCursor([last.createdAt, last.id]) : null
    };
  }
  async retryDelivery(input) {
    return this.#write(async (tx) => {
      const res = await run(
        tx,
        `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND subscription_id = ? RETURNING *`,
        [input.now, input.now, input.deliveryId, input.subscriptionId]
      );
      return res.rows[0] ? toDelivery(res.rows[0]) : null;
    });
  }
  async listEvents(requestId) {
    const res = await run(this.#db, "SELECT * FROM events WHERE request_id = ? ORDER BY created_at, rowid", [requestId]);
    return res.rows.map((r) => ({
      id: String(r.id),
      requestId: String(r.request_id),
      type: String(r.type),
      payload: String(r.payload),
      createdAt: Number(r.created_at)
    }));
  }
  // ---- lifecycle ------------------------------------------------------------------------
  async ping() {
    await run(this.#db, "SELECT 1");
  }
  async close() {
    await this.#writes.run(async () => this.#db.close());
  }
}
async function deleteIngesting(tx, ids) {
  for (const id of ids) {
    const args = [id];
    await tx.batch([
      { sql: "DELETE FROM items WHERE request_id = ?", args },
      { sql: "DELETE FROM products WHERE request_id = ?", args },
      { sql: "DELETE FROM requests WHERE id = ? AND status = 'ingesting'", args }
    ]);
  }
}
async function insertEvent(tx, type, request, now, payload) {
  const eventId = `evt_${randomUUID()}`;
  const body = payload(type, request, eventId, now);
  const stmts = [{
    sql: "INSERT INTO events (id, request_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
    args: [eventId, request.id, type, body, now]
  }];
  const receivers = [];
  for (const row of (await run(tx, "SELECT id, url, events FROM subscriptions")).rows) {
    if (JSON.parse(String(row.events)).includes(type)) receivers.push({ subscriptionId: String(row.id), url: String(row.url) });
  }
  if (request.webhookUrl) receivers.push({ subscriptionId: null, url: request.webhookUrl });
  for (const r of receivers) {
    stmts.push({
      sql: `INSERT INTO deliveries (id, event_id, subscription_id, request_id, url, event_type, payload, state,
              next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
      args: [`dlv_${randomUUID()}`, eventId, r.subscriptionId, request.id, r.url, type, body, now, now, now]
    });
  }
  await tx.batch(stmts);
}
function describeAttempt(a) {
  if (a.error) return a.error;
  if (a.statusCode !== null && (a.statusCode < 200 || a.statusCode >= 300)) return `HTTP ${a.statusCode}`;
  return null;
}
const run = (on, sql, args = []) => on.execute({ sql, args });
const str = (v) => v === null || v === void 0 ? null : String(v);
const num = (v) => v === null || v === void 0 ? null : Number(v);
function toRequest(r) {
  return {
    id: String(r.id),
    status: String(r.status),
    idempotencyKey: str(r.idempotency_key),
    webhookUrl: str(r.webhook_url),
    webhookSecret: str(r.webhook_secret),
    productCount: Number(r.product_count),
    total: Number(r.total),
    done: Number(r.done),
    failed: Number(r.failed),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at)
  };
}
function toItem(r) {
  return {
    id: String(r.id),
    requestId: String(r.request_id),
    url: String(r.url),
    state: String(r.state),
    attempts: Number(r.attempts),
    leaseOwner: str(r.lease_owner),
    leaseUntil: num(r.lease_until),
    outputKey: str(r.output_key),
    error: str(r.error)
  };
}
function toSubscription(r) {
  return {
    id: String(r.id),
    url: String(r.url),
    events: JSON.parse(String(r.events)),
    secret: String(r.secret),
    previousSecret: str(r.previous_secret),
    previousSecretExpiresAt: num(r.previous_secret_expires_at),
    createdAt: Number(r.created_at)
  };
}
function toDelivery(r) {
  return {
    id: String(r.id),
    eventId: String(r.event_id),
    subscriptionId: str(r.subscription_id),
    requestId: String(r.request_id),
    url: String(r.url),
    eventType: String(r.event_type),
    payload: String(r.payload),
    state: String(r.state),
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    leaseOwner: str(r.lease_owner),
    leaseUntil: num(r.lease_until),
    lastError: str(r.last_error),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at)
  };
}
function toAttempt(r) {
  return {
    deliveryId: String(r.delivery_id),
    attempt: Number(r.attempt),
    at: Number(r.at),
    statusCode: num(r.status_code),
    error: str(r.error),
    durationMs: Number(r.duration_ms)
  };
}
export {
  SqliteStore,
  openSqliteStore
};
//# sourceMappingURL=sqlite.js.map
