// The embedded store: one SQLite file (WAL) under DATA_DIR, shared safely by any number of
// processes on the same machine. Every multi-statement change runs in one IMMEDIATE
// transaction, so a state change and its event (with its deliveries) commit together;
// within a process, writes are serialised by a mutex because libsql runs statements
// synchronously and a second connection waiting on the lock would block the event loop that
// the first one needs to finish. The rules come from lifecycle.ts.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClient, type Client, type InArgs, type InStatement, type Row, type Transaction } from '@libsql/client';
import {
  afterAttempt, claimFairly, counterDelta, deliveriesFor, eventOrder, isFinal, itemResult, newestFirstCursor, pageOf,
  serialCursor, settledStatus, transitionEvent, type ClaimCandidate,
} from './lifecycle.js';
import { Mutex } from './mutex.js';
import { migrateSqlite, SQLITE_SCHEMA_VERSION } from './sqlite-migrations.js';
import type {
  ApiKeyRecord, AttemptOutcome, BeginInput, BeginResult, CommitExtra, CompleteInput, CompleteResult, DeliveryAttempt, DeliveryRecord, EventRecord,
  EventType, ItemOutcome, ItemRecord, Page, ProductRecord, RequestRecord, ReusableOutput, Store, Subscription, UrlValidators,
} from './types.js';

/**
 * One write mutex per database file for the whole process, shared by every store opened on
 * it: a second connection in the same thread waiting on the lock would never see it freed.
 */
const writeMutexes = new Map<string, Mutex>();

/** Rows per multi-row INSERT: well under SQLite's 32766 bound variables. */
const INSERT_CHUNK = 500;
const OPEN = "('received', 'processing')";

export async function openSqliteStore(file: string, opts: { busyTimeoutMs?: number } = {}): Promise<SqliteStore> {
  file = resolve(file);
  mkdirSync(dirname(file), { recursive: true });
  const client = createClient({ url: pathToFileURL(file).href, timeout: opts.busyTimeoutMs ?? 10_000 });
  // journal_mode is persistent in the file; the others are per connection and are the
  // defaults we want (synchronous=FULL keeps a commit durable across power loss too).
  await client.execute('PRAGMA journal_mode = WAL');
  let mutex = writeMutexes.get(file);
  if (!mutex) writeMutexes.set(file, (mutex = new Mutex()));
  await mutex.run(() => migrateSqlite(client));
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

  async beginRequest(input: BeginInput): Promise<BeginResult> {
    return this.#write(async (tx) => {
      if (input.idempotencyKey !== null) {
        const existing = await run(tx,
          `SELECT r.*, k.fingerprint AS key_fingerprint FROM idempotency_keys k JOIN requests r ON r.id = k.request_id
           WHERE k.tenant_id = ? AND k.key = ?`,
          [input.tenantId, input.idempotencyKey]);
        const row = existing.rows[0];
        if (row) return { created: false as const, existing: toRequest(row), fingerprint: str(row.key_fingerprint) };
        // A key whose request is gone (aborted) is free again.
        await run(tx, 'DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ?', [input.tenantId, input.idempotencyKey]);
        await run(tx, 'INSERT INTO idempotency_keys (tenant_id, key, request_id, fingerprint) VALUES (?, ?, ?, NULL)',
          [input.tenantId, input.idempotencyKey, input.id]);
      }
      await run(tx,
        `INSERT INTO requests (id, status, tenant_id, webhook_url, webhook_secret, created_at, updated_at)
         VALUES (?, 'ingesting', ?, ?, ?, ?, ?)`,
        [input.id, input.tenantId, input.webhookUrl, input.webhookSecret, input.now, input.now],
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
          // Pending, but claimed only once the request is committed (claims go by request).
          sql: `INSERT OR IGNORE INTO items (request_id, url, state, created_at) VALUES ${chunk.map(() => "(?,?,'pending',?)").join(',')}`,
          args: chunk.flatMap((u) => [requestId, u, now]),
        });
      }
      await tx.batch(stmts);
    });
  }

  async commitRequest(requestId: string, now: number, extra: CommitExtra = {}): Promise<RequestRecord> {
    return this.#write(async (tx) => {
      if (extra.webhook) {
        await run(tx, 'UPDATE requests SET webhook_url = ?, webhook_secret = ? WHERE id = ?', [extra.webhook.url, extra.webhook.secret, requestId]);
      }
      if (extra.options) await run(tx, 'UPDATE requests SET options = ? WHERE id = ?', [json(extra.options), requestId]);
      if (extra.fingerprint) {
        await run(tx, 'UPDATE idempotency_keys SET fingerprint = ? WHERE request_id = ?', [extra.fingerprint, requestId]);
      }
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
    await this.#write((tx) => deleteIngesting(tx, [requestId]));
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

  async listRequests(opts: { tenantId: string | null; limit: number; cursor?: string | null }): Promise<Page<RequestRecord>> {
    const before = newestFirstCursor.decode(opts.cursor) ?? { at: Number.MAX_SAFE_INTEGER, id: '' };
    const tenant = opts.tenantId === null ? '' : 'AND tenant_id = ?';
    const res = await run(this.#db,
      `SELECT * FROM requests WHERE status != 'ingesting' ${tenant}
         AND (created_at < ? OR (created_at = ? AND id < ?))
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [...(opts.tenantId === null ? [] : [opts.tenantId]), before.at, before.at, before.id || '\u{10FFFF}', opts.limit + 1],
    );
    return pageOf(res.rows.map(toRequest), opts.limit, (r) => newestFirstCursor.encode(r.createdAt, r.id));
  }

  async listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>> {
    const res = await run(this.#db,
      'SELECT serial, name, input_urls FROM products WHERE request_id = ? AND serial > ? ORDER BY serial LIMIT ?',
      [requestId, serialCursor.decode(opts.cursor), opts.limit + 1],
    );
    const rows = res.rows.map((r) => ({ serial: Number(r.serial), name: String(r.name), inputUrls: JSON.parse(String(r.input_urls)) as string[] }));
    return pageOf(rows, opts.limit, (p) => serialCursor.encode(p.serial));
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

  async claimItems(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<ItemRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    const lease = `state = 'running', lease_owner = ?, lease_until = ?, claims = claims + 1`;
    return this.#write(async (tx) => {
      // Expired leases first (their runner died), in open requests only.
      const claimed = (await run(tx,
        `UPDATE items SET ${lease} WHERE id IN (
           SELECT i.id FROM items i JOIN requests r ON r.id = i.request_id
           WHERE i.state = 'running' AND i.lease_until < ? AND r.status IN ${OPEN} LIMIT ?) RETURNING *`,
        [owner, now + leaseMs, now, limit],
      )).rows.map(toItem);
      const candidates = (await run(tx,
        `SELECT id, tenant_id, last_claim_at, created_at FROM requests r WHERE status IN ${OPEN}
           AND EXISTS (SELECT 1 FROM items i WHERE i.request_id = r.id AND i.state = 'pending')`,
      )).rows.map(toCandidate);
      await claimFairly(candidates, limit - claimed.length, async (requestId, n) => {
        const rows = (await run(tx,
          `UPDATE items SET ${lease} WHERE id IN (
             SELECT id FROM items WHERE request_id = ? AND state = 'pending' ORDER BY id LIMIT ?) RETURNING *`,
          [owner, now + leaseMs, requestId, n],
        )).rows.map(toItem);
        claimed.push(...rows);
        return rows.length;
      });
      for (const requestId of new Set(claimed.map((i) => i.requestId))) {
        await run(tx, 'UPDATE requests SET version = version + 1, last_claim_at = ? WHERE id = ?', [now, requestId]);
        const started = await run(tx,
          "UPDATE requests SET status = 'processing', updated_at = ? WHERE id = ? AND status = 'received' RETURNING *",
          [now, requestId],
        );
        if (started.rows[0]) {
          const request = toRequest(started.rows[0]);
          await writeEvent(tx, transitionEvent(request, 'processing', now), request);
        }
      }
      return claimed;
    });
  }

  async chargeAttempt(input: { itemId: string; owner: string }): Promise<number | null> {
    const id = itemIdOf(input.itemId);
    if (id === null) return null;
    return this.#write(async (tx) => {
      const res = await run(tx,
        "UPDATE items SET attempts = attempts + 1 WHERE id = ? AND lease_owner = ? AND state = 'running' RETURNING attempts",
        [id, input.owner]);
      return res.rows[0] ? Number(res.rows[0].attempts) : null;
    });
  }

  async renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    // Ids that cannot be ours are not held (as in the MongoDB store), rather than an error.
    const ids = input.itemIds.map(itemIdOf).filter((id) => id !== null);
    if (ids.length === 0) return [];
    return this.#write(async (tx) => {
      const res = await run(tx,
        `UPDATE items SET lease_until = ? WHERE lease_owner = ? AND state = 'running'
           AND id IN (SELECT value FROM json_each(?)) RETURNING id`,
        [input.now + input.leaseMs, input.owner, JSON.stringify(ids)],
      );
      return res.rows.map((r) => String(r.id));
    });
  }

  async completeItems(inputs: CompleteInput[]): Promise<CompleteResult[]> {
    if (inputs.length === 0) return [];
    // One transaction (one fsync) for a batch of completions.
    return this.#write(async (tx) => {
      const results: CompleteResult[] = [];
      for (const input of inputs) results.push(await completeOne(tx, input));
      return results;
    });
  }

  async releaseItems(owner: string): Promise<number> {
    return this.#write(async (tx) => {
      const res = await run(tx,
        `UPDATE items SET state = 'pending', lease_owner = NULL, lease_until = NULL
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

  // ---- operating on requests ------------------------------------------------------------

  async cancelRequest(id: string, now: number): Promise<'cancelled' | 'final' | null> {
    return this.#write(async (tx) => {
      const res = await run(tx,
        `UPDATE requests SET status = 'cancelled', updated_at = ?, version = version + 1 WHERE id = ? AND status IN ${OPEN} RETURNING *`,
        [now, id]);
      if (res.rows[0]) {
        const request = toRequest(res.rows[0]);
        await writeEvent(tx, transitionEvent(request, 'cancelled', now), request);
        return 'cancelled';
      }
      const known = await run(tx, "SELECT 1 FROM requests WHERE id = ? AND status != 'ingesting'", [id]);
      return known.rows[0] ? 'final' : null;
    });
  }

  async retryRequest(id: string, now: number) {
    return this.#write(async (tx) => {
      const found = await run(tx, "SELECT status FROM requests WHERE id = ? AND status != 'ingesting'", [id]);
      if (!found.rows[0]) return null;
      if (!isFinal(String(found.rows[0].status) as RequestRecord['status'])) return 'not-final' as const;
      const reset = await run(tx,
        `UPDATE items SET state = 'pending', attempts = 0, claims = 0, error = NULL, lease_owner = NULL, lease_until = NULL
         WHERE request_id = ? AND state = 'failed'`, [id]);
      if (reset.rowsAffected === 0) return 'none-failed' as const;
      await run(tx,
        `UPDATE requests SET status = 'received', failed = failed - ?, run = run + 1, updated_at = ?, version = version + 1 WHERE id = ?`,
        [reset.rowsAffected, now, id]);
      return { retried: reset.rowsAffected };
    });
  }

  async deleteRequest(id: string, _now: number): Promise<string[] | null> {
    return this.#write(async (tx) => {
      const found = await run(tx, "SELECT 1 FROM requests WHERE id = ? AND status != 'ingesting'", [id]);
      if (!found.rows[0]) return null;
      const keys = await run(tx, 'SELECT DISTINCT output_key FROM items WHERE request_id = ? AND output_key IS NOT NULL', [id]);
      // One transaction: a reader sees the request whole or not at all.
      await tx.batch([
        { sql: 'DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE request_id = ?)', args: [id] },
        { sql: 'DELETE FROM deliveries WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM events WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM items WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM products WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM idempotency_keys WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM requests WHERE id = ?', args: [id] },
      ]);
      return keys.rows.map((r) => String(r.output_key));
    });
  }

  async purgeDeleting(): Promise<string[]> {
    return []; // deletions are one transaction here: nothing is ever left half-done
  }

  async listExpiredRequests(before: number, limit: number): Promise<string[]> {
    const res = await run(this.#db,
      `SELECT id FROM requests WHERE status IN ('completed', 'failed', 'cancelled') AND updated_at < ? ORDER BY updated_at LIMIT ?`,
      [before, limit]);
    return res.rows.map((r) => String(r.id));
  }

  async referencedOutputs(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const res = await run(this.#db,
      'SELECT DISTINCT output_key FROM items WHERE output_key IN (SELECT value FROM json_each(?))', [JSON.stringify(keys)]);
    return new Set(res.rows.map((r) => String(r.output_key)));
  }

  async tenantUsage(tenantId: string, since: number) {
    const res = await run(this.#db,
      `SELECT
         (SELECT COALESCE(SUM(total - done - failed), 0) FROM requests WHERE tenant_id = ? AND status IN ${OPEN}) AS in_flight,
         (SELECT COUNT(*) FROM requests WHERE tenant_id = ? AND created_at >= ?) AS uploads,
         (SELECT MIN(created_at) FROM requests WHERE tenant_id = ? AND created_at >= ?) AS oldest`,
      [tenantId, tenantId, since, tenantId, since]);
    const r = res.rows[0]!;
    return { inFlight: Number(r.in_flight), uploadsSince: Number(r.uploads), oldestUploadSince: num(r.oldest) };
  }

  async tryLock(name: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
    return this.#write(async (tx) => {
      const res = await run(tx,
        `INSERT INTO locks (name, owner, until) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
         WHERE locks.until < ? OR locks.owner = excluded.owner`,
        [name, owner, now + ttlMs, now]);
      return res.rowsAffected > 0;
    });
  }

  // ---- skipping needless work -----------------------------------------------------------

  async getCachedOutput(tenantId: string, sourceSha256: string, settings: string): Promise<ReusableOutput | null> {
    const res = await run(this.#db,
      'SELECT output_key, format, bytes_out FROM content_cache WHERE tenant_id = ? AND source_sha256 = ? AND settings = ?',
      [tenantId, sourceSha256, settings]);
    const r = res.rows[0];
    return r ? { outputKey: String(r.output_key), format: String(r.format), bytesOut: Number(r.bytes_out) } : null;
  }

  async putCachedOutput(tenantId: string, sourceSha256: string, settings: string, o: ReusableOutput, now: number): Promise<void> {
    await this.#write(async (tx) => {
      await run(tx,
        `INSERT OR REPLACE INTO content_cache (tenant_id, source_sha256, settings, output_key, format, bytes_out, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [tenantId, sourceSha256, settings, o.outputKey, o.format, o.bytesOut, now]);
    });
  }

  async getValidators(tenantId: string, url: string, settings: string): Promise<UrlValidators | null> {
    const res = await run(this.#db, 'SELECT * FROM url_validators WHERE tenant_id = ? AND url = ? AND settings = ?', [tenantId, url, settings]);
    const r = res.rows[0];
    return r ? {
      etag: str(r.etag), lastModified: str(r.last_modified), outputKey: String(r.output_key), format: String(r.format),
      bytesIn: Number(r.bytes_in), bytesOut: Number(r.bytes_out),
    } : null;
  }

  async putValidators(tenantId: string, url: string, settings: string, v: UrlValidators, now: number): Promise<void> {
    await this.#write(async (tx) => {
      await run(tx,
        `INSERT OR REPLACE INTO url_validators (tenant_id, url, settings, etag, last_modified, output_key, format, bytes_in, bytes_out, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [tenantId, url, settings, v.etag, v.lastModified, v.outputKey, v.format, v.bytesIn, v.bytesOut, now]);
    });
  }

  // ---- webhooks -------------------------------------------------------------------------

  async createSubscription(sub: Subscription): Promise<void> {
    await this.#write(async (tx) => {
      await run(tx,
        `INSERT INTO subscriptions (id, tenant_id, url, events, secret, previous_secret, previous_secret_expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [sub.id, sub.tenantId, sub.url, JSON.stringify(sub.events), sub.secret, sub.previousSecret, sub.previousSecretExpiresAt, sub.createdAt],
      );
    });
  }

  async listSubscriptions(tenantId: string | null): Promise<Subscription[]> {
    const res = tenantId === null
      ? await run(this.#db, 'SELECT * FROM subscriptions ORDER BY created_at, id')
      : await run(this.#db, 'SELECT * FROM subscriptions WHERE tenant_id = ? ORDER BY created_at, id', [tenantId]);
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

  async renewDeliveryLeases(input: { owner: string; deliveryIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    if (input.deliveryIds.length === 0) return [];
    return this.#write(async (tx) => {
      const res = await run(tx,
        `UPDATE deliveries SET lease_until = ? WHERE lease_owner = ? AND state = 'pending'
           AND id IN (SELECT value FROM json_each(?)) RETURNING id`,
        [input.now + input.leaseMs, input.owner, JSON.stringify(input.deliveryIds)],
      );
      return res.rows.map((r) => String(r.id));
    });
  }

  async recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean> {
    const { attempt, now } = input;
    const next = afterAttempt(attempt, input.outcome, now);
    return this.#write(async (tx) => {
      const res = await run(tx,
        `UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
           lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND lease_owner = ? AND state = 'pending'`,
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
    const res = await run(this.#db,
      `SELECT * FROM deliveries WHERE subscription_id = ?
         AND (created_at < ? OR (created_at = ? AND id < ?))
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [subscriptionId, before.at, before.at, before.id || '\u{10FFFF}', opts.limit + 1],
    );
    const page = pageOf(res.rows.map(toDelivery), opts.limit, (d) => newestFirstCursor.encode(d.createdAt, d.id));
    const attempts = page.items.length === 0 ? [] : (await run(this.#db,
      'SELECT * FROM delivery_attempts WHERE delivery_id IN (SELECT value FROM json_each(?)) ORDER BY attempt',
      [JSON.stringify(page.items.map((d) => d.id))],
    )).rows.map(toAttempt);
    return { ...page, items: page.items.map((d) => ({ ...d, attemptLog: attempts.filter((a) => a.deliveryId === d.id) })) };
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
    const res = await run(this.#db, 'SELECT * FROM events WHERE request_id = ? ORDER BY created_at, ord, rowid', [requestId]);
    return res.rows.map((r) => ({
      id: String(r.id), requestId: String(r.request_id), type: String(r.type) as EventType,
      payload: String(r.payload), createdAt: Number(r.created_at),
    }));
  }

  // ---- API keys -------------------------------------------------------------------------

  async createKey(key: ApiKeyRecord): Promise<void> {
    await this.#write(async (tx) => {
      await run(tx, 'INSERT INTO api_keys (id, name, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)',
        [key.id, key.name, key.hash, key.createdAt, key.revokedAt]);
    });
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (await run(this.#db, 'SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id')).rows.map(toKey);
  }

  async revokeKey(id: string, now: number): Promise<boolean> {
    return this.#write(async (tx) =>
      (await run(tx, 'UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id])).rowsAffected > 0);
  }

  async findKey(hash: string): Promise<ApiKeyRecord | null> {
    const res = await run(this.#db, 'SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL', [hash]);
    return res.rows[0] ? toKey(res.rows[0]) : null;
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async schemaVersion(): Promise<number> {
    return Number((await run(this.#db, 'PRAGMA user_version')).rows[0]![0]);
  }

  async ping(): Promise<void> {
    await run(this.#db, 'SELECT 1');
  }

  async close(): Promise<void> {
    await this.#writes.run(async () => this.#db.close());
  }
}

export { SQLITE_SCHEMA_VERSION };

/** Records one item's outcome inside the caller's transaction (see Store.completeItems). */
async function completeOne(tx: Transaction, input: CompleteInput): Promise<CompleteResult> {
  const { outcome, now } = input;
  const itemId = itemIdOf(input.itemId);
  if (itemId === null) return { applied: false };
  const result = itemResult(outcome);
  const delta = counterDelta(outcome);
  const item = await run(tx,
    `UPDATE items SET state = ?, output_key = ?, error = ?, outcome = ?, bytes_in = ?, bytes_out = ?,
       lease_owner = NULL, lease_until = NULL
     WHERE id = ? AND lease_owner = ? AND state = 'running' RETURNING request_id`,
    [result.state, result.outputKey, result.error, result.outcome, result.bytesIn, result.bytesOut, itemId, input.owner],
  );
  const requestId = item.rows[0]?.request_id;
  if (requestId === undefined) return { applied: false };
  const updated = toRequest((await run(tx,
    `UPDATE requests SET done = done + ?, failed = failed + ?, bytes_in = bytes_in + ?, bytes_out = bytes_out + ?,
       updated_at = ?, version = version + 1 WHERE id = ? RETURNING *`,
    [delta.done, delta.failed, delta.bytesIn, delta.bytesOut, now, String(requestId)],
  )).rows[0]!);
  const finalStatus = settledStatus(updated);
  if (!finalStatus) return { applied: true };
  const finished = await run(tx,
    `UPDATE requests SET status = ? WHERE id = ? AND status IN ${OPEN} RETURNING *`, [finalStatus, updated.id]);
  if (!finished.rows[0]) return { applied: true };
  const request = toRequest(finished.rows[0]);
  await writeEvent(tx, transitionEvent(request, finalStatus, now), request);
  return { applied: true, finalStatus };
}

async function deleteIngesting(tx: Transaction, ids: string[]): Promise<void> {
  for (const id of ids) {
    // Only an ingesting request (or the orphans of one) is removed: never a committed one's data.
    const notCommitted = "NOT EXISTS (SELECT 1 FROM requests WHERE id = ? AND status != 'ingesting')";
    const args: InArgs = [id, id];
    await tx.batch([
      { sql: `DELETE FROM items WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: `DELETE FROM products WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: `DELETE FROM idempotency_keys WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: "DELETE FROM requests WHERE id = ? AND status = 'ingesting'", args: [id] },
    ]);
  }
}

/** Writes an event and its deliveries inside the caller's transaction (the outbox). */
async function writeEvent(tx: Transaction, event: EventRecord, request: RequestRecord): Promise<void> {
  const subscriptions = (await run(tx, 'SELECT * FROM subscriptions')).rows.map(toSubscription);
  const stmts: InStatement[] = [{
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

/** An item id as stored (an integer), or null for a string that cannot be one. */
function itemIdOf(id: string): number | null {
  return /^\d{1,15}$/.test(id) ? Number(id) : null;
}

/** Executes one statement on the client or inside a transaction. */
const run = (on: Client | Transaction, sql: string, args: InArgs = []) => on.execute({ sql, args });

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

function toRequest(r: Row): RequestRecord {
  return {
    id: String(r.id), status: String(r.status) as RequestRecord['status'], tenantId: String(r.tenant_id),
    webhookUrl: str(r.webhook_url), webhookSecret: str(r.webhook_secret),
    options: r.options === null || r.options === undefined ? null : JSON.parse(String(r.options)) as Record<string, unknown>,
    productCount: Number(r.product_count), total: Number(r.total), done: Number(r.done), failed: Number(r.failed),
    bytesIn: Number(r.bytes_in), bytesOut: Number(r.bytes_out), run: Number(r.run),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), version: Number(r.version),
  };
}

function toCandidate(r: Row): ClaimCandidate {
  return { requestId: String(r.id), tenantId: String(r.tenant_id), lastClaimAt: Number(r.last_claim_at), createdAt: Number(r.created_at) };
}

function toItem(r: Row): ItemRecord {
  return {
    id: String(r.id), requestId: String(r.request_id), url: String(r.url),
    state: String(r.state) as ItemRecord['state'], attempts: Number(r.attempts), claims: Number(r.claims),
    leaseOwner: str(r.lease_owner), leaseUntil: num(r.lease_until), outputKey: str(r.output_key), error: str(r.error),
    outcome: str(r.outcome) as ItemRecord['outcome'], bytesIn: num(r.bytes_in), bytesOut: num(r.bytes_out),
  };
}

function toSubscription(r: Row): Subscription {
  return {
    id: String(r.id), tenantId: String(r.tenant_id), url: String(r.url), events: JSON.parse(String(r.events)) as EventType[],
    secret: String(r.secret), previousSecret: str(r.previous_secret), previousSecretExpiresAt: num(r.previous_secret_expires_at),
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

function toKey(r: Row): ApiKeyRecord {
  return { id: String(r.id), name: String(r.name), hash: String(r.hash), createdAt: Number(r.created_at), revokedAt: num(r.revoked_at) };
}
